//! `DynamoDeletionJobs` and `DynamoUserData` against the emulator.

use aws_adapters::{DynamoDeletionJobs, DynamoUserData};
use domain::cascade::{table, CascadeTable, CASCADE_PLAN};
use domain::job::{DeletionJob, JobStatus, Step, TableProgress};
use domain::model::ItemKey;
use domain::ports::{Count, Created, DeletionJobs, Saved, UserData};
use integration_tests::{item, str_attr, Harness, Item};
use std::collections::{BTreeMap, BTreeSet};

fn jobs(h: &Harness) -> DynamoDeletionJobs {
    DynamoDeletionJobs::new(h.dynamo.clone(), h.table("DELETION_JOBS_TABLE"))
}

fn user_data(h: &Harness) -> DynamoUserData {
    DynamoUserData::new(
        h.dynamo.clone(),
        CASCADE_PLAN
            .iter()
            .map(|t| (t.name.to_owned(), h.table(t.env_var))),
    )
}

fn job(user: &str, job_id: &str) -> DeletionJob {
    DeletionJob {
        user_id: user.to_owned(),
        job_id: job_id.to_owned(),
        status: JobStatus::InProgress,
        step: Step::Audit,
        actor_id: "admin-1".into(),
        target_role: "user".into(),
        target_email_sha256: Some("cd".repeat(32)),
        auth_username: Some(user.to_owned()),
        created_at: "2025-01-01T00:00:00.000Z".into(),
        updated_at: "2025-01-01T00:00:00.000Z".into(),
        completed_at: None,
        request_id: "req-1".into(),
        source_ip: None,
        user_agent: None,
        progress: BTreeMap::new(),
        version: 1,
        lease_owner: None,
        lease_until: None,
    }
}

#[tokio::test]
async fn a_job_is_created_once_and_a_second_create_joins_it() {
    let h = Harness::new().await;
    let store = jobs(&h);
    assert_eq!(
        store.create(&job("u-1", "job-a")).await.unwrap(),
        Created::Created
    );
    match store.create(&job("u-1", "job-b")).await.unwrap() {
        Created::Exists(existing) => assert_eq!(existing, job("u-1", "job-a")),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(store.get("u-1").await.unwrap(), Some(job("u-1", "job-a")));
    assert_eq!(store.get("u-2").await.unwrap(), None);
}

#[tokio::test]
async fn saving_needs_the_previous_version_and_round_trips_progress() {
    let h = Harness::new().await;
    let store = jobs(&h);
    store.create(&job("u-1", "job-a")).await.unwrap();

    let mut next = job("u-1", "job-a");
    next.version = 2;
    next.step = Step::Cascade;
    next.progress.insert(
        "transactions".into(),
        TableProgress {
            deleted: 250,
            cursor: Some(BTreeMap::from([
                ("user_id".into(), "u-1".into()),
                ("transaction_id".into(), "t-250".into()),
            ])),
            pending: vec![BTreeMap::from([
                ("user_id".into(), "u-1".into()),
                ("transaction_id".into(), "t-251".into()),
            ])],
            exhausted: false,
            done: false,
        },
    );
    assert_eq!(store.save(&next).await.unwrap(), Saved::Saved);
    assert_eq!(store.get("u-1").await.unwrap(), Some(next.clone()));

    // A runner that read version 1 and saves version 2 again has lost the race.
    let mut stale = job("u-1", "job-a");
    stale.version = 2;
    assert_eq!(store.save(&stale).await.unwrap(), Saved::Conflict);
    let mut skipping = next.clone();
    skipping.version = 4;
    assert_eq!(store.save(&skipping).await.unwrap(), Saved::Conflict);
    assert_eq!(store.get("u-1").await.unwrap(), Some(next));

    let row = h
        .get(&h.table("DELETION_JOBS_TABLE"), "user_id", "u-1")
        .await
        .unwrap();
    assert!(str_attr(&row, "progress").is_some(), "progress is a JSON string");
    assert_eq!(
        row["deleted"].as_m().unwrap()["transactions"].as_n().unwrap(),
        "250"
    );
}

fn transaction(user: &str, i: usize) -> Item {
    item(&[
        ("user_id", user),
        ("transaction_id", &format!("t-{i:04}")),
        ("amount", "12.50"),
    ])
}

fn session(user: &str, i: usize) -> Item {
    item(&[
        ("session_id", &format!("s-{user}-{i:04}")),
        ("user_id", user),
        ("device", "phone"),
    ])
}

/// Read every key of the user through `page`, following the cursor.
async fn all_keys(
    store: &DynamoUserData,
    t: &CascadeTable,
    user: &str,
    limit: usize,
) -> (Vec<ItemKey>, usize) {
    let mut keys = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.page(t, user, cursor.as_ref(), limit).await.unwrap();
        pages += 1;
        assert!(page.keys.len() <= limit);
        for k in &page.keys {
            let names: Vec<&str> = k.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = t.key.to_vec();
            want.sort();
            assert_eq!(names, want, "a page holds table keys only");
        }
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (keys, pages),
        }
        assert!(pages < 100, "paging ends");
    }
}

#[tokio::test]
async fn a_users_keys_are_read_page_by_page_counted_and_deleted_on_the_table_key() {
    let h = Harness::new().await;
    let t = table("transactions").unwrap();
    let physical = h.table(t.env_var);
    h.seed(&physical, (0..60).map(|i| transaction("u-1", i)).collect())
        .await;
    h.seed(&physical, (0..5).map(|i| transaction("u-2", i)).collect())
        .await;
    let store = user_data(&h);

    let (keys, pages) = all_keys(&store, t, "u-1", 25).await;
    assert_eq!(keys.len(), 60);
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 60, "no key twice");
    assert!(pages >= 3);

    assert_eq!(
        store.count(t, "u-1", 1_000).await.unwrap(),
        Count {
            count: 60,
            capped: false
        }
    );
    assert_eq!(
        store.count(t, "u-1", 10).await.unwrap(),
        Count {
            count: 10,
            capped: true
        }
    );

    store.delete(t, &keys).await.unwrap();
    assert_eq!(
        store.count(t, "u-1", 1_000).await.unwrap(),
        Count {
            count: 0,
            capped: false
        }
    );
    assert_eq!(
        store.count(t, "u-2", 1_000).await.unwrap().count,
        5,
        "other users keep their data"
    );
    // Deleting keys that are gone already is fine.
    store.delete(t, &keys).await.unwrap();
}

#[tokio::test]
async fn a_users_keys_are_found_through_an_index_and_the_cursor_survives_deletes() {
    let h = Harness::new().await;
    let t = table("sessions").unwrap();
    let physical = h.table(t.env_var);
    h.seed(&physical, (0..57).map(|i| session("u-1", i)).collect())
        .await;
    h.seed(&physical, (0..3).map(|i| session("u-2", i)).collect())
        .await;
    let store = user_data(&h);

    // The delete routine's loop: read a page, delete it, continue from the cursor.
    let mut cursor = None;
    let mut deleted = 0;
    loop {
        let page = store.page(t, "u-1", cursor.as_ref(), 20).await.unwrap();
        store.delete(t, &page.keys).await.unwrap();
        deleted += page.keys.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(deleted, 57);
    assert_eq!(
        store.count(t, "u-1", 100).await.unwrap(),
        Count {
            count: 0,
            capped: false
        }
    );
    assert_eq!(h.rows_where(&physical, "user_id", "u-2").await.len(), 3);
}

#[tokio::test]
async fn a_big_delete_goes_through_in_batches() {
    let h = Harness::new().await;
    let t = table("help_requests").unwrap();
    let physical = h.table(t.env_var);
    let rows: Vec<Item> = (0..260)
        .map(|i| {
            item(&[
                ("request_id", &format!("hr-{i:04}")),
                ("user_id", "u-1"),
                ("topic", "billing"),
            ])
        })
        .collect();
    h.seed(&physical, rows).await;
    let store = user_data(&h);
    let (keys, _) = all_keys(&store, t, "u-1", 1_000).await;
    assert_eq!(keys.len(), 260);
    store.delete(t, &keys).await.unwrap();
    assert!(h.scan(&physical).await.is_empty());
}

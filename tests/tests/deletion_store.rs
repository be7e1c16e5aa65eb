//! `DynamoDeletionJobs` against the emulator: the job is created in one transaction with the
//! target's deletion mark and the check that the actor is not being deleted; saves are
//! conditional on the version or on the save's own token; open jobs come from the sparse
//! `open_jobs` index.

use aws_adapters::DynamoDeletionJobs;
use domain::job::{DeletionJob, Lease, Step, TableProgress};
use domain::ports::{Created, DeletionJobs, OpenJob, Saved};
use integration_tests::{profile, str_attr, user_id, Harness};
use std::collections::BTreeMap;
use test_support::faults::{dynamodb_client, ReplaceAnswers};

fn jobs(h: &Harness) -> DynamoDeletionJobs {
    DynamoDeletionJobs::new(
        h.dynamo.clone(),
        h.table("DELETION_JOBS_TABLE"),
        h.table("PROFILES_TABLE"),
    )
}

const T0: &str = "2025-01-01T00:00:00.000Z";

fn job(user: &str, job_id: &str, actor: &str) -> DeletionJob {
    let meta = domain::model::RequestMeta {
        request_id: "req-1".into(),
        ..Default::default()
    };
    DeletionJob {
        target_email_sha256: Some("cd".repeat(32)),
        auth_username: Some(format!("cognito-{user}")),
        ..DeletionJob::started(user, job_id, actor, "user", T0, &meta)
    }
}

/// An admin and a user with profiles; returns their ids.
async fn admin_and_user(h: &Harness) -> (String, String) {
    let admin = user_id("admin");
    let user = user_id("user");
    h.put_profile(&profile(&admin, Some("ada@teleperson.com"), "admin", "Ada"))
        .await;
    h.put_profile(&profile(&user, Some("ulla@example.com"), "user", "Ulla"))
        .await;
    (admin, user)
}

async fn mark_of(h: &Harness, user: &str) -> Option<String> {
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", user).await?;
    str_attr(&row, "deletion_job_id").map(str::to_owned)
}

#[tokio::test]
async fn a_job_is_created_with_the_targets_mark_and_a_second_create_joins_it() {
    let h = Harness::new().await;
    let (admin, user) = admin_and_user(&h).await;
    let store = jobs(&h);
    assert_eq!(mark_of(&h, &user).await, None);

    assert_eq!(
        store.create(&job(&user, "job-a", &admin)).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        mark_of(&h, &user).await.as_deref(),
        Some("job-a"),
        "the target's profile is marked in the same transaction"
    );
    assert_eq!(
        mark_of(&h, &admin).await,
        None,
        "the actor's profile is only checked"
    );
    let row = h
        .get(&h.table("DELETION_JOBS_TABLE"), "user_id", &user)
        .await
        .unwrap();
    assert_eq!(str_attr(&row, "status"), Some("in_progress"));
    assert_eq!(str_attr(&row, "open_state"), Some("in_progress"));
    assert!(str_attr(&row, "due_at").is_some());

    // A second delete of the same user joins the first job, whoever asks.
    match store.create(&job(&user, "job-b", &admin)).await.unwrap() {
        Created::Exists(existing) => assert_eq!(existing, job(&user, "job-a", &admin)),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(mark_of(&h, &user).await.as_deref(), Some("job-a"));
    assert_eq!(store.get(&user).await.unwrap(), Some(job(&user, "job-a", &admin)));
    assert_eq!(store.get("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn an_actor_whose_own_deletion_has_begun_cannot_create_a_job() {
    let h = Harness::new().await;
    let store = jobs(&h);
    let (admin, user) = admin_and_user(&h).await;
    // The admin's own deletion job exists (created by another owner a moment ago).
    let owner = user_id("owner");
    h.put_profile(&profile(&owner, Some("olga@teleperson.com"), "owner", "Olga"))
        .await;
    assert_eq!(
        store.create(&job(&admin, "job-of-admin", &owner)).await.unwrap(),
        Created::Created
    );

    assert_eq!(
        store.create(&job(&user, "job-u", &admin)).await.unwrap(),
        Created::ActorDeleted
    );
    assert_eq!(store.get(&user).await.unwrap(), None, "no job was written");
    assert_eq!(mark_of(&h, &user).await, None, "the target was not marked");

    // The same for an actor whose profile is a tombstone already.
    let mut gone = profile(&user_id("gone"), None, "admin", "Deleted User");
    gone.deleted_at = Some(T0.into());
    h.put_profile(&gone).await;
    assert_eq!(
        store.create(&job(&user, "job-v", &gone.user_id)).await.unwrap(),
        Created::ActorDeleted
    );
    assert_eq!(store.get(&user).await.unwrap(), None);
}

#[tokio::test]
async fn a_target_without_a_profile_row_gets_no_job() {
    let h = Harness::new().await;
    let (admin, _) = admin_and_user(&h).await;
    let store = jobs(&h);
    let err = store
        .create(&job("no-such-user", "job-x", &admin))
        .await
        .unwrap_err();
    assert_eq!(err.dependency, "deletion_jobs");
    assert_eq!(store.get("no-such-user").await.unwrap(), None);
    assert!(h
        .get(&h.table("PROFILES_TABLE"), "user_id", "no-such-user")
        .await
        .is_none());
}

/// Two owners delete each other at the same instant. Each create is one transaction: put the
/// job, mark the target, check that the actor carries no mark. DynamoDB serialises the two
/// transactions, so the second one finds its actor marked by the first and is refused.
///
/// moto does not serialise transactions (no lock in `transact_write_items`, and a cancelled
/// one is rolled back by restoring table copies taken when it started): on bare moto the two
/// interleave, each writes its mark before the other's check, and both are refused (no job
/// at all) in about one race in thirty (measured: 5 of 150); with other timings both could
/// apply, or a rollback could undo the winner's write. The harness's SDK configuration isolates
/// writes the way DynamoDB does (`test_support::isolation`), which leaves the
/// order of the two to the race: the test runs the race many times and checks the invariant
/// (exactly one job, the other refused as deleted) whichever order it took. An adapter
/// without the actor check makes two jobs in every round.
#[tokio::test]
async fn two_owners_deleting_each_other_at_once_make_exactly_one_job() {
    let h = Harness::new().await;
    let store = jobs(&h);
    let mut first_won = 0;
    for round in 0..20 {
        let a = user_id("owner-a");
        let b = user_id("owner-b");
        h.put_profile(&profile(&a, Some("a@teleperson.com"), "owner", "Ann Owner"))
            .await;
        h.put_profile(&profile(&b, Some("b@teleperson.com"), "owner", "Bo Owner"))
            .await;
        let a_deletes_b = job(&b, &format!("job-b-{round}"), &a);
        let b_deletes_a = job(&a, &format!("job-a-{round}"), &b);
        let (ab, ba) = futures::join!(store.create(&a_deletes_b), store.create(&b_deletes_a));
        let (ab, ba) = (ab.unwrap(), ba.unwrap());
        let (winner, loser) = match (&ab, &ba) {
            (Created::Created, Created::ActorDeleted) => {
                first_won += 1;
                (&b, &a)
            }
            (Created::ActorDeleted, Created::Created) => (&a, &b),
            other => panic!("round {round}: exactly one job, the other refused; got {other:?}"),
        };
        // `winner` is the one being deleted (its job exists); the loser is the survivor.
        assert!(store.get(winner).await.unwrap().is_some(), "round {round}");
        assert_eq!(store.get(loser).await.unwrap(), None, "round {round}");
        assert!(mark_of(&h, winner).await.is_some(), "round {round}");
        assert_eq!(mark_of(&h, loser).await, None, "round {round}");
    }
    eprintln!("the first request won {first_won} of 20 races");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_joins_the_job_it_created() {
    let h = Harness::new().await;
    let (admin, user) = admin_and_user(&h).await;
    let lost = ReplaceAnswers::lose_dynamodb("TransactWriteItems", 1);
    let store = DynamoDeletionJobs::new(
        dynamodb_client(&h.sdk, &lost),
        h.table("DELETION_JOBS_TABLE"),
        h.table("PROFILES_TABLE"),
    );
    // The transaction applied; its answer was lost; the SDK sent it again (with the same
    // ClientRequestToken). DynamoDB replays the first answer (`Created`); moto does not, and
    // the retry meets the job it wrote (`Exists` of that very job): both are this job.
    match store.create(&job(&user, "job-a", &admin)).await.unwrap() {
        Created::Exists(existing) => assert_eq!(existing, job(&user, "job-a", &admin), "its own job"),
        Created::Created => {}
        other => panic!("the retried create is the same job: {other:?}"),
    }
    assert_eq!((lost.calls(), lost.replaced()), (2, 1));
    assert_eq!(mark_of(&h, &user).await.as_deref(), Some("job-a"));
}

#[tokio::test]
async fn saving_needs_the_previous_version_and_round_trips_progress_and_lease() {
    let h = Harness::new().await;
    let (admin, user) = admin_and_user(&h).await;
    let store = jobs(&h);
    store.create(&job(&user, "job-a", &admin)).await.unwrap();

    let mut next = job(&user, "job-a", &admin);
    next.version = 2;
    next.step = Step::Cascade;
    next.locked_out_at = Some("2025-01-01T00:00:01.000Z".into());
    next.lease = Some(Lease {
        owner: "runner-1".into(),
        until: "2025-01-01T00:01:00.000Z".into(),
    });
    next.progress.insert(
        "transactions".into(),
        TableProgress {
            deleted: 250,
            cursor: Some(BTreeMap::from([
                ("user_id".into(), user.clone()),
                ("transaction_id".into(), "t-250".into()),
            ])),
            pending: vec![BTreeMap::from([
                ("user_id".into(), user.clone()),
                ("transaction_id".into(), "t-251".into()),
            ])],
            ..TableProgress::default()
        },
    );
    next.progress.insert(
        "sessions".into(),
        TableProgress {
            deleted: 3,
            exhausted: true,
            verifying: true,
            ..TableProgress::default()
        },
    );
    assert_eq!(store.save(&next).await.unwrap(), Saved::Saved);
    assert_eq!(store.get(&user).await.unwrap(), Some(next.clone()));

    // A runner that read version 1 and saves version 2 again has lost the race.
    let mut stale = job(&user, "job-a", &admin);
    stale.version = 2;
    assert_eq!(store.save(&stale).await.unwrap(), Saved::Conflict);
    let mut skipping = next.clone();
    skipping.version = 4;
    assert_eq!(store.save(&skipping).await.unwrap(), Saved::Conflict);
    assert_eq!(store.get(&user).await.unwrap(), Some(next));

    let row = h
        .get(&h.table("DELETION_JOBS_TABLE"), "user_id", &user)
        .await
        .unwrap();
    assert!(str_attr(&row, "progress").is_some(), "progress is a JSON string");
    assert!(str_attr(&row, "lease").is_some(), "the lease is a JSON string");
    assert_eq!(
        row["deleted"].as_m().unwrap()["transactions"].as_n().unwrap(),
        "250"
    );
    assert_eq!(
        str_attr(&row, "due_at"),
        Some("2025-01-01T00:03:00.000Z"),
        "an open job is due for the sweep a grace after its lease"
    );
}

#[tokio::test]
async fn a_save_whose_answer_was_lost_is_recognised_by_its_own_token() {
    let h = Harness::new().await;
    let (admin, user) = admin_and_user(&h).await;
    jobs(&h).create(&job(&user, "job-a", &admin)).await.unwrap();
    let lost = ReplaceAnswers::lose_dynamodb("PutItem", 1);
    let store = DynamoDeletionJobs::new(
        dynamodb_client(&h.sdk, &lost),
        h.table("DELETION_JOBS_TABLE"),
        h.table("PROFILES_TABLE"),
    );

    let mut next = job(&user, "job-a", &admin);
    next.version = 2;
    next.step = Step::LockOut;
    // The first PutItem applies (version 1 → 2) and its answer is lost; the SDK sends it
    // again, and the stored version is no longer 1: only the save's own token matches.
    assert_eq!(store.save(&next).await.unwrap(), Saved::Saved);
    assert_eq!((lost.calls(), lost.replaced()), (2, 1), "the save was sent twice");
    assert_eq!(store.get(&user).await.unwrap(), Some(next.clone()));

    // Another save of version 2 (another runner, another token) is still a conflict.
    let mut other = next.clone();
    other.step = Step::Anonymise;
    assert_eq!(store.save(&other).await.unwrap(), Saved::Conflict);
    assert_eq!(store.get(&user).await.unwrap(), Some(next));
}

#[tokio::test]
async fn open_jobs_come_from_the_sparse_index_soonest_due_first_and_a_done_job_leaves_it() {
    let h = Harness::new().await;
    let store = jobs(&h);
    let admin = user_id("admin");
    h.put_profile(&profile(&admin, Some("ada@teleperson.com"), "admin", "Ada"))
        .await;
    let users: Vec<String> = (0..4).map(|i| user_id(&format!("u{i}"))).collect();
    for u in &users {
        h.put_profile(&profile(u, Some("x@example.com"), "user", "X"))
            .await;
    }
    let mut created = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let j = job(u, &format!("job-{i}"), &admin);
        assert_eq!(store.create(&j).await.unwrap(), Created::Created);
        created.push(j);
    }
    // job-0: in progress, last saved at T0 (due T0 + 2 min).
    // job-1: in progress, leased until 00:10 (due 00:12).
    let mut j1 = created[1].clone();
    j1.version = 2;
    j1.step = Step::Cascade;
    j1.lease = Some(Lease {
        owner: "runner".into(),
        until: "2025-01-01T00:10:00.000Z".into(),
    });
    assert_eq!(store.save(&j1).await.unwrap(), Saved::Saved);
    // job-2: completed, its late pass due at 00:05.
    let mut j2 = created[2].clone();
    j2.version = 2;
    j2.step = Step::LatePass;
    j2.completed_at = Some("2025-01-01T00:00:30.000Z".into());
    j2.late_pass_due_at = Some("2025-01-01T00:05:00.000Z".into());
    assert_eq!(store.save(&j2).await.unwrap(), Saved::Saved);
    // job-3: done: not open any more.
    let mut j3 = created[3].clone();
    j3.version = 2;
    j3.step = Step::Done;
    j3.late_pass_due_at = Some("2025-01-01T00:05:00.000Z".into());
    j3.late_pass_done_at = Some("2025-01-01T01:00:00.000Z".into());
    assert_eq!(store.save(&j3).await.unwrap(), Saved::Saved);

    let open = |j: &DeletionJob, due: &str, completed: bool| OpenJob {
        user_id: j.user_id.clone(),
        job_id: j.job_id.clone(),
        created_at: T0.into(),
        due_at: due.into(),
        completed,
    };
    let want = vec![
        open(&created[0], "2025-01-01T00:02:00.000Z", false),
        open(&j2, "2025-01-01T00:05:00.000Z", true),
        open(&j1, "2025-01-01T00:12:00.000Z", false),
    ];
    assert_eq!(store.open(10).await.unwrap(), want);
    assert_eq!(store.open(2).await.unwrap(), want[..2].to_vec());

    // The late pass runs: job-2 is done and leaves the index.
    let mut j2_done = j2.clone();
    j2_done.version = 3;
    j2_done.step = Step::Done;
    j2_done.late_pass_done_at = Some("2025-01-01T00:05:01.000Z".into());
    assert_eq!(store.save(&j2_done).await.unwrap(), Saved::Saved);
    assert_eq!(
        store.open(10).await.unwrap(),
        vec![want[0].clone(), want[2].clone()]
    );
    let row = h
        .get(&h.table("DELETION_JOBS_TABLE"), "user_id", &j2.user_id)
        .await
        .unwrap();
    assert!(!row.contains_key("open_state") && !row.contains_key("due_at"));
    assert_eq!(str_attr(&row, "status"), Some("completed"));
}

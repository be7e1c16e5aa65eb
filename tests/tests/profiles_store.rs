//! `DynamoProfiles` against the emulator: read, anonymise (with the send lease), list.

use aws_adapters::{DynamoMessageOutbox, DynamoProfiles};
use chrono::{Duration, Utc};
use domain::cursor::UserCursor;
use domain::model::{AdminMessage, MessageStatus, Profile};
use domain::ports::{Anonymised, ListQuery, MessageOutbox, Profiles, Reserved};
use integration_tests::{profile, str_attr, Harness};

fn profiles(h: &Harness) -> DynamoProfiles {
    DynamoProfiles::new(h.dynamo.clone(), h.table("PROFILES_TABLE"))
}

fn outbox(h: &Harness) -> DynamoMessageOutbox {
    DynamoMessageOutbox::new(
        h.dynamo.clone(),
        h.table("ADMIN_MESSAGES_TABLE"),
        h.table("PROFILES_TABLE"),
        h.table("SECURITY_LOGS_TABLE"),
    )
}

fn message(id: &str, recipient: &str) -> AdminMessage {
    AdminMessage {
        message_id: id.to_owned(),
        sender_id: "admin-1".into(),
        recipient_id: recipient.to_owned(),
        subject: "Hello".into(),
        body: "Body".into(),
        status: MessageStatus::Pending,
        ses_message_id: None,
        error_code: None,
        created_at: domain::model::timestamp(Utc::now()),
        sent_at: None,
        updated_at: None,
        attempt: None,
    }
}

#[tokio::test]
async fn a_profile_is_read_with_every_field_and_a_missing_one_is_none() {
    let h = Harness::new().await;
    let mut p = profile("u-1", Some("Ann@Example.com"), "admin", "Ann");
    p.auth_username = Some("ann-cognito".into());
    h.put_profile(&p).await;
    assert_eq!(profiles(&h).get("u-1").await.unwrap(), Some(p));
    assert_eq!(profiles(&h).get("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn anonymising_turns_the_profile_into_a_tombstone_once() {
    let h = Harness::new().await;
    let mut p = profile("u-1", Some("ann@example.com"), "user", "Ann");
    p.auth_username = Some("ann-cognito".into());
    h.put_profile(&p).await;
    let store = profiles(&h);

    let now = Utc::now();
    assert_eq!(store.anonymise("u-1", now).await.unwrap(), Anonymised::Done);
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-1").await.unwrap();
    assert_eq!(str_attr(&row, "display_name"), Some(Profile::TOMBSTONE_NAME));
    assert!(!row.contains_key("email"));
    assert!(!row.contains_key("auth_username"));
    assert_eq!(
        str_attr(&row, "role"),
        Some("user"),
        "the role stays for the audit trail"
    );
    let deleted_at = str_attr(&row, "deleted_at").unwrap().to_owned();

    // Again: still done, and the first deletion time is kept.
    assert_eq!(
        store.anonymise("u-1", now + Duration::seconds(5)).await.unwrap(),
        Anonymised::Done
    );
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-1").await.unwrap();
    assert_eq!(str_attr(&row, "deleted_at"), Some(deleted_at.as_str()));
    assert!(store.get("u-1").await.unwrap().unwrap().is_tombstone());
}

#[tokio::test]
async fn anonymising_a_missing_profile_reports_it_missing_and_creates_nothing() {
    let h = Harness::new().await;
    assert_eq!(
        profiles(&h).anonymise("ghost", Utc::now()).await.unwrap(),
        Anonymised::Missing
    );
    assert!(h
        .get(&h.table("PROFILES_TABLE"), "user_id", "ghost")
        .await
        .is_none());
}

#[tokio::test]
async fn anonymising_is_refused_while_a_send_holds_the_lease_and_allowed_after_it() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let now = Utc::now();
    let lease = now + Duration::seconds(30);
    assert_eq!(
        outbox(&h).reserve(&message("m-1", "u-1"), lease).await.unwrap(),
        Reserved::Reserved
    );

    assert!(
        !profiles(&h).get("u-1").await.unwrap().unwrap().is_deleted(),
        "a lease is not a deletion"
    );
    match profiles(&h).anonymise("u-1", now).await.unwrap() {
        Anonymised::SendInFlight { until } => assert_eq!(until.timestamp_millis(), lease.timestamp_millis()),
        other => panic!("expected SendInFlight, got {other:?}"),
    }
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-1").await.unwrap();
    assert_eq!(
        str_attr(&row, "email"),
        Some("ann@example.com"),
        "nothing changed"
    );

    let later = lease + Duration::milliseconds(1);
    assert_eq!(
        profiles(&h).anonymise("u-1", later).await.unwrap(),
        Anonymised::Done
    );
    // After the tombstone, no new send can take a lease.
    assert_eq!(
        outbox(&h).reserve(&message("m-2", "u-1"), later).await.unwrap(),
        Reserved::RecipientGone
    );
}

#[tokio::test]
async fn the_list_filters_case_insensitively_and_pages_with_a_cursor() {
    let h = Harness::new().await;
    for (id, email, name) in [
        ("u-1", "ann@example.com", "Ann Archer"),
        ("u-2", "bob@example.com", "Bob Baker"),
        ("u-3", "ANNA@corp.example", "Anna Cole"),
        ("u-4", "dan@example.com", "Dan Dean"),
        ("u-5", "eve@example.com", "Joanne Eve"),
    ] {
        h.put_profile(&profile(id, Some(email), "user", name)).await;
    }
    let mut gone = profile("u-6", None, "user", Profile::TOMBSTONE_NAME);
    gone.deleted_at = Some("2025-02-01T00:00:00.000Z".into());
    h.put_profile(&gone).await;
    let store = profiles(&h);

    let q = |search: Option<&str>, limit, cursor: Option<UserCursor>, include_deleted| ListQuery {
        search: search.map(str::to_owned),
        limit,
        cursor,
        include_deleted,
    };
    let page = store.list(&q(Some("ANN"), 10, None, false)).await.unwrap();
    let mut ids: Vec<&str> = page.items.iter().map(|p| p.user_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["u-1", "u-3", "u-5"], "matches email or name, any case");
    assert_eq!(page.next, None);

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list(&q(None, 2, cursor.clone(), false)).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|p| p.user_id.clone()));
        match page.next {
            Some(c) => {
                let last = page.items.last().expect("a page with a next page has rows");
                assert_eq!(c, last.user_id, "the cursor is the last user of the page");
                cursor = Some(UserCursor::parse(&c).unwrap());
            }
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    seen.sort();
    assert_eq!(
        seen,
        vec!["u-1", "u-2", "u-3", "u-4", "u-5"],
        "every live user once, tombstones left out"
    );

    let all = store.list(&q(None, 50, None, true)).await.unwrap();
    assert_eq!(all.items.len(), 6);
    // A cursor naming a user id that no row has is still a starting point of the scan (a
    // cursor only moves where a list the caller may read starts), never a store error.
    let forged = UserCursor::parse("no-such-user").unwrap();
    let page = store.list(&q(None, 5, Some(forged), false)).await.unwrap();
    assert!(page
        .items
        .iter()
        .all(|p| ["u-1", "u-2", "u-3", "u-4", "u-5"].contains(&p.user_id.as_str())));
}

#[tokio::test]
async fn the_send_leases_are_a_set_released_twice_harmlessly_and_the_tombstone_waits_for_all() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-2", Some("bo@example.com"), "user", "Bo"))
        .await;
    let now = Utc::now();
    let lease = now + Duration::seconds(30);
    let out = outbox(&h);
    for id in ["m-a", "m-b"] {
        assert_eq!(
            out.reserve(&message(id, "u-2"), lease).await.unwrap(),
            Reserved::Reserved
        );
    }
    out.release("u-2", "m-a").await.unwrap();
    // The release of m-a again (an SDK retry of a write that applied): with a counter this
    // would release m-b's lease too; with the set it changes nothing.
    out.release("u-2", "m-a").await.unwrap();
    match profiles(&h).anonymise("u-2", now).await.unwrap() {
        Anonymised::SendInFlight { until } => assert_eq!(until.timestamp_millis(), lease.timestamp_millis()),
        other => panic!("m-b is still being sent: {other:?}"),
    }
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-2").await.unwrap();
    assert_eq!(row["send_leases"].as_ss().unwrap(), &vec!["m-b".to_owned()]);
    assert_eq!(str_attr(&row, "email"), Some("bo@example.com"), "nothing changed");

    out.release("u-2", "m-b").await.unwrap();
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-2").await.unwrap();
    assert!(!row.contains_key("send_leases"), "the empty set is gone");
    assert_eq!(
        profiles(&h).anonymise("u-2", now).await.unwrap(),
        Anonymised::Done,
        "every send is over: the tombstone goes ahead before the lease time"
    );
    let row = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-2").await.unwrap();
    assert!(str_attr(&row, "email").is_none());
    assert!(
        !row.contains_key("send_leases") && !row.contains_key("send_lease_until"),
        "the tombstone keeps no lease bookkeeping"
    );
    // Releasing on a tombstone changes nothing, and adds nothing.
    out.release("u-2", "m-b").await.unwrap();
    let after = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-2").await.unwrap();
    assert_eq!(after, row);
    out.release("nobody", "m-b").await.unwrap();
    assert!(h
        .get(&h.table("PROFILES_TABLE"), "user_id", "nobody")
        .await
        .is_none());
}

#[tokio::test]
async fn a_send_that_crashed_before_its_release_stops_holding_the_tombstone_at_its_lease_end() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-3", Some("cy@example.com"), "user", "Cy"))
        .await;
    let now = Utc::now();
    let lease = now + Duration::seconds(30);
    outbox(&h).reserve(&message("m-c", "u-3"), lease).await.unwrap();
    // Never released. Just before the lease ends the tombstone waits; just after, it goes.
    assert!(matches!(
        profiles(&h)
            .anonymise("u-3", lease - Duration::milliseconds(1))
            .await
            .unwrap(),
        Anonymised::SendInFlight { .. }
    ));
    assert_eq!(
        profiles(&h)
            .anonymise("u-3", lease + Duration::milliseconds(1))
            .await
            .unwrap(),
        Anonymised::Done
    );
}

#[tokio::test]
async fn the_active_owners_come_from_the_role_index_without_tombstones_or_owners_being_deleted() {
    let h = Harness::new().await;
    h.put_profile(&profile("o-1", Some("o1@teleperson.com"), "owner", "One"))
        .await;
    h.put_profile(&profile("o-2", Some("o2@teleperson.com"), "owner", "Two"))
        .await;
    let mut leaving = profile("o-3", Some("o3@teleperson.com"), "owner", "Three");
    leaving.deletion_job_id = Some("job-3".into());
    h.put_profile(&leaving).await;
    let mut gone = profile("o-4", None, "owner", Profile::TOMBSTONE_NAME);
    gone.deleted_at = Some("2025-02-01T00:00:00.000Z".into());
    h.put_profile(&gone).await;
    h.put_profile(&profile("a-1", Some("a1@teleperson.com"), "admin", "Admin"))
        .await;
    h.put_profile(&profile("u-1", Some("u1@example.com"), "user", "User"))
        .await;

    let mut owners = profiles(&h).active_owners().await.unwrap();
    owners.sort();
    assert_eq!(owners, vec!["o-1", "o-2"]);
}

//! `DynamoMessageOutbox`, `DynamoSecurityLog` and `DynamoDeliveryLog` against the emulator:
//! the pending row and the send lease written together, the attempt marker and the audit
//! event written together before SES is called, the bookkeeping after it, the sparse index of
//! pending rows the sweep reads, and delivery events.

use aws_adapters::{DynamoDeliveryLog, DynamoMessageOutbox, DynamoSecurityLog};
use chrono::{DateTime, Duration, Utc};
use domain::cursor::MessageCursor;
use domain::model::{AdminMessage, EventType, MessageStatus, RequestMeta, SecurityEvent};
use domain::ports::{
    Appended, Attempt, DeliveryLog, DeliveryRecord, DeliveryUpdate, MessageOutbox, Recorded, Reserved,
    SecurityLog,
};
use integration_tests::{profile, str_attr, Harness, Item};
use test_support::faults::{dynamodb_client, ReplaceAnswers};

fn outbox(h: &Harness) -> DynamoMessageOutbox {
    outbox_on(h, h.dynamo.clone())
}

fn outbox_on(h: &Harness, client: aws_sdk_dynamodb::Client) -> DynamoMessageOutbox {
    DynamoMessageOutbox::new(
        client,
        h.table("ADMIN_MESSAGES_TABLE"),
        h.table("PROFILES_TABLE"),
        h.table("SECURITY_LOGS_TABLE"),
    )
}

fn delivery(h: &Harness) -> DynamoDeliveryLog {
    DynamoDeliveryLog::new(h.dynamo.clone(), h.table("ADMIN_MESSAGES_TABLE"))
}

fn message(id: &str, recipient: &str, created_at: &str) -> AdminMessage {
    AdminMessage {
        message_id: id.to_owned(),
        sender_id: "admin-1".into(),
        recipient_id: recipient.to_owned(),
        subject: "Your account".into(),
        body: "Hello there".into(),
        status: MessageStatus::Pending,
        ses_message_id: None,
        error_code: None,
        created_at: created_at.to_owned(),
        sent_at: None,
        updated_at: None,
        attempt: None,
    }
}

fn meta() -> RequestMeta {
    RequestMeta {
        caller: Some("admin-1".into()),
        request_id: "req-1".into(),
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("tests".into()),
        token_issued_at: None,
    }
}

fn sent_event(message_id: &str, target: &str) -> SecurityEvent {
    SecurityEvent::new(
        format!("{message_id}#sent"),
        EventType::AdminSentUserMessage,
        target,
        &meta(),
        "2025-01-01T00:00:01.000Z",
    )
    .with("message_id", message_id)
}

const T0: &str = "2025-01-01T00:00:00.000Z";

fn lease() -> DateTime<Utc> {
    Utc::now() + Duration::seconds(30)
}

async fn with_recipient(h: &Harness, user: &str) {
    h.put_profile(&profile(user, Some("ann@example.com"), "user", "Ann"))
        .await;
}

async fn raw_message(h: &Harness, id: &str) -> Item {
    h.get(&h.table("ADMIN_MESSAGES_TABLE"), "message_id", id)
        .await
        .expect("the message row")
}

async fn leases_of(h: &Harness, user: &str) -> Vec<String> {
    let row = h
        .get(&h.table("PROFILES_TABLE"), "user_id", user)
        .await
        .expect("the profile");
    let mut ids = row
        .get("send_leases")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn sent_events(h: &Harness, message_id: &str) -> Vec<Item> {
    h.rows_where(&h.table("SECURITY_LOGS_TABLE"), "message_id", message_id)
        .await
}

fn record(message_id: Option<&str>, ses: &str, update: DeliveryUpdate, at: &str) -> DeliveryRecord {
    DeliveryRecord {
        message_id: message_id.map(str::to_owned),
        ses_message_id: ses.to_owned(),
        update,
        at: at.to_owned(),
    }
}

/// Records a delivery event through `log`.
async fn deliver(
    log: &DynamoDeliveryLog, message_id: Option<&str>, ses: &str, update: DeliveryUpdate, at: &str,
) -> Recorded {
    log.record_delivery(&record(message_id, ses, update, at))
        .await
        .unwrap()
}

/// The outbox, with u-1 as a recipient and `ids` reserved for them (created at `T0`).
async fn outbox_with(h: &Harness, ids: &[&str]) -> DynamoMessageOutbox {
    with_recipient(h, "u-1").await;
    let store = outbox(h);
    for id in ids {
        reserve(&store, id).await;
    }
    store
}

/// Reserves message `id` to u-1, created at `T0`.
async fn reserve(store: &DynamoMessageOutbox, id: &str) -> Reserved {
    store.reserve(&message(id, "u-1", T0), lease()).await.unwrap()
}

/// Reserves m-0 … m-4 to u-1, one second apart.
async fn reserve_five(store: &DynamoMessageOutbox, lease: DateTime<Utc>) {
    for i in 0..5 {
        let at = format!("2025-01-01T00:00:0{i}.000Z");
        store
            .reserve(&message(&format!("m-{i}"), "u-1", &at), lease)
            .await
            .unwrap();
    }
}

/// Begins `attempt` of message `id` (to u-1) with its audit event.
async fn begin(store: &DynamoMessageOutbox, id: &str, attempt: &str) -> Attempt {
    store
        .begin_attempt(id, attempt, &sent_event(id, "u-1"))
        .await
        .unwrap()
}

/// The stored message `id`, which must exist.
async fn stored(store: &DynamoMessageOutbox, id: &str) -> AdminMessage {
    store.get(id).await.unwrap().expect("the message")
}

/// Message `id` is sent with this provider id at this time.
fn assert_sent(row: &AdminMessage, ses: &str, at: &str) {
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(row.ses_message_id.as_deref(), Some(ses));
    assert_eq!(row.sent_at.as_deref(), Some(at));
}

/// The raw row of message `id` is out of the sparse index of pending rows.
async fn assert_not_queued(h: &Harness, id: &str) {
    assert!(
        !raw_message(h, id).await.contains_key("pending_queue"),
        "{id} left the pending index"
    );
}

/// The ids on u-1's history page that starts at `cursor`, and the page's next cursor.
async fn history_after(store: &DynamoMessageOutbox, cursor: &str) -> (Vec<String>, Option<String>) {
    let from = MessageCursor::parse(cursor).unwrap();
    let page = store.history("u-1", 10, Some(&from)).await.unwrap();
    let ids = page.items.iter().map(|m| m.message_id.clone()).collect();
    (ids, page.next)
}

#[tokio::test]
async fn reserving_writes_a_pending_row_and_adds_the_message_to_the_recipients_leases() {
    let h = Harness::new().await;
    with_recipient(&h, "u-1").await;
    let store = outbox(&h);
    let until = lease();
    let m = message("m-1", "u-1", T0);
    assert_eq!(store.reserve(&m, until).await.unwrap(), Reserved::Reserved);

    assert_eq!(store.get("m-1").await.unwrap(), Some(m.clone()));
    let row = raw_message(&h, "m-1").await;
    assert_eq!(
        str_attr(&row, "pending_queue"),
        Some("pending"),
        "in the sparse index"
    );
    assert!(!row.contains_key("attempt") && !row.contains_key("ses_message_id"));
    let p = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-1").await.unwrap();
    assert_eq!(
        p["send_lease_until"].as_n().unwrap(),
        &until.timestamp_millis().to_string()
    );
    assert_eq!(leases_of(&h, "u-1").await, vec!["m-1"]);

    // A second message to the same user holds its own lease.
    store.reserve(&message("m-2", "u-1", T0), until).await.unwrap();
    assert_eq!(leases_of(&h, "u-1").await, vec!["m-1", "m-2"]);
}

#[tokio::test]
async fn a_pending_row_with_no_attempt_is_reserved_again_but_an_attempted_one_is_not() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &[]).await;
    let m = message("m-1", "u-1", T0);
    assert_eq!(store.reserve(&m, lease()).await.unwrap(), Reserved::Reserved);
    // A request that took the idempotency key over reserves the same message id again: SES
    // was never called for it, so the row is written again and the lease taken again (once).
    let mut again = m.clone();
    again.created_at = "2025-01-01T00:00:40.000Z".into();
    assert_eq!(store.reserve(&again, lease()).await.unwrap(), Reserved::Reserved);
    assert_eq!(store.get("m-1").await.unwrap(), Some(again.clone()));
    assert_eq!(
        leases_of(&h, "u-1").await,
        vec!["m-1"],
        "the lease set holds the id once"
    );

    // Once an attempt marked the row, nothing reserves it again: the stored row comes back.
    assert_eq!(begin(&store, "m-1", "attempt-1").await, Attempt::Began);
    let stored = stored(&store, "m-1").await;
    assert_eq!(stored.attempt.as_deref(), Some("attempt-1"));
    let mut other = m.clone();
    other.subject = "Something else".into();
    assert_eq!(
        store.reserve(&other, lease()).await.unwrap(),
        Reserved::Exists(stored.clone())
    );
    // And a row that is no longer pending comes back as it is.
    store.mark_sent("m-1", "ses-1", T0).await.unwrap();
    match store.reserve(&m, lease()).await.unwrap() {
        Reserved::Exists(row) => assert_eq!(row.status, MessageStatus::Sent),
        other => panic!("expected Exists, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reserve_whose_answer_was_lost_is_reserved_once() {
    let h = Harness::new().await;
    with_recipient(&h, "u-1").await;
    let lost = ReplaceAnswers::lose_dynamodb("TransactWriteItems", 1);
    let store = outbox_on(&h, dynamodb_client(&h.sdk, &lost));
    let m = message("m-1", "u-1", T0);
    assert_eq!(store.reserve(&m, lease()).await.unwrap(), Reserved::Reserved);
    assert_eq!(
        (lost.calls(), lost.replaced()),
        (2, 1),
        "the transaction was sent twice"
    );
    assert_eq!(store.get("m-1").await.unwrap(), Some(m));
    assert_eq!(leases_of(&h, "u-1").await, vec!["m-1"]);
}

#[tokio::test]
async fn a_recipient_deleted_without_email_or_being_deleted_cannot_be_reserved() {
    let h = Harness::new().await;
    let mut tomb = profile("u-gone", None, "user", "Deleted User");
    tomb.deleted_at = Some(T0.into());
    h.put_profile(&tomb).await;
    h.put_profile(&profile("u-noemail", None, "user", "No Mail"))
        .await;
    let mut doomed = profile("u-doomed", Some("dora@example.com"), "user", "Dora");
    doomed.deletion_job_id = Some("job-1".into());
    h.put_profile(&doomed).await;
    for (id, user) in [
        ("m-1", "u-gone"),
        ("m-2", "u-noemail"),
        ("m-3", "u-missing"),
        ("m-4", "u-doomed"),
    ] {
        assert_eq!(
            outbox(&h).reserve(&message(id, user, T0), lease()).await.unwrap(),
            Reserved::RecipientGone,
            "{user}"
        );
        assert_eq!(outbox(&h).get(id).await.unwrap(), None, "no row for {user}");
    }
    for user in ["u-gone", "u-doomed"] {
        let p = h.get(&h.table("PROFILES_TABLE"), "user_id", user).await.unwrap();
        assert!(!p.contains_key("send_lease_until") && !p.contains_key("send_leases"));
    }
}

#[tokio::test]
async fn beginning_an_attempt_marks_the_row_and_writes_the_audit_event_together() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;

    assert_eq!(begin(&store, "m-1", "a-1").await, Attempt::Began);
    assert_eq!(str_attr(&raw_message(&h, "m-1").await, "attempt"), Some("a-1"));
    let events = sent_events(&h, "m-1").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    for (k, v) in [
        ("event_id", "m-1#sent"),
        ("event_type", "admin_sent_user_message"),
        ("actor_id", "admin-1"),
        ("target_id", "u-1"),
        ("request_id", "req-1"),
        ("message_id", "m-1"),
    ] {
        assert_eq!(str_attr(e, k), Some(v), "{k}");
    }

    // The same attempt again (a retry of that very write): still this attempt's, one event.
    assert_eq!(begin(&store, "m-1", "a-1").await, Attempt::Began);
    // Any other attempt: SES may have been called, never call it again.
    assert_eq!(begin(&store, "m-1", "a-2").await, Attempt::Taken);
    assert_eq!(str_attr(&raw_message(&h, "m-1").await, "attempt"), Some("a-1"));
    assert_eq!(sent_events(&h, "m-1").await.len(), 1, "exactly one audit event");

    // A row that moved on is not pending any more, whoever asks.
    store.mark_sent("m-1", "ses-1", T0).await.unwrap();
    for attempt in ["a-1", "a-3"] {
        assert_eq!(begin(&store, "m-1", attempt).await, Attempt::NotPending);
    }
    assert_eq!(begin(&store, "m-missing", "a-1").await, Attempt::NotPending);
    assert!(
        sent_events(&h, "m-missing").await.is_empty(),
        "no audit event without a row"
    );
}

#[tokio::test]
async fn an_attempt_whose_answer_was_lost_is_still_this_attempts() {
    let h = Harness::new().await;
    outbox_with(&h, &["m-1"]).await;
    let lost = ReplaceAnswers::lose_dynamodb("TransactWriteItems", 1);
    let store = outbox_on(&h, dynamodb_client(&h.sdk, &lost));
    // The retry meets its own marker and its own event (moto replays no transaction).
    assert_eq!(begin(&store, "m-1", "a-1").await, Attempt::Began);
    assert_eq!((lost.calls(), lost.replaced()), (2, 1));
    assert_eq!(sent_events(&h, "m-1").await.len(), 1);
}

#[tokio::test]
async fn marking_sent_records_the_provider_id_and_leaves_the_pending_index() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;
    begin(&store, "m-1", "a-1").await;
    let at = "2025-01-01T00:00:01.000Z";
    store.mark_sent("m-1", "ses-123", at).await.unwrap();

    let row = stored(&store, "m-1").await;
    assert_sent(&row, "ses-123", at);
    assert_not_queued(&h, "m-1").await;
    // A retry changes nothing.
    store.mark_sent("m-1", "ses-123", at).await.unwrap();
    assert_eq!(stored(&store, "m-1").await, row);
    // A row the sweep made unconfirmed is confirmed by the send's own answer too.
    reserve(&store, "m-2").await;
    begin(&store, "m-2", "a-2").await;
    assert_eq!(
        store.settle_stale("m-2", at).await.unwrap(),
        Some(MessageStatus::Unconfirmed)
    );
    store.mark_sent("m-2", "ses-2", at).await.unwrap();
    assert_eq!(stored(&store, "m-2").await.status, MessageStatus::Sent);
    // The row may be gone with its recipient: nothing to record, and no row appears.
    store.mark_sent("m-erased", "ses-9", at).await.unwrap();
    assert_eq!(store.get("m-erased").await.unwrap(), None);
}

#[tokio::test]
async fn marking_sent_after_an_ses_event_moved_the_row_on_keeps_its_status() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;
    begin(&store, "m-1", "a-1").await;
    // The Delivery event arrives before the send's own bookkeeping (found by our message id).
    let delivered_at = "2025-01-01T00:00:02.000Z";
    assert_eq!(
        deliver(
            &delivery(&h),
            Some("m-1"),
            "ses-1",
            DeliveryUpdate::Delivered,
            delivered_at
        )
        .await,
        Recorded::Updated
    );
    let sent_at = "2025-01-01T00:00:01.500Z";
    store.mark_sent("m-1", "ses-1", sent_at).await.unwrap();
    let row = stored(&store, "m-1").await;
    assert_eq!(row.status, MessageStatus::Delivered, "never moved back to sent");
    assert_eq!(row.ses_message_id.as_deref(), Some("ses-1"));
    assert_eq!(
        row.sent_at.as_deref(),
        Some(sent_at),
        "what the row lacked is recorded"
    );
    assert_eq!(row.updated_at.as_deref(), Some(delivered_at));
}

#[tokio::test]
async fn marking_failed_records_the_code_but_never_undoes_a_send() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;
    store.mark_failed("m-1", "MessageRejected", T0).await.unwrap();
    let row = stored(&store, "m-1").await;
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("MessageRejected"));
    assert_not_queued(&h, "m-1").await;

    reserve(&store, "m-2").await;
    store.mark_sent("m-2", "ses-2", T0).await.unwrap();
    store.mark_failed("m-2", "Timeout", T0).await.unwrap();
    assert_eq!(stored(&store, "m-2").await.status, MessageStatus::Sent);
    store.mark_failed("m-missing", "Timeout", T0).await.unwrap();
    assert_eq!(store.get("m-missing").await.unwrap(), None);
}

#[tokio::test]
async fn the_sweep_finds_stale_pending_rows_through_the_sparse_index_and_settles_them() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &[]).await;
    let now: DateTime<Utc> = "2025-01-01T12:00:00Z".parse().unwrap();
    let ago = |minutes: i64| domain::model::timestamp(now - Duration::minutes(minutes));
    for (id, minutes) in [
        ("m-40", 40),
        ("m-20", 20),
        ("m-16", 16),
        ("m-5", 5),
        ("m-sent", 50),
    ] {
        store
            .reserve(&message(id, "u-1", &ago(minutes)), lease())
            .await
            .unwrap();
    }
    // m-40 and m-16 were handed to SES (their attempt is marked); m-20's request died before.
    for id in ["m-40", "m-16", "m-sent"] {
        begin(&store, id, &format!("a-{id}")).await;
    }
    store.mark_sent("m-sent", "ses-x", &ago(49)).await.unwrap();
    let before = now - Duration::minutes(15);

    assert_eq!(
        store.stale_pending(before, 10).await.unwrap(),
        vec!["m-40", "m-20", "m-16"],
        "pending rows older than 15 minutes, oldest first; sent ones are not in the index"
    );
    assert_eq!(
        store.stale_pending(before, 2).await.unwrap(),
        vec!["m-40", "m-20"]
    );

    let at = domain::model::timestamp(now);
    // SES may have sent it: unconfirmed. Never handed to SES: failed, so the history does not
    // show a mail that never went.
    for (id, settled, error_code) in [
        ("m-40", MessageStatus::Unconfirmed, None),
        ("m-20", MessageStatus::Failed, Some("NotSent")),
    ] {
        assert_eq!(store.settle_stale(id, &at).await.unwrap(), Some(settled), "{id}");
        let row = stored(&store, id).await;
        assert_eq!(row.status, settled, "{id}");
        match error_code {
            None => assert_eq!(row.updated_at.as_deref(), Some(at.as_str())),
            Some(code) => assert_eq!(row.error_code.as_deref(), Some(code)),
        }
        assert_not_queued(&h, id).await;
    }
    // Once only, and only pending rows; no row appears for a missing one.
    for id in ["m-40", "m-20", "m-sent", "m-missing"] {
        assert_eq!(store.settle_stale(id, &at).await.unwrap(), None, "{id}");
    }
    assert_eq!(store.get("m-missing").await.unwrap(), None);
    assert_eq!(stored(&store, "m-sent").await.status, MessageStatus::Sent);
    assert_eq!(store.stale_pending(before, 10).await.unwrap(), vec!["m-16"]);

    // A late Send event still settles an unconfirmed row.
    assert_eq!(
        deliver(&delivery(&h), Some("m-40"), "ses-40", DeliveryUpdate::Sent, &at).await,
        Recorded::Updated
    );
    assert_sent(&stored(&store, "m-40").await, "ses-40", &at);
}

#[tokio::test]
async fn history_lists_a_users_messages_newest_first_page_by_page() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &[]).await;
    h.put_profile(&profile("u-2", Some("bob@example.com"), "user", "Bob"))
        .await;
    reserve_five(&store, lease()).await;
    store
        .reserve(&message("other", "u-2", T0), lease())
        .await
        .unwrap();

    let mut ids = Vec::new();
    let mut cursor: Option<MessageCursor> = None;
    let mut pages = 0;
    loop {
        let page = store.history("u-1", 2, cursor.as_ref()).await.unwrap();
        pages += 1;
        ids.extend(page.items.iter().map(|m| m.message_id.clone()));
        match page.next {
            Some(c) => {
                let last = page.items.last().unwrap();
                assert_eq!(c, format!("{}~{}", last.created_at, last.message_id));
                cursor = Some(MessageCursor::parse(&c).unwrap());
            }
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(ids, vec!["m-4", "m-3", "m-2", "m-1", "m-0"]);
    assert_eq!(pages, 3, "2 + 2 + 1, and no empty last page");
    assert!(store.history("u-3", 10, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn any_cursor_of_the_documented_form_is_a_starting_point_in_the_users_own_history() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &[]).await;
    h.put_profile(&profile("u-2", Some("bob@example.com"), "user", "Bob"))
        .await;
    let lease = Utc::now() + Duration::seconds(30);
    reserve_five(&store, lease).await;
    store
        .reserve(&message("bob-1", "u-2", "2025-01-01T00:00:01.500Z"), lease)
        .await
        .unwrap();
    // A position between two messages that no message has: the older ones follow.
    assert_eq!(
        history_after(&store, "2025-01-01T00:00:02.500Z~zzz").await.0,
        ["m-2", "m-1", "m-0"]
    );
    // Another user's message as the cursor: the position counts, the recipient does not; the
    // page is still only u-1's messages.
    assert_eq!(
        history_after(&store, "2025-01-01T00:00:01.500Z~bob-1").await.0,
        ["m-1", "m-0"]
    );
    // Past the oldest message: an empty last page, not an error.
    let (ids, next) = history_after(&store, "1999-01-01T00:00:00.000Z~a").await;
    assert!(ids.is_empty() && next.is_none());
}

#[tokio::test]
async fn the_security_log_appends_once_and_never_overwrites() {
    let h = Harness::new().await;
    let log = DynamoSecurityLog::new(h.dynamo.clone(), h.table("SECURITY_LOGS_TABLE"));
    let event = SecurityEvent::new(
        "job-1#deleted".into(),
        EventType::AdminDeletedUser,
        "u-1",
        &meta(),
        T0,
    )
    .with("target_role", "admin")
    .with("target_email_sha256", "ab".repeat(32))
    .with("job_id", "job-1");
    assert_eq!(log.append(&event).await.unwrap(), Appended::New);
    let mut changed = event.clone();
    changed.fields.insert("target_role".into(), "owner".into());
    assert_eq!(log.append(&changed).await.unwrap(), Appended::AlreadyRecorded);

    let row = h
        .get(&h.table("SECURITY_LOGS_TABLE"), "event_id", "job-1#deleted")
        .await
        .unwrap();
    for (k, v) in [
        ("event_type", "admin_deleted_user"),
        ("actor_id", "admin-1"),
        ("target_id", "u-1"),
        ("created_at", T0),
        ("request_id", "req-1"),
        ("source_ip", "203.0.113.7"),
        ("user_agent", "tests"),
        ("target_role", "admin"),
        ("job_id", "job-1"),
    ] {
        assert_eq!(str_attr(&row, k), Some(v), "{k}");
    }
    assert_eq!(str_attr(&row, "target_email_sha256").map(str::len), Some(64));
}

#[tokio::test]
async fn a_delivery_event_finds_its_row_by_our_message_id_before_the_row_has_a_provider_id() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;
    begin(&store, "m-1", "a-1").await;
    assert_eq!(stored(&store, "m-1").await.ses_message_id, None);
    let log = delivery(&h);
    let at = "2025-01-01T00:00:05.000Z";

    // The Send event: pending → sent, with the provider id and the send time.
    assert_eq!(
        deliver(&log, Some("m-1"), "ses-1", DeliveryUpdate::Sent, at).await,
        Recorded::Updated
    );
    assert_sent(&stored(&store, "m-1").await, "ses-1", at);
    assert_not_queued(&h, "m-1").await;

    // Repeated and out-of-order events change nothing.
    assert_eq!(
        deliver(&log, Some("m-1"), "ses-1", DeliveryUpdate::Sent, at).await,
        Recorded::Unchanged
    );
    // An event tagged with an id we do not have (erased with its recipient).
    assert_eq!(
        deliver(&log, Some("m-erased"), "ses-9", DeliveryUpdate::Delivered, at).await,
        Recorded::UnknownMessage
    );
    assert_eq!(store.get("m-erased").await.unwrap(), None, "no row appears");
}

#[tokio::test]
async fn an_untagged_event_finds_its_row_through_the_provider_id_and_moves_it_forward_only() {
    let h = Harness::new().await;
    let store = outbox_with(&h, &["m-1"]).await;
    store.mark_sent("m-1", "ses-1", T0).await.unwrap();
    let log = delivery(&h);
    let at = "2025-01-01T00:05:00.000Z";

    // Each event in turn, and what it does to the row (and the row's status after it).
    for (update, recorded, status) in [
        (
            DeliveryUpdate::Delivered,
            Recorded::Updated,
            MessageStatus::Delivered,
        ),
        (
            DeliveryUpdate::Delivered,
            Recorded::Unchanged,
            MessageStatus::Delivered,
        ),
        (
            DeliveryUpdate::Sent,
            Recorded::Unchanged,
            MessageStatus::Delivered,
        ),
        (DeliveryUpdate::Bounced, Recorded::Updated, MessageStatus::Bounced),
        (
            DeliveryUpdate::Delivered,
            Recorded::Unchanged,
            MessageStatus::Bounced,
        ),
        (
            DeliveryUpdate::Complained,
            Recorded::Updated,
            MessageStatus::Complained,
        ),
    ] {
        assert_eq!(
            deliver(&log, None, "ses-1", update, at).await,
            recorded,
            "{update:?}"
        );
        assert_eq!(stored(&store, "m-1").await.status, status, "after {update:?}");
    }
    let row = stored(&store, "m-1").await;
    assert_eq!(row.status, MessageStatus::Complained);
    assert_eq!(row.updated_at.as_deref(), Some(at));
    assert_eq!(
        deliver(&log, None, "ses-unknown", DeliveryUpdate::Delivered, at).await,
        Recorded::UnknownMessage
    );
    // A tagged event whose provider id is not the row's is not this row's.
    assert_eq!(
        deliver(&log, Some("m-1"), "ses-other", DeliveryUpdate::Delivered, at).await,
        Recorded::Unchanged
    );
}

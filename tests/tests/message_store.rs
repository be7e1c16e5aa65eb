//! `DynamoMessageOutbox` and `DynamoSecurityLog` against the emulator.

use aws_adapters::{DynamoMessageOutbox, DynamoSecurityLog};
use chrono::{Duration, Utc};
use domain::cursor::MessageCursor;
use domain::model::{AdminMessage, EventType, MessageStatus, RequestMeta, SecurityEvent};
use domain::ports::{Appended, MessageOutbox, Reserved, SecurityLog};
use integration_tests::{profile, str_attr, Harness};

fn outbox(h: &Harness) -> DynamoMessageOutbox {
    DynamoMessageOutbox::new(
        h.dynamo.clone(),
        h.table("ADMIN_MESSAGES_TABLE"),
        h.table("PROFILES_TABLE"),
        h.table("SECURITY_LOGS_TABLE"),
    )
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
    }
}

fn meta() -> RequestMeta {
    RequestMeta {
        caller: Some("admin-1".into()),
        request_id: "req-1".into(),
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("tests".into()),
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

#[tokio::test]
async fn reserving_writes_a_pending_row_and_leases_the_recipient() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let lease = Utc::now() + Duration::seconds(30);
    let m = message("m-1", "u-1", T0);
    assert_eq!(outbox(&h).reserve(&m, lease).await.unwrap(), Reserved::Reserved);

    assert_eq!(outbox(&h).get("m-1").await.unwrap(), Some(m.clone()));
    let p = h.get(&h.table("PROFILES_TABLE"), "user_id", "u-1").await.unwrap();
    assert_eq!(
        p["send_lease_until"].as_n().unwrap(),
        &lease.timestamp_millis().to_string()
    );

    // The same message id again: the stored row comes back, nothing is overwritten.
    let mut again = m.clone();
    again.subject = "Something else".into();
    assert_eq!(
        outbox(&h).reserve(&again, lease).await.unwrap(),
        Reserved::Exists(m)
    );
}

#[tokio::test]
async fn a_deleted_recipient_or_one_without_email_cannot_be_reserved() {
    let h = Harness::new().await;
    let mut tomb = profile("u-gone", None, "user", "Deleted User");
    tomb.deleted_at = Some(T0.into());
    h.put_profile(&tomb).await;
    h.put_profile(&profile("u-noemail", None, "user", "No Mail"))
        .await;
    let lease = Utc::now() + Duration::seconds(30);
    for (id, user) in [("m-1", "u-gone"), ("m-2", "u-noemail"), ("m-3", "u-missing")] {
        assert_eq!(
            outbox(&h).reserve(&message(id, user, T0), lease).await.unwrap(),
            Reserved::RecipientGone,
            "{user}"
        );
        assert_eq!(outbox(&h).get(id).await.unwrap(), None, "no row for {user}");
    }
    let p = h
        .get(&h.table("PROFILES_TABLE"), "user_id", "u-gone")
        .await
        .unwrap();
    assert!(!p.contains_key("send_lease_until"));
}

#[tokio::test]
async fn marking_sent_updates_the_row_and_writes_the_audit_event_together() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let store = outbox(&h);
    store
        .reserve(&message("m-1", "u-1", T0), Utc::now() + Duration::seconds(30))
        .await
        .unwrap();
    let at = "2025-01-01T00:00:01.000Z";
    store
        .mark_sent("m-1", "ses-123", at, &sent_event("m-1", "u-1"))
        .await
        .unwrap();

    let row = store.get("m-1").await.unwrap().unwrap();
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(row.ses_message_id.as_deref(), Some("ses-123"));
    assert_eq!(row.sent_at.as_deref(), Some(at));
    let event = h
        .get(&h.table("SECURITY_LOGS_TABLE"), "event_id", "m-1#sent")
        .await
        .unwrap();
    assert_eq!(str_attr(&event, "event_type"), Some("admin_sent_user_message"));
    assert_eq!(str_attr(&event, "message_id"), Some("m-1"));
    assert_eq!(str_attr(&event, "actor_id"), Some("admin-1"));
    assert_eq!(str_attr(&event, "target_id"), Some("u-1"));
    assert_eq!(str_attr(&event, "request_id"), Some("req-1"));

    // A retry after a lost answer: still one event, the row still sent.
    store
        .mark_sent("m-1", "ses-123", at, &sent_event("m-1", "u-1"))
        .await
        .unwrap();
    let events = h
        .rows_where(&h.table("SECURITY_LOGS_TABLE"), "message_id", "m-1")
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        store.get("m-1").await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn marking_sent_after_the_audit_event_exists_still_finishes_the_row() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let store = outbox(&h);
    store
        .reserve(&message("m-1", "u-1", T0), Utc::now() + Duration::seconds(30))
        .await
        .unwrap();
    let log = DynamoSecurityLog::new(h.dynamo.clone(), h.table("SECURITY_LOGS_TABLE"));
    log.append(&sent_event("m-1", "u-1")).await.unwrap();

    store
        .mark_sent("m-1", "ses-9", T0, &sent_event("m-1", "u-1"))
        .await
        .unwrap();
    assert_eq!(
        store.get("m-1").await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn marking_failed_records_the_code_but_never_undoes_a_send() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let store = outbox(&h);
    let lease = Utc::now() + Duration::seconds(30);
    store.reserve(&message("m-1", "u-1", T0), lease).await.unwrap();
    store.mark_failed("m-1", "MessageRejected", T0).await.unwrap();
    let row = store.get("m-1").await.unwrap().unwrap();
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("MessageRejected"));

    store.reserve(&message("m-2", "u-1", T0), lease).await.unwrap();
    store
        .mark_sent("m-2", "ses-2", T0, &sent_event("m-2", "u-1"))
        .await
        .unwrap();
    store.mark_failed("m-2", "Timeout", T0).await.unwrap();
    assert_eq!(
        store.get("m-2").await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
    store.mark_failed("m-missing", "Timeout", T0).await.unwrap();
    assert_eq!(store.get("m-missing").await.unwrap(), None);
}

#[tokio::test]
async fn history_lists_a_users_messages_newest_first_page_by_page() {
    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    h.put_profile(&profile("u-2", Some("bob@example.com"), "user", "Bob"))
        .await;
    let store = outbox(&h);
    let lease = Utc::now() + Duration::seconds(30);
    for i in 0..5 {
        let at = format!("2025-01-01T00:00:0{i}.000Z");
        store
            .reserve(&message(&format!("m-{i}"), "u-1", &at), lease)
            .await
            .unwrap();
    }
    store.reserve(&message("other", "u-2", T0), lease).await.unwrap();

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
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    h.put_profile(&profile("u-2", Some("bob@example.com"), "user", "Bob"))
        .await;
    let store = outbox(&h);
    let lease = Utc::now() + Duration::seconds(30);
    for i in 0..5 {
        let at = format!("2025-01-01T00:00:0{i}.000Z");
        store
            .reserve(&message(&format!("m-{i}"), "u-1", &at), lease)
            .await
            .unwrap();
    }
    store
        .reserve(&message("bob-1", "u-2", "2025-01-01T00:00:01.500Z"), lease)
        .await
        .unwrap();
    let ids = |page: &domain::model::Page<AdminMessage>| -> Vec<String> {
        page.items.iter().map(|m| m.message_id.clone()).collect()
    };
    // A position between two messages that no message has: the older ones follow.
    let between = MessageCursor::parse("2025-01-01T00:00:02.500Z~zzz").unwrap();
    let page = store.history("u-1", 10, Some(&between)).await.unwrap();
    assert_eq!(ids(&page), ["m-2", "m-1", "m-0"]);
    // Another user's message as the cursor: the position counts, the recipient does not; the
    // page is still only u-1's messages.
    let bobs = MessageCursor::parse("2025-01-01T00:00:01.500Z~bob-1").unwrap();
    let page = store.history("u-1", 10, Some(&bobs)).await.unwrap();
    assert_eq!(ids(&page), ["m-1", "m-0"]);
    // Past the oldest message: an empty last page, not an error.
    let past = MessageCursor::parse("1999-01-01T00:00:00.000Z~a").unwrap();
    let page = store.history("u-1", 10, Some(&past)).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
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
async fn delivery_events_move_a_message_forward_only() {
    use aws_adapters::DynamoDeliveryLog;
    use domain::ports::{DeliveryLog, DeliveryUpdate, Recorded};

    let h = Harness::new().await;
    h.put_profile(&profile("u-1", Some("ann@example.com"), "user", "Ann"))
        .await;
    let store = outbox(&h);
    store
        .reserve(&message("m-1", "u-1", T0), Utc::now() + Duration::seconds(30))
        .await
        .unwrap();
    store
        .mark_sent("m-1", "ses-1", T0, &sent_event("m-1", "u-1"))
        .await
        .unwrap();
    let log = DynamoDeliveryLog::new(h.dynamo.clone(), h.table("ADMIN_MESSAGES_TABLE"));
    let at = "2025-01-01T00:05:00.000Z";

    assert_eq!(
        log.record_delivery("ses-1", DeliveryUpdate::Delivered, at)
            .await
            .unwrap(),
        Recorded::Updated
    );
    assert_eq!(
        store.get("m-1").await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    assert_eq!(
        log.record_delivery("ses-1", DeliveryUpdate::Delivered, at)
            .await
            .unwrap(),
        Recorded::Unchanged
    );
    assert_eq!(
        log.record_delivery("ses-1", DeliveryUpdate::Bounced, at)
            .await
            .unwrap(),
        Recorded::Updated
    );
    assert_eq!(
        log.record_delivery("ses-1", DeliveryUpdate::Delivered, at)
            .await
            .unwrap(),
        Recorded::Unchanged
    );
    let row = store.get("m-1").await.unwrap().unwrap();
    assert_eq!(row.status, MessageStatus::Bounced);
    assert_eq!(row.updated_at.as_deref(), Some(at));
    assert_eq!(
        log.record_delivery("ses-unknown", DeliveryUpdate::Delivered, at)
            .await
            .unwrap(),
        Recorded::UnknownMessage
    );
}

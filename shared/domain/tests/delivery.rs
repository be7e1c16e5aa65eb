//! Delivery status from recorded SES event samples (the documented event-publishing shapes).

mod common;

use common::*;
use domain::memory::InMemoryBackend;
use domain::model::MessageStatus;
use domain::ports::Recorded;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/ses/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A backend holding message m-1 (the id the samples' `message_id` tag names) in `status`,
/// with provider id SES-MSG-1 when `ses` says so.
fn with_message(status: MessageStatus, ses: bool) -> Arc<InMemoryBackend> {
    let b = seeded(0);
    let mut st = b.state();
    let mut m = st.messages.values().next().unwrap().clone();
    m.message_id = "m-1".into();
    m.ses_message_id = ses.then(|| "SES-MSG-1".into());
    m.status = status;
    m.sent_at = None;
    st.messages.insert(m.message_id.clone(), m);
    drop(st);
    b
}

/// A backend holding one sent message with provider id SES-MSG-1.
fn with_sent_message() -> Arc<InMemoryBackend> {
    with_message(MessageStatus::Sent, true)
}

fn status(b: &InMemoryBackend) -> MessageStatus {
    b.snapshot().messages.get("m-1").expect("the message row").status
}

#[tokio::test]
async fn a_delivery_event_marks_the_message_delivered_with_its_time() {
    let b = with_sent_message();
    assert_eq!(
        b.delivery().apply(&fixture("delivery")).await.unwrap(),
        Recorded::Updated
    );
    assert_eq!(status(&b), MessageStatus::Delivered);
    let m = b.snapshot().messages.get("m-1").expect("the message row").clone();
    assert_eq!(m.updated_at.as_deref(), Some("2026-11-25T10:00:01.500Z"));
}

#[tokio::test]
async fn a_hard_bounce_wins_over_a_delivery_whatever_the_order() {
    for order in [["delivery", "bounce-permanent"], ["bounce-permanent", "delivery"]] {
        let b = with_sent_message();
        for name in order {
            b.delivery().apply(&fixture(name)).await.unwrap();
        }
        assert_eq!(status(&b), MessageStatus::Bounced, "{order:?}");
    }
}

#[tokio::test]
async fn a_transient_bounce_or_an_open_changes_nothing() {
    let b = with_sent_message();
    assert_eq!(
        b.delivery().apply(&fixture("bounce-transient")).await.unwrap(),
        Recorded::Unchanged
    );
    assert_eq!(
        b.delivery().apply(&fixture("open")).await.unwrap(),
        Recorded::Unchanged
    );
    assert_eq!(status(&b), MessageStatus::Sent);
}

#[tokio::test]
async fn a_complaint_and_a_reject_are_recorded() {
    let b = with_sent_message();
    b.delivery().apply(&fixture("complaint")).await.unwrap();
    assert_eq!(status(&b), MessageStatus::Complained);
    let b = with_sent_message();
    b.delivery().apply(&fixture("reject")).await.unwrap();
    assert_eq!(status(&b), MessageStatus::Failed);
}

#[tokio::test]
async fn events_are_idempotent_and_unknown_messages_are_reported() {
    let b = with_sent_message();
    let d = b.delivery();
    assert_eq!(d.apply(&fixture("delivery")).await.unwrap(), Recorded::Updated);
    assert_eq!(d.apply(&fixture("delivery")).await.unwrap(), Recorded::Unchanged);
    let other = fixture("delivery")
        .replace("SES-MSG-1", "SES-MSG-UNKNOWN")
        .replace(r#"["m-1"]"#, r#"["m-unknown"]"#);
    assert_eq!(d.apply(&other).await.unwrap(), Recorded::UnknownMessage);
    // Our tag with another provider id than the row's: not this send's event.
    let foreign = fixture("bounce-permanent").replace("SES-MSG-1", "SES-MSG-OTHER");
    assert_eq!(d.apply(&foreign).await.unwrap(), Recorded::Unchanged);
    assert_eq!(status(&b), MessageStatus::Delivered);
    assert!(d.apply("{\"not\":\"ses\"}").await.is_err());
}

#[tokio::test]
async fn a_send_event_confirms_a_pending_or_unconfirmed_row_found_by_its_tag() {
    for before in [MessageStatus::Pending, MessageStatus::Unconfirmed] {
        // The row has no provider id yet: the send's own bookkeeping has not run (or never will).
        let b = with_message(before, false);
        assert_eq!(
            b.delivery().apply(&fixture("send")).await.unwrap(),
            Recorded::Updated
        );
        let m = b.snapshot().messages.get("m-1").expect("the message row").clone();
        assert_eq!(m.status, MessageStatus::Sent);
        assert_eq!(m.ses_message_id.as_deref(), Some("SES-MSG-1"));
        assert_eq!(m.sent_at.as_deref(), Some("2026-11-25T10:00:00.000Z"));
    }
    // A send event never moves a row back.
    let b = with_message(MessageStatus::Delivered, true);
    assert_eq!(
        b.delivery().apply(&fixture("send")).await.unwrap(),
        Recorded::Unchanged
    );
    assert_eq!(status(&b), MessageStatus::Delivered);
}

#[tokio::test]
async fn a_delivery_that_overtakes_the_send_bookkeeping_is_not_dropped() {
    let b = with_message(MessageStatus::Pending, false);
    assert_eq!(
        b.delivery().apply(&fixture("delivery")).await.unwrap(),
        Recorded::Updated
    );
    assert_eq!(status(&b), MessageStatus::Delivered);
    assert_eq!(
        b.snapshot()
            .messages
            .get("m-1")
            .expect("the message row")
            .ses_message_id
            .as_deref(),
        Some("SES-MSG-1")
    );
    // The late bookkeeping keeps the later status.
    use domain::ports::MessageOutbox;
    b.mark_sent("m-1", "SES-MSG-1", "2026-11-25T10:00:02.000Z")
        .await
        .unwrap();
    assert_eq!(status(&b), MessageStatus::Delivered);
}

#[tokio::test]
async fn an_event_without_the_tag_is_found_by_its_provider_id() {
    let b = with_sent_message();
    let untagged = fixture("delivery").replace(r#","message_id":["m-1"]"#, "");
    assert!(!untagged.contains("\"m-1\""));
    assert_eq!(b.delivery().apply(&untagged).await.unwrap(), Recorded::Updated);
    assert_eq!(status(&b), MessageStatus::Delivered);
}

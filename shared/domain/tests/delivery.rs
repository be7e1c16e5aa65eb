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

/// A backend holding one sent message with provider id SES-MSG-1.
fn with_sent_message() -> Arc<InMemoryBackend> {
    let b = seeded(0);
    let mut st = b.state();
    let m = st.messages.values_mut().next().unwrap();
    m.ses_message_id = Some("SES-MSG-1".into());
    m.status = MessageStatus::Sent;
    drop(st);
    b
}

fn status(b: &InMemoryBackend) -> MessageStatus {
    b.snapshot()
        .messages
        .values()
        .find(|m| m.ses_message_id.as_deref() == Some("SES-MSG-1"))
        .unwrap()
        .status
}

#[tokio::test]
async fn a_delivery_event_marks_the_message_delivered_with_its_time() {
    let b = with_sent_message();
    assert_eq!(
        b.delivery().apply(&fixture("delivery")).await.unwrap(),
        Recorded::Updated
    );
    assert_eq!(status(&b), MessageStatus::Delivered);
    let m = b
        .snapshot()
        .messages
        .values()
        .find(|m| m.ses_message_id.is_some())
        .cloned()
        .unwrap();
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
    let other = fixture("delivery").replace("SES-MSG-1", "SES-MSG-UNKNOWN");
    assert_eq!(d.apply(&other).await.unwrap(), Recorded::UnknownMessage);
    assert!(d.apply("{\"not\":\"ses\"}").await.is_err());
}

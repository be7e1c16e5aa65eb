//! The delivery-events function through real SNS events (the sample events beside it), on
//! the in-memory backend.

use aws_lambda_events::sns::SnsEvent;
use delivery_events::{handle, handle_record, Handled};
use domain::delivery::parse_ses_event;
use domain::memory::InMemoryBackend;
use domain::model::{AdminMessage, MessageStatus};
use domain::ports::{DeliveryUpdate, Recorded};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Once};

/// The provider id the sample events are about.
const SES_ID: &str = "0100019a4f2c9e1b-3c5d7e9f-1a2b-4c6d-8e0f-123456789abc-000000";
const MESSAGE_ID: &str = "m-1";

fn sample(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn sns_event(value: Value) -> SnsEvent {
    serde_json::from_value(value).expect("a Lambda SNS event")
}

fn invocation(value: Value) -> LambdaEvent<SnsEvent> {
    LambdaEvent::new(sns_event(value), Context::default())
}

/// A sample event whose single record's `Message` is replaced by `message`.
fn with_message(name: &str, message: &str) -> Value {
    let mut v = sample(name);
    v["Records"][0]["Sns"]["Message"] = json!(message);
    v
}

/// One event holding the records of these events, in order.
fn batch(events: Vec<Value>) -> Value {
    let records: Vec<Value> = events
        .into_iter()
        .flat_map(|e| e["Records"].as_array().cloned().unwrap_or_default())
        .collect();
    json!({ "Records": records })
}

/// A backend holding one message, sent, with the sample events' provider id.
fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.state().messages.insert(
        MESSAGE_ID.into(),
        AdminMessage {
            message_id: MESSAGE_ID.into(),
            sender_id: "owner-1".into(),
            recipient_id: "user-1".into(),
            subject: "About your account".into(),
            body: "Hello".into(),
            status: MessageStatus::Sent,
            ses_message_id: Some(SES_ID.into()),
            error_code: None,
            created_at: "2026-11-25T09:59:59.900Z".into(),
            sent_at: Some("2026-11-25T10:00:00.000Z".into()),
            updated_at: Some("2026-11-25T10:00:00.000Z".into()),
            attempt: None,
        },
    );
    b
}

fn row(b: &InMemoryBackend) -> AdminMessage {
    b.snapshot()
        .messages
        .get(MESSAGE_ID)
        .expect("the message row")
        .clone()
}

thread_local! {
    /// What this thread logged. Each test runs on its own thread (and `#[tokio::test]` on a
    /// current-thread runtime), so a test sees its own lines only.
    static LOGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct ThreadLogs;

impl Write for ThreadLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.with(|l| l.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing this thread's log lines. A global subscriber (not a scoped one, whose
/// callsite interest races with tests on other threads) writes every line, at every level,
/// to the buffer of the thread that logged it.
fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadLogs)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    LOGS.with(|l| l.borrow_mut().clear());
}

fn logs() -> String {
    LOGS.with(|l| String::from_utf8_lossy(&l.borrow()).into_owned())
}

#[test]
fn the_sample_events_are_sns_events_carrying_ses_events() {
    for (file, update) in [
        ("sns-ses-delivery.json", DeliveryUpdate::Delivered),
        ("sns-ses-bounce.json", DeliveryUpdate::Bounced),
    ] {
        let event = sns_event(sample(file));
        assert_eq!(event.records.len(), 1, "{file}");
        let record = &event.records[0];
        assert_eq!(record.event_source, "aws:sns", "{file}");
        assert_eq!(record.event_version, "1.0", "{file}");
        assert_eq!(record.sns.sns_message_type, "Notification", "{file}");
        assert!(record.sns.topic_arn.starts_with("arn:aws:sns:"), "{file}");
        assert!(!record.sns.signing_cert_url.is_empty() && !record.sns.unsubscribe_url.is_empty());
        let ses = parse_ses_event(&record.sns.message).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(ses.ses_message_id, SES_ID, "{file}");
        assert_eq!(ses.update, Some(update), "{file}");
    }
}

#[tokio::test]
async fn a_delivery_then_a_bounce_move_the_message_to_delivered_then_bounced() {
    let b = backend();
    let app = b.delivery();
    capture_logs();

    handle(&app, invocation(sample("sns-ses-delivery.json")))
        .await
        .expect("the delivery is recorded");
    let m = row(&b);
    assert_eq!(m.status, MessageStatus::Delivered);
    assert_eq!(m.updated_at.as_deref(), Some("2026-11-25T10:00:01.500Z"));

    handle(&app, invocation(sample("sns-ses-bounce.json")))
        .await
        .expect("the bounce is recorded");
    let m = row(&b);
    assert_eq!(m.status, MessageStatus::Bounced);
    assert_eq!(m.updated_at.as_deref(), Some("2026-11-25T10:00:02.000Z"));
    assert_eq!(m.sent_at.as_deref(), Some("2026-11-25T10:00:00.000Z"));

    let text = logs();
    assert!(text.contains(SES_ID), "the provider id is logged: {text}");
    assert!(!text.contains('@'), "no address is logged: {text}");
}

#[tokio::test]
async fn a_bounce_delivered_before_the_delivery_still_wins_and_redelivery_changes_nothing() {
    let b = backend();
    let app = b.delivery();
    let event = batch(vec![
        sample("sns-ses-bounce.json"),
        sample("sns-ses-delivery.json"),
        sample("sns-ses-bounce.json"),
    ]);
    handle(&app, invocation(event)).await.unwrap();
    let m = row(&b);
    assert_eq!(m.status, MessageStatus::Bounced);
    assert_eq!(m.updated_at.as_deref(), Some("2026-11-25T10:00:02.000Z"));
    let again = sns_event(sample("sns-ses-bounce.json"));
    assert_eq!(
        handle_record(&app, &again.records[0]).await,
        Handled::Applied(Recorded::Unchanged)
    );
}

#[tokio::test]
async fn malformed_records_are_skipped_without_logging_their_content_and_the_others_are_applied() {
    let b = backend();
    let app = b.delivery();
    capture_logs();
    let mut not_a_notification = sample("sns-ses-bounce.json");
    not_a_notification["Records"][0]["Sns"]["Type"] = json!("SubscriptionConfirmation");
    let event = batch(vec![
        with_message("sns-ses-bounce.json", "not json at all victim@example.com"),
        with_message("sns-ses-bounce.json", r#"{"eventType":"Bounce"}"#),
        with_message(
            "sns-ses-bounce.json",
            r#"{"eventType":"Bounce","mail":"victim@example.com"}"#,
        ),
        with_message(
            "sns-ses-bounce.json",
            r#"{"eventType":"Bounce","mail":{"messageId":"x","destination":["victim@example.com"]}}"#,
        ),
        not_a_notification,
        sample("sns-ses-delivery.json"),
    ]);
    let records = sns_event(event.clone()).records;
    for record in &records[..5] {
        assert_eq!(handle_record(&app, record).await, Handled::Skipped);
    }
    assert_eq!(
        row(&b).status,
        MessageStatus::Sent,
        "a skipped record changes nothing"
    );

    handle(&app, invocation(event))
        .await
        .expect("malformed records do not fail the invocation");
    assert_eq!(row(&b).status, MessageStatus::Delivered);

    let text = logs();
    assert!(
        text.contains("malformed SES event notification; skipped"),
        "{text}"
    );
    assert!(
        text.contains("6a2b3c4d-5e6f-5a7b-9c8d-0e1f2a3b4c5d"),
        "the SNS message id is logged"
    );
    assert!(!text.contains('@'), "no address is logged: {text}");
    assert!(
        !text.contains("not json"),
        "no part of a message is logged: {text}"
    );
}

#[tokio::test]
async fn a_failing_store_fails_the_invocation_so_that_it_is_retried() {
    let b = backend();
    let app = b.delivery();
    b.fail_at(1);
    let err = handle(&app, invocation(sample("sns-ses-delivery.json")))
        .await
        .expect_err("a dependency failure fails the invocation");
    assert!(err.to_string().contains("1 of 1"), "{err}");
    assert_eq!(row(&b).status, MessageStatus::Sent);

    // The retry (the same event again) succeeds.
    handle(&app, invocation(sample("sns-ses-delivery.json")))
        .await
        .unwrap();
    assert_eq!(row(&b).status, MessageStatus::Delivered);
}

#[tokio::test]
async fn one_failing_record_fails_the_invocation_after_the_others_are_applied() {
    let b = backend();
    let app = b.delivery();
    // The first record's store call fails; the second (the same SES message) is applied.
    b.fail_at(1);
    let event = batch(vec![
        sample("sns-ses-delivery.json"),
        sample("sns-ses-bounce.json"),
    ]);
    assert!(handle(&app, invocation(event)).await.is_err());
    assert_eq!(row(&b).status, MessageStatus::Bounced);
}

#[tokio::test]
async fn an_event_about_a_message_that_is_not_ours_is_acknowledged() {
    let b = backend();
    let app = b.delivery();
    let before = b.snapshot();
    let message = sample("sns-ses-delivery.json")["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replace(SES_ID, "0100019a-someone-elses-message-000000");
    let event = sns_event(with_message("sns-ses-delivery.json", &message));
    assert_eq!(
        handle_record(&app, &event.records[0]).await,
        Handled::Applied(Recorded::UnknownMessage)
    );
    handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(before.messages, b.snapshot().messages);
}

#[tokio::test]
async fn an_empty_event_is_fine() {
    let b = backend();
    handle(&b.delivery(), invocation(json!({"Records": []})))
        .await
        .unwrap();
}

//! Every SDK call of the adapters is bounded by the invocation's deadline
//! (`aws_adapters::deadline`), on top of each client's own timeouts: a dependency that takes
//! the request and goes silent costs the time left, not the client's 8 or 10 seconds.

use aws_adapters::deadline::within;
use aws_adapters::{DynamoProfiles, SesMailer};
use domain::ports::{MailError, Mailer, OutgoingEmail, Profiles};
use domain::types::{EmailAddress, MessageBody, Subject};
use std::time::Duration;
use test_support::blackhole::BlackHole;
use test_support::Emulator;
use tokio::time::Instant;

/// An endpoint that takes requests and never answers, and the emulator's SDK settings with
/// every service there.
fn silent_sdk() -> (BlackHole, aws_config::SdkConfig) {
    let emulator = Emulator::start_or_panic();
    let silent = BlackHole::start();
    let sdk = emulator
        .sdk()
        .to_builder()
        .endpoint_url(silent.endpoint())
        .build();
    (silent, sdk)
}

#[tokio::test]
async fn a_store_call_to_a_silent_dynamodb_ends_at_the_deadline_as_a_retryable_failure() {
    let (silent, sdk) = silent_sdk();
    let profiles = DynamoProfiles::new(aws_sdk_dynamodb::Client::new(&sdk), "profiles");

    let started = Instant::now();
    let result = within(started + Duration::from_millis(300), profiles.get("u-1")).await;
    let took = started.elapsed();
    let err = result.expect_err("no answer is not an answer");
    assert!(err.retryable, "a timeout may succeed later");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "bounded by the deadline: {took:?}"
    );
    assert!(silent.connections() >= 1, "the request went out");
}

#[tokio::test]
async fn a_send_cut_short_by_the_deadline_after_the_request_went_out_is_unconfirmed() {
    let (silent, sdk) = silent_sdk();
    let mailer = SesMailer::new(&sdk, None);
    let email = OutgoingEmail {
        message_id: "m-1".into(),
        to: EmailAddress::parse("ann@example.com").unwrap(),
        from: "no-reply@teleperson.com".into(),
        reply_to: "hello@teleperson.com".into(),
        subject: Subject::parse(Some("Hi")).unwrap(),
        body: MessageBody::parse("Body").unwrap(),
    };

    // Enough time to start a send (the adapter wants 2 s), then SES goes silent.
    let started = Instant::now();
    let result = within(started + Duration::from_millis(2_300), mailer.send(&email)).await;
    let took = started.elapsed();
    match result {
        // SES may have the mail: never sent again.
        Err(MailError::Unconfirmed { code, .. }) => assert_eq!(code, "Timeout"),
        other => panic!("expected unconfirmed, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(4),
        "the deadline, not the 10 s send timeout: {took:?}"
    );
    assert_eq!(silent.connections(), 1, "sent once, never retried");

    // With less time left than a send needs, nothing goes out: a definite "not sent".
    let result = within(Instant::now() + Duration::from_millis(300), mailer.send(&email)).await;
    match result {
        Err(MailError::NotSent { code, .. }) => assert_eq!(code, "NoTimeLeft"),
        other => panic!("expected not sent, got {other:?}"),
    }
    assert_eq!(silent.connections(), 1, "no second request");
}

#[tokio::test]
async fn without_a_deadline_a_call_to_the_emulator_runs_normally() {
    let emulator = Emulator::start_or_panic();
    let profiles = DynamoProfiles::new(emulator.dynamodb(), "no-such-table");
    // An answer (an error from the emulator) and not a timeout: the bound is only the deadline.
    let err = profiles.get("u-1").await.unwrap_err();
    assert!(!err.retryable, "ResourceNotFound is not retryable");
    let err = within(Instant::now() + Duration::from_secs(30), profiles.get("u-1"))
        .await
        .unwrap_err();
    assert!(!err.retryable, "a deadline far away changes nothing");
}

//! `SesSuppressionList` against the emulator: SESv2's account-level suppression list, asked
//! before a send. moto 5.2.5 lacks these calls; `scripts/emulator.py` adds them to the moto
//! server the tests run against. Faults come from replaced answers in SESv2's own protocol.

use aws_adapters::SesSuppressionList;
use domain::ports::{SuppressionList, SuppressionReason};
use domain::types::EmailAddress;
use test_support::faults::{FakeAnswer, ReplaceAnswers};
use test_support::{ses, unique, Emulator};

fn list(emulator: &Emulator, faults: Option<ReplaceAnswers>) -> SesSuppressionList {
    let mut config = SesSuppressionList::client_config(emulator.sdk());
    if let Some(f) = faults {
        config = config.interceptor(f);
    }
    SesSuppressionList::with_client(aws_sdk_sesv2::Client::from_conf(config.build()))
}

fn address(prefix: &str) -> EmailAddress {
    EmailAddress::parse(&format!("{}@example.com", unique(prefix))).unwrap()
}

#[tokio::test]
async fn a_suppressed_address_comes_back_with_its_reason_and_date_and_another_is_not_suppressed() {
    let emulator = Emulator::start_or_panic();
    let bounced = address("bounced-");
    let complained = address("complained-");
    ses::suppress(&emulator, bounced.as_str(), "BOUNCE").await;
    ses::suppress(&emulator, complained.as_str(), "COMPLAINT").await;
    let suppressions = list(&emulator, None);

    let found = suppressions.check(&bounced).await.unwrap().expect("suppressed");
    assert_eq!(found.reason, SuppressionReason::Bounce);
    let since = chrono::DateTime::parse_from_rfc3339(&found.since).expect("an RFC 3339 date");
    let age = chrono::Utc::now().signed_duration_since(since);
    assert!(age.num_seconds().abs() < 300, "{}", found.since);
    let found = suppressions
        .check(&complained)
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(found.reason, SuppressionReason::Complaint);
    assert_eq!(suppressions.check(&address("clean-")).await.unwrap(), None);

    aws_sdk_sesv2::Client::new(emulator.sdk())
        .delete_suppressed_destination()
        .email_address(bounced.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(
        suppressions.check(&bounced).await.unwrap(),
        None,
        "taken off the list"
    );
}

#[tokio::test]
async fn a_recorded_answer_is_read_as_ses_sends_it() {
    let emulator = Emulator::start_or_panic();
    // SESv2's answer as the service sends it: REST-JSON, the timestamp in epoch seconds.
    let recorded = r#"{"SuppressedDestination":{"EmailAddress":"Someone@Example.com","Reason":"COMPLAINT","LastUpdateTime":1759396800,"Attributes":{"MessageId":"0100018f-aaaa","FeedbackId":"0100018f-bbbb"}}}"#;
    let replace = ReplaceAnswers::new("GetSuppressedDestination", 1, FakeAnswer::json(200, recorded));
    let found = list(&emulator, Some(replace.clone()))
        .check(&EmailAddress::parse("Someone@Example.com").unwrap())
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(replace.replaced(), 1);
    assert_eq!(found.reason, SuppressionReason::Complaint);
    assert_eq!(found.since, "2025-10-02T09:20:00Z");
}

#[tokio::test]
async fn a_failing_list_is_retried_and_then_a_clear_dependency_error_never_not_suppressed() {
    let emulator = Emulator::start_or_panic();
    let to = address("retried-");
    ses::suppress(&emulator, to.as_str(), "BOUNCE").await;

    // One 500, then the real answer: the client's retry reads it.
    let once = ReplaceAnswers::new(
        "GetSuppressedDestination",
        1,
        FakeAnswer::rest_error(500, "InternalFailure"),
    );
    let found = list(&emulator, Some(once.clone())).check(&to).await.unwrap();
    assert_eq!(found.map(|s| s.reason), Some(SuppressionReason::Bounce));
    assert_eq!(once.calls(), 2);

    for (answer, retryable, throttled) in [
        (FakeAnswer::rest_error(500, "InternalFailure"), true, false),
        (
            FakeAnswer::rest_error(429, "TooManyRequestsException"),
            true,
            true,
        ),
        (FakeAnswer::rest_error(400, "BadRequestException"), false, false),
    ] {
        let always = ReplaceAnswers::new("GetSuppressedDestination", u32::MAX, answer.clone());
        let err = list(&emulator, Some(always))
            .check(&to)
            .await
            .expect_err("an error is never read as not suppressed");
        assert_eq!(
            (err.retryable, err.throttled),
            (retryable, throttled),
            "{answer:?}: {err:?}"
        );
        assert_eq!(err.dependency, "ses");
        let text = format!("{:?}", anyhow::Error::from(err));
        assert!(!text.contains(to.as_str()), "the address in an error: {text}");
    }
}

//! `SesMailer` against the emulator: the mail moto records, the request on the wire, and how
//! each kind of answer is classified (only a definite yes or no settles a send).

use aws_adapters::SesMailer;
use domain::ports::{MailError, Mailer, OutgoingEmail};
use domain::types::{EmailAddress, MessageBody, Subject};
use test_support::faults::{FakeAnswer, ReplaceAnswers};
use test_support::ses::SesCapture;
use test_support::{ses, unique, Emulator};

const FROM: &str = "no-reply@teleperson.com";

fn email(to: &str, from: &str, subject: &str, body: &str) -> OutgoingEmail {
    OutgoingEmail {
        message_id: uuid::Uuid::new_v4().to_string(),
        to: EmailAddress::parse(to).unwrap(),
        from: from.to_owned(),
        reply_to: "hello@teleperson.com".to_owned(),
        subject: Subject::parse(Some(subject)).unwrap(),
        body: MessageBody::parse(body).unwrap(),
    }
}

#[tokio::test]
async fn a_sent_mail_is_recorded_with_its_addresses_subject_and_body_and_reply_to_on_the_wire() {
    let emulator = Emulator::start_or_panic();
    ses::verify_sender(&emulator, FROM).await;
    let (mailer, capture) = ses::capturing_mailer(&emulator, None);
    let to = format!("{}@example.com", unique("ann-"));
    let out = email(&to, FROM, "Your account — ünïcode", "Hello Ann,\n\nLine two.\n");

    let id = mailer.send(&out).await.unwrap();

    let recorded = ses::emails_to(&emulator, &to).await;
    assert_eq!(recorded.len(), 1);
    let m = &recorded[0];
    assert_eq!(m.id, id, "the provider id is moto's message id");
    assert_eq!(m.source, FROM);
    assert_eq!(m.to, vec![to.clone()]);
    assert_eq!(m.subject, "Your account — ünïcode");
    assert_eq!(m.body, "Hello Ann,\n\nLine two.\n");

    let requests = capture.requests();
    assert_eq!(requests.len(), 1);
    let wire = &requests[0];
    assert_eq!(
        wire["ReplyToAddresses"],
        serde_json::json!(["hello@teleperson.com"])
    );
    assert_eq!(wire["FromEmailAddress"], FROM);
    assert_eq!(wire["Destination"]["ToAddresses"], serde_json::json!([to]));
    let simple = &wire["Content"]["Simple"];
    assert_eq!(simple["Subject"]["Charset"], "UTF-8");
    assert_eq!(simple["Body"]["Text"]["Charset"], "UTF-8");
    assert!(simple["Body"]["Html"].is_null(), "plain text only");
    assert_eq!(
        wire["EmailTags"],
        serde_json::json!([{ "Name": "message_id", "Value": out.message_id }])
    );
    assert!(wire.get("ConfigurationSetName").is_none());
}

#[tokio::test]
async fn mail_goes_to_the_address_as_stored_trimmed_with_its_case_kept() {
    let emulator = Emulator::start_or_panic();
    ses::verify_sender(&emulator, FROM).await;
    let (mailer, capture) = ses::capturing_mailer(&emulator, None);
    let local = unique("Ulla.User-");
    let stored = format!("  {}@Example.COM \n", local.to_uppercase());
    let delivered = stored.trim().to_owned();
    mailer.send(&email(&stored, FROM, "Hi", "Body")).await.unwrap();

    // RFC 5321: the local part is the receiving server's to interpret; only the audit hash
    // lower-cases.
    let wire = &capture.requests()[0];
    assert_eq!(
        wire["Destination"]["ToAddresses"],
        serde_json::json!([delivered.clone()])
    );
    assert_eq!(ses::emails_to(&emulator, &delivered).await.len(), 1);
    assert!(
        ses::emails_to(&emulator, &delivered.to_lowercase())
            .await
            .is_empty(),
        "never lower-cased for delivery"
    );
}

#[tokio::test]
async fn the_configuration_set_is_named_when_configured() {
    let emulator = Emulator::start_or_panic();
    ses::verify_sender(&emulator, FROM).await;
    let set = unique("events-");
    emulator
        .sesv2()
        .create_configuration_set()
        .configuration_set_name(&set)
        .send()
        .await
        .unwrap();
    let (mailer, capture) = ses::capturing_mailer(&emulator, Some(set.clone()));
    let to = format!("{}@example.com", unique("bob-"));
    mailer.send(&email(&to, FROM, "Hi", "Body")).await.unwrap();
    assert_eq!(capture.requests()[0]["ConfigurationSetName"], set.as_str());
}

#[tokio::test]
async fn an_unverified_sender_is_a_rejection() {
    let emulator = Emulator::start_or_panic();
    let mailer = SesMailer::new(emulator.sdk(), None);
    let from = format!("{}@unverified.example", unique("x-"));
    match mailer.send(&email("ann@example.com", &from, "Hi", "Body")).await {
        Err(MailError::Rejected { code }) => assert_eq!(code, "MessageRejected"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_sent_nothing() {
    let emulator = Emulator::start_or_panic();
    // A loopback port nobody listens on: the connection is refused before a byte is written.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = emulator
        .sdk()
        .to_builder()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let mailer = SesMailer::new(&sdk, None);
    match mailer.send(&email("ann@example.com", FROM, "Hi", "Body")).await {
        Err(MailError::NotSent { code, .. }) => assert_eq!(code, "ConnectFailure"),
        other => panic!("expected not sent, got {other:?}"),
    }
}

/// A mailer whose `SendEmail` reaches moto (the mail is accepted there) and whose answer is
/// replaced by `answer`, as when SES's real answer never made it back.
fn mailer_answered(emulator: &Emulator, answer: FakeAnswer) -> (SesMailer, ReplaceAnswers, SesCapture) {
    let replace = ReplaceAnswers::new("SendEmail", u32::MAX, answer);
    let (mailer, capture) = ses::capturing_mailer_with(emulator, None, replace.clone());
    (mailer, replace, capture)
}

#[tokio::test]
async fn every_answer_that_is_not_a_definite_yes_or_no_is_unconfirmed_and_never_retried() {
    let emulator = Emulator::start_or_panic();
    ses::verify_sender(&emulator, FROM).await;
    let cases = [
        (FakeAnswer::rest_error(500, "InternalFailure"), "InternalFailure"),
        (
            FakeAnswer::rest_error(503, "ServiceUnavailable"),
            "ServiceUnavailable",
        ),
        (FakeAnswer::rest_error(502, "BadGateway"), "BadGateway"),
        (FakeAnswer::rest_error(400, "SomethingNew"), "SomethingNew"),
        (FakeAnswer::json(200, "{}"), "NoMessageId"),
    ];
    for (answer, want) in cases {
        let (mailer, replaced, capture) = mailer_answered(&emulator, answer.clone());
        let to = format!("{}@example.com", unique("u-"));
        match mailer.send(&email(&to, FROM, "Hi", "Body")).await {
            Err(MailError::Unconfirmed { code, .. }) => assert_eq!(code, want, "{answer:?}"),
            other => panic!("{answer:?}: expected unconfirmed, got {other:?}"),
        }
        assert_eq!(
            capture.requests().len(),
            1,
            "{answer:?}: SendEmail is never retried"
        );
        assert_eq!(replaced.replaced(), 1);
        // moto did accept it: this is exactly the case where the mail may have gone.
        assert_eq!(ses::emails_to(&emulator, &to).await.len(), 1);
    }
}

#[tokio::test]
async fn a_definite_no_is_a_rejection_and_a_throttle_is_throttled() {
    let emulator = Emulator::start_or_panic();
    ses::verify_sender(&emulator, FROM).await;
    let rejected = [
        (400, "MessageRejected"),
        (400, "BadRequestException"),
        (400, "MailFromDomainNotVerifiedException"),
        (403, "AccountSuspendedException"),
    ];
    for (status, code) in rejected {
        let (mailer, _, capture) = mailer_answered(&emulator, FakeAnswer::rest_error(status, code));
        match mailer.send(&email("ann@example.com", FROM, "Hi", "Body")).await {
            Err(MailError::Rejected { code: got }) => assert_eq!(got, code),
            other => panic!("{code}: expected rejected, got {other:?}"),
        }
        assert_eq!(capture.requests().len(), 1);
    }
    for (status, code) in [
        (429, "TooManyRequestsException"),
        (400, "LimitExceededException"),
        (429, "Unknown"),
    ] {
        let (mailer, _, capture) = mailer_answered(&emulator, FakeAnswer::rest_error(status, code));
        match mailer.send(&email("ann@example.com", FROM, "Hi", "Body")).await {
            Err(MailError::Throttled { .. }) => {}
            other => panic!("{status} {code}: expected throttled, got {other:?}"),
        }
        assert_eq!(capture.requests().len(), 1, "{code}: not retried by the SDK");
    }
}

//! `SesMailer` against the emulator: the mail moto records, and the request on the wire.

use aws_adapters::SesMailer;
use domain::ports::{MailError, Mailer, OutgoingEmail};
use domain::types::{EmailAddress, MessageBody, Subject};
use test_support::{ses, unique, Emulator};

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
    let from = "no-reply@teleperson.com";
    ses::verify_sender(&emulator, from).await;
    let (mailer, capture) = ses::capturing_mailer(&emulator, None);
    let to = format!("{}@example.com", unique("ann-"));
    let out = email(&to, from, "Your account — ünïcode", "Hello Ann,\n\nLine two.\n");

    let id = mailer.send(&out).await.unwrap();

    let recorded = ses::emails_to(&emulator, &to).await;
    assert_eq!(recorded.len(), 1);
    let m = &recorded[0];
    assert_eq!(m.id, id, "the provider id is moto's message id");
    assert_eq!(m.source, from);
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
    assert_eq!(wire["FromEmailAddress"], from);
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
async fn the_configuration_set_is_named_when_configured() {
    let emulator = Emulator::start_or_panic();
    let from = "no-reply@teleperson.com";
    ses::verify_sender(&emulator, from).await;
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
    mailer.send(&email(&to, from, "Hi", "Body")).await.unwrap();
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
async fn an_unreachable_provider_is_unavailable_not_rejected() {
    let emulator = Emulator::start_or_panic();
    // A loopback port nobody listens on.
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
    match mailer
        .send(&email("ann@example.com", "no-reply@teleperson.com", "Hi", "Body"))
        .await
    {
        Err(MailError::Unavailable { code, .. }) => assert_eq!(code, "DispatchFailure"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

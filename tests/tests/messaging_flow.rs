//! The messaging use case as the `message-user` Lambda builds it (`aws_adapters::env`),
//! against the emulator: DynamoDB tables from `infra/`, SESv2 in moto. At most one email per
//! message, whatever fails.

use aws_adapters::env::{delivery_from, messaging_from_with_mailer, sweeper_from};
use aws_adapters::SesMailer;
use domain::messaging::{Answer, Messaging, Outcome, SendError, SendInput};
use domain::model::{MessageStatus, RequestMeta};
use domain::ports::{ManualClock, Profiles, Recorded};
use domain::types::{IdempotencyKey, MessageBody, Subject, UserId};
use integration_tests::{all_strings, profile, str_attr, user_id, Harness, Item};
use std::sync::Arc;
use std::time::Duration;
use test_support::blackhole::BlackHole;
use test_support::faults::{FakeAnswer, ReplaceAnswers};
use test_support::ses::{self, SesCapture};
use test_support::TestEnv;

const MAIL_FROM: &str = "no-reply@teleperson.com";

struct Flow {
    h: Harness,
    env: TestEnv,
    messaging: Messaging,
    capture: SesCapture,
    admin: String,
    target: String,
    target_email: String,
}

async fn flow() -> Flow {
    flow_to(None, TestEnv::default()).await
}

/// The target's stored address (`None`: a plain lower-case one) and extra settings.
async fn flow_to(stored_email: Option<String>, extra: TestEnv) -> Flow {
    let h = Harness::new().await;
    ses::verify_sender(&h.emulator, MAIL_FROM).await;
    let admin = user_id("admin");
    let target = user_id("user");
    let target_email = stored_email.unwrap_or_else(|| format!("{target}@example.com"));
    h.put_profile(&profile(
        &admin,
        Some(&format!("{admin}@teleperson.com")),
        "admin",
        "Ada Admin",
    ))
    .await;
    h.put_profile(&profile(&target, Some(&target_email), "user", "Ulla User"))
        .await;
    let mut env = h.tables.env().set("MAIL_FROM", MAIL_FROM);
    env.0.extend(extra.0);
    let (mailer, capture) = ses::capturing_mailer(&h.emulator, None);
    let messaging = messaging_from_with_mailer(&env.lookup(), &h.sdk, mailer).expect("configured");
    Flow {
        h,
        env,
        messaging,
        capture,
        admin,
        target,
        target_email,
    }
}

impl Flow {
    fn meta(&self, request_id: &str) -> RequestMeta {
        RequestMeta {
            caller: Some(self.admin.clone()),
            request_id: request_id.to_owned(),
            source_ip: Some("198.51.100.4".into()),
            user_agent: Some("integration-tests".into()),
            token_issued_at: None,
        }
    }

    fn input(&self, subject: &str, body: &str, key: Option<&str>) -> SendInput {
        SendInput {
            target: UserId::parse(&self.target).unwrap(),
            subject: Subject::parse(Some(subject)).unwrap(),
            body: MessageBody::parse(body).unwrap(),
            idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
        }
    }

    async fn message_rows(&self) -> Vec<Item> {
        self.h
            .rows_where(
                &self.h.table("ADMIN_MESSAGES_TABLE"),
                "recipient_id",
                &self.target,
            )
            .await
    }

    async fn mails(&self) -> usize {
        ses::emails_to(&self.h.emulator, self.target_email.trim())
            .await
            .len()
    }

    /// The same use case with another mailer.
    fn with_mailer(&self, mailer: SesMailer) -> Messaging {
        let mut m = self.messaging.clone();
        m.mailer = Arc::new(mailer);
        m
    }

    async fn send_leases(&self) -> Option<Vec<String>> {
        let row = self
            .h
            .get(&self.h.table("PROFILES_TABLE"), "user_id", &self.target)
            .await
            .unwrap();
        row.get("send_leases").and_then(|v| v.as_ss().ok()).cloned()
    }
}

fn sent(answer: &Answer) -> &domain::messaging::SendReceipt {
    match &answer.outcome {
        Outcome::Sent(receipt) => receipt,
        other => panic!("expected sent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_is_mailed_stored_as_sent_and_audited_without_its_content() {
    let f = flow().await;
    let subject = "About your Teleperson account";
    let body = "Hi Ulla,\n\nplease confirm your billing address.\n\n-- Ada";
    let answer = f
        .messaging
        .send(&f.meta("req-1"), f.input(subject, body, None))
        .await
        .unwrap();
    assert!(!answer.replayed);
    let receipt = sent(&answer);
    assert_eq!(receipt.status, "sent");

    let mails = ses::emails_to(&f.h.emulator, &f.target_email).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].source, MAIL_FROM);
    assert_eq!(mails[0].to, vec![f.target_email.clone()]);
    assert_eq!(mails[0].subject, subject);
    assert_eq!(mails[0].body, body);
    assert_eq!(mails[0].id, receipt.ses_message_id);
    let wire = f.capture.requests();
    assert_eq!(wire.len(), 1);
    assert_eq!(
        wire[0]["ReplyToAddresses"],
        serde_json::json!(["hello@teleperson.com"])
    );
    assert_eq!(
        wire[0]["EmailTags"],
        serde_json::json!([{ "Name": "message_id", "Value": receipt.message_id }])
    );

    let rows = f.message_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(str_attr(row, "message_id"), Some(receipt.message_id.as_str()));
    assert_eq!(str_attr(row, "status"), Some("sent"));
    assert_eq!(
        str_attr(row, "ses_message_id"),
        Some(receipt.ses_message_id.as_str())
    );
    assert_eq!(str_attr(row, "sender_id"), Some(f.admin.as_str()));
    assert_eq!(str_attr(row, "subject"), Some(subject));
    assert!(str_attr(row, "attempt").is_some(), "marked before SES was called");
    assert!(!row.contains_key("pending_queue"));
    assert_eq!(f.send_leases().await, None, "the send's lease is released");

    let events =
        f.h.rows_where(&f.h.table("SECURITY_LOGS_TABLE"), "target_id", &f.target)
            .await;
    assert_eq!(events.len(), 1, "one audit event");
    let event = &events[0];
    assert_eq!(str_attr(event, "event_type"), Some("admin_sent_user_message"));
    assert_eq!(str_attr(event, "actor_id"), Some(f.admin.as_str()));
    assert_eq!(str_attr(event, "target_id"), Some(f.target.as_str()));
    assert_eq!(str_attr(event, "message_id"), Some(receipt.message_id.as_str()));
    assert_eq!(str_attr(event, "request_id"), Some("req-1"));
    for value in all_strings(event) {
        assert!(
            !value.to_lowercase().contains(&f.target_email),
            "the audit row holds the email: {value}"
        );
        assert!(
            !value.contains(subject) && !value.contains("billing address"),
            "the audit row holds content"
        );
        assert!(
            !value.contains('@'),
            "no address of any kind in the audit row: {value}"
        );
    }
}

#[tokio::test]
async fn the_mail_goes_to_the_stored_address_trimmed_with_its_case_kept() {
    let local = test_support::unique("Ulla.User-").to_uppercase();
    let f = flow_to(Some(format!("  {local}@Example.COM ")), TestEnv::default()).await;
    f.messaging
        .send(&f.meta("req-case"), f.input("Hi", "Body", None))
        .await
        .unwrap();
    let wire = f.capture.requests();
    assert_eq!(
        wire[0]["Destination"]["ToAddresses"],
        serde_json::json!([format!("{local}@Example.COM")])
    );
    assert_eq!(f.mails().await, 1);
}

#[tokio::test]
async fn twenty_concurrent_sends_with_one_idempotency_key_send_one_email() {
    let f = flow().await;
    let meta = f.meta("req-dup");
    let input = f.input("Same", "Same body", Some("key-123"));
    let results = futures::future::join_all((0..20).map(|_| f.messaging.send(&meta, input.clone()))).await;

    let mut ids = Vec::new();
    let mut first = 0;
    for r in &results {
        match r {
            Ok(answer) => {
                ids.push(sent(answer).message_id.clone());
                first += usize::from(!answer.replayed);
            }
            // A duplicate that arrives while the first is still sending.
            Err(SendError::RequestInProgress { message_id, .. }) => ids.push(message_id.clone()),
            Err(e) => panic!("every duplicate is answered with the first result, got {e:?}"),
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message id for all twenty answers");
    assert_eq!(first, 1, "one answer is the original");
    assert_eq!(f.mails().await, 1, "exactly one email");
    assert_eq!(f.capture.requests().len(), 1, "one SendEmail on the wire");
    assert_eq!(f.message_rows().await.len(), 1, "exactly one message row");
    let sent_events =
        f.h.rows_where(
            &f.h.table("SECURITY_LOGS_TABLE"),
            "event_type",
            "admin_sent_user_message",
        )
        .await;
    assert_eq!(sent_events.len(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_message_is_refused_and_the_same_request_is_replayed() {
    let f = flow().await;
    let meta = f.meta("req-a");
    f.messaging
        .send(&meta, f.input("Hello", "First body", Some("key-9")))
        .await
        .unwrap();
    let again = f
        .messaging
        .send(&f.meta("req-b"), f.input("Hello", "Second body", Some("key-9")))
        .await;
    assert!(matches!(again, Err(SendError::IdempotencyKeyReused)), "{again:?}");
    let replay = f
        .messaging
        .send(&meta, f.input("Hello", "First body", Some("key-9")))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(f.mails().await, 1);
    assert_eq!(f.message_rows().await.len(), 1);
}

#[tokio::test]
async fn an_unconfirmed_send_stays_pending_is_never_sent_again_and_is_settled_later() {
    let f = flow().await;
    // SES took the mail (moto records it) but its answer is a 503.
    let replace = ReplaceAnswers::new("SendEmail", 1, FakeAnswer::rest_error(503, "ServiceUnavailable"));
    let (mailer, capture) = ses::capturing_mailer_with(&f.h.emulator, None, replace.clone());
    let messaging = f.with_mailer(mailer);
    let meta = f.meta("req-maybe");
    let input = f.input("Maybe", "Maybe sent", Some("key-maybe"));

    let first = messaging.send(&meta, input.clone()).await.unwrap();
    let Outcome::Pending { message_id } = first.outcome.clone() else {
        panic!("SES's answer is unknown: the message is pending, got {first:?}");
    };
    let row = messaging.outbox.get(&message_id).await.unwrap().unwrap();
    assert_eq!(row.status, MessageStatus::Pending);
    assert!(row.attempt.is_some());
    assert_eq!(f.send_leases().await, None, "the lease is released all the same");

    // The client retries with the same key: the same answer, and no second SendEmail.
    let retry = messaging.send(&meta, input).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.outcome, first.outcome);
    assert_eq!(capture.requests().len(), 1, "SES was called once");
    let mails = ses::emails_to(&f.h.emulator, &f.target_email).await;
    assert_eq!(mails.len(), 1);

    // Fifteen minutes on, the sweep marks it unconfirmed.
    let mut sweeper = sweeper_from(
        &f.env
            .clone()
            .set("DELETION_QUEUE_URL", "unused: no job is open")
            .lookup(),
        &f.h.sdk,
    )
    .unwrap();
    sweeper.clock = Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::minutes(16),
    ));
    let report = sweeper.run().await.unwrap();
    assert_eq!(report.unconfirmed, vec![message_id.clone()]);
    assert_eq!(
        messaging.outbox.get(&message_id).await.unwrap().unwrap().status,
        MessageStatus::Unconfirmed
    );

    // SES's Send event (tagged with our message id) settles it.
    let event = serde_json::json!({
        "eventType": "Send",
        "mail": {
            "messageId": mails[0].id,
            "timestamp": "2026-01-01T00:00:00.000Z",
            "tags": { "message_id": [message_id] }
        },
        "send": {}
    });
    let delivery = delivery_from(&f.env.lookup(), &f.h.sdk).unwrap();
    assert_eq!(
        delivery.apply(&event.to_string()).await.unwrap(),
        Recorded::Updated
    );
    let row = messaging.outbox.get(&message_id).await.unwrap().unwrap();
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(row.ses_message_id.as_deref(), Some(mails[0].id.as_str()));
}

#[tokio::test]
async fn a_request_that_died_while_ses_had_the_mail_is_never_sent_again_by_a_takeover() {
    let f = flow().await;
    // The first request's SendEmail goes to an endpoint that takes it and never answers; the
    // request dies (its future is dropped) once the row carries its attempt.
    let silent = BlackHole::start();
    let silent_sdk =
        f.h.emulator
            .sdk()
            .to_builder()
            .endpoint_url(silent.endpoint())
            .build();
    let dying = f.with_mailer(SesMailer::new(&silent_sdk, None));
    let meta = f.meta("req-dies");
    let input = f.input("Once", "Only once", Some("key-once"));
    let request = dying.send(&meta, input.clone());
    let watch = async {
        loop {
            if let Some(row) = f.message_rows().await.into_iter().next() {
                if row.contains_key("attempt") {
                    return str_attr(&row, "message_id").unwrap().to_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let message_id = tokio::select! {
        answer = request => panic!("the request was meant to die: {answer:?}"),
        id = watch => id,
    };
    // Give the dying request's SendEmail time to reach the endpoint.
    for _ in 0..100 {
        if silent.connections() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(silent.connections(), 1, "SES may have the mail");

    // After the key's lease, the client's retry takes the key over with the same message id,
    // finds the row attempted and answers pending: no second SendEmail.
    let mut later = f.messaging.clone();
    later.clock = Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::seconds(31),
    ));
    let answer = later.send(&meta, input.clone()).await.unwrap();
    assert_eq!(
        answer.outcome,
        Outcome::Pending {
            message_id: message_id.clone()
        }
    );
    assert!(f.capture.requests().is_empty(), "SES was not called again");
    assert_eq!(f.mails().await, 0);
    assert_eq!(f.message_rows().await.len(), 1, "no second row");
    // And from then on the key answers the same.
    let again = later.send(&meta, input).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.outcome, answer.outcome);
}

#[tokio::test]
async fn the_per_admin_limit_refuses_the_third_message_in_a_minute() {
    let f = flow_to(None, TestEnv::default().set("MESSAGES_PER_MINUTE", "2")).await;
    for i in 0..2 {
        f.messaging
            .send(
                &f.meta(&format!("req-{i}")),
                f.input("Hi", &format!("Body {i}"), None),
            )
            .await
            .unwrap();
    }
    let third = f
        .messaging
        .send(&f.meta("req-3"), f.input("Hi", "Body 3", None))
        .await;
    match third {
        Err(SendError::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60))
        }
        other => panic!("expected rate limited, got {other:?}"),
    }
    assert_eq!(f.mails().await, 2);
    assert_eq!(f.message_rows().await.len(), 2, "no row for the refused one");
}

#[tokio::test]
async fn a_deleted_user_gets_no_mail() {
    let f = flow().await;
    let profiles = aws_adapters::DynamoProfiles::new(f.h.dynamo.clone(), f.h.table("PROFILES_TABLE"));
    profiles.anonymise(&f.target, chrono::Utc::now()).await.unwrap();
    let result = f
        .messaging
        .send(&f.meta("req-x"), f.input("Hi", "Body", None))
        .await;
    assert!(matches!(result, Err(SendError::Denied(_))), "{result:?}");
    assert_eq!(f.mails().await, 0);
    assert!(f.message_rows().await.is_empty());
    let denied =
        f.h.rows_where(
            &f.h.table("SECURITY_LOGS_TABLE"),
            "event_type",
            "admin_action_denied",
        )
        .await;
    assert_eq!(denied.len(), 1);
    assert_eq!(str_attr(&denied[0], "reason"), Some("user_deleted"));
}

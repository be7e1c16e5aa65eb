//! The messaging use case as the `message-user` Lambda builds it (`aws_adapters::env`),
//! against the emulator: DynamoDB tables from `infra/`, SESv2 in moto.

use aws_adapters::env::messaging_from_with_mailer;
use domain::messaging::{Messaging, SendError, SendInput, Sent};
use domain::model::RequestMeta;
use domain::ports::Profiles;
use domain::types::{IdempotencyKey, MessageBody, Subject, UserId};
use integration_tests::{all_strings, profile, str_attr, user_id, Harness};
use test_support::ses::{self, SesCapture};

const MAIL_FROM: &str = "no-reply@teleperson.com";

struct Flow {
    h: Harness,
    messaging: Messaging,
    capture: SesCapture,
    admin: String,
    target: String,
    target_email: String,
}

async fn flow() -> Flow {
    let h = Harness::new().await;
    ses::verify_sender(&h.emulator, MAIL_FROM).await;
    let admin = user_id("admin");
    let target = user_id("user");
    let target_email = format!("{target}@example.com");
    h.put_profile(&profile(
        &admin,
        Some(&format!("{admin}@teleperson.com")),
        "admin",
        "Ada Admin",
    ))
    .await;
    h.put_profile(&profile(&target, Some(&target_email), "user", "Ulla User"))
        .await;
    let env = h.tables.env().set("MAIL_FROM", MAIL_FROM);
    let (mailer, capture) = ses::capturing_mailer(&h.emulator, None);
    let messaging = messaging_from_with_mailer(&env.lookup(), h.emulator.sdk(), mailer).expect("configured");
    Flow {
        h,
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

    async fn message_rows(&self) -> Vec<integration_tests::Item> {
        self.h
            .rows_where(
                &self.h.table("ADMIN_MESSAGES_TABLE"),
                "recipient_id",
                &self.target,
            )
            .await
    }
}

#[tokio::test]
async fn a_message_is_mailed_stored_as_sent_and_audited_without_its_content() {
    let f = flow().await;
    let subject = "About your Teleperson account";
    let body = "Hi Ulla,\n\nplease confirm your billing address.\n\n-- Ada";
    let Sent { receipt, replayed } = f
        .messaging
        .send(&f.meta("req-1"), f.input(subject, body, None))
        .await
        .unwrap();
    assert!(!replayed);
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
async fn twenty_concurrent_sends_with_one_idempotency_key_send_one_email() {
    let f = flow().await;
    let meta = f.meta("req-dup");
    let input = f.input("Same", "Same body", Some("key-123"));
    let results = futures::future::join_all((0..20).map(|_| f.messaging.send(&meta, input.clone()))).await;

    let mut ids = Vec::new();
    let mut first = 0;
    for r in &results {
        match r {
            Ok(Sent { receipt, replayed }) => {
                ids.push(receipt.message_id.clone());
                first += usize::from(!replayed);
            }
            Err(e) => panic!("every duplicate is answered with the first result, got {e:?}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message id for all twenty answers");
    assert_eq!(first, 1, "one answer is the original, nineteen are replays");
    assert_eq!(
        ses::emails_to(&f.h.emulator, &f.target_email).await.len(),
        1,
        "exactly one email"
    );
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
async fn the_same_key_with_a_different_message_is_a_conflict() {
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
    assert!(matches!(again, Err(SendError::IdempotencyConflict)), "{again:?}");
    // The same request again is a replay, not a second email.
    let replay = f
        .messaging
        .send(&meta, f.input("Hello", "First body", Some("key-9")))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(ses::emails_to(&f.h.emulator, &f.target_email).await.len(), 1);
    assert_eq!(f.message_rows().await.len(), 1);
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
    assert!(ses::emails_to(&f.h.emulator, &f.target_email).await.is_empty());
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

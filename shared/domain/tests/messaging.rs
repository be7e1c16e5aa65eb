//! The send-message use case on in-memory adapters.

mod common;

use common::*;
use domain::deletion::DeletionSettings;
use domain::memory::MailBehaviour;
use domain::messaging::{MessagingSettings, SendError, SendInput};
use domain::model::{EventType, MessageStatus};
use domain::types::{IdempotencyKey, MessageBody, Subject, UserId};
use policy::Denial;
use std::time::Duration;

fn input(target: &str, subject: Option<&str>, body: &str, key: Option<&str>) -> SendInput {
    SendInput {
        target: UserId::parse(target).unwrap(),
        subject: Subject::parse(subject).unwrap(),
        body: MessageBody::parse(body).unwrap(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
    }
}

fn rows_for(b: &domain::memory::InMemoryBackend, recipient: &str) -> usize {
    b.snapshot()
        .messages
        .values()
        .filter(|m| m.recipient_id == recipient)
        .count()
}

fn settings() -> MessagingSettings {
    MessagingSettings {
        mail_from: "admin-tools@teleperson.com".into(),
        ..MessagingSettings::default()
    }
}

#[tokio::test]
async fn a_message_goes_to_the_users_address_with_the_support_reply_to() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let sent = m
        .send(&meta("admin-1"), input("user-1", None, "Hello there", None))
        .await
        .unwrap();
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    let mail = &st.sent_mail[0];
    assert_eq!(mail.to, "target.user@example.com");
    assert_eq!(mail.from, "admin-tools@teleperson.com");
    assert_eq!(mail.reply_to, "hello@teleperson.com");
    assert_eq!(mail.subject, "A message from Teleperson");
    assert_eq!(mail.body, "Hello there");
    let row = &st.messages[&sent.receipt.message_id];
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(
        row.ses_message_id.as_deref(),
        Some(sent.receipt.ses_message_id.as_str())
    );
    let audit: Vec<_> = st.security_logs.values().collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event_type, EventType::AdminSentUserMessage);
    assert_eq!(audit[0].fields.get("message_id"), Some(&sent.receipt.message_id));
    let text = format!("{:?}", audit[0]);
    assert!(
        !text.contains("example.com") && !text.contains("Hello there") && !text.contains("A message from")
    );
    // The send lease on the recipient is released once the send is over.
    assert_eq!(st.send_leases["user-1"].0, 0);
}

#[tokio::test]
async fn the_same_key_replays_the_first_answer_and_sends_nothing() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let first = m
        .send(&meta("admin-1"), input("user-1", Some("Hi"), "Body", Some("k-1")))
        .await
        .unwrap();
    let second = m
        .send(&meta("admin-1"), input("user-1", Some("Hi"), "Body", Some("k-1")))
        .await
        .unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.receipt, second.receipt);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_a_conflict() {
    let b = seeded(0);
    let m = b.messaging(settings());
    m.send(&meta("admin-1"), input("user-1", Some("Hi"), "Body", Some("k-1")))
        .await
        .unwrap();
    let other = m
        .send(
            &meta("admin-1"),
            input("user-1", Some("Hi"), "Other body", Some("k-1")),
        )
        .await;
    assert!(matches!(other, Err(SendError::IdempotencyConflict)), "{other:?}");
    // Keys are per caller: another admin may use the same key.
    m.send(
        &meta("admin-2"),
        input("user-1", Some("Hi"), "Other body", Some("k-1")),
    )
    .await
    .unwrap();
    assert_eq!(b.snapshot().sent_mail.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_send_one_email() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let tasks = (0..50).map(|_| {
        let m = m.clone();
        tokio::spawn(async move {
            m.send(&meta("admin-1"), input("user-1", None, "Once", Some("same")))
                .await
        })
    });
    let results = futures::future::join_all(tasks).await;
    let ids: std::collections::HashSet<_> = results
        .into_iter()
        .map(|r| r.unwrap().unwrap().receipt.message_id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

#[tokio::test]
async fn a_rejected_message_is_kept_as_failed_and_replayed_as_rejected() {
    let b = seeded(0);
    b.set_mail_behaviour(MailBehaviour::Reject);
    let m = b.messaging(settings());
    let err = m
        .send(&meta("admin-1"), input("user-1", None, "x", Some("r")))
        .await
        .unwrap_err();
    let SendError::MailRejected { message_id, code } = err else {
        panic!("{err:?}")
    };
    assert_eq!(code, "MessageRejected");
    let row = b.snapshot().messages[&message_id].clone();
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("MessageRejected"));
    b.set_mail_behaviour(MailBehaviour::Accept);
    let again = m
        .send(&meta("admin-1"), input("user-1", None, "x", Some("r")))
        .await;
    assert!(
        matches!(again, Err(SendError::MailRejected { .. })),
        "a final answer is replayed"
    );
    assert!(b.snapshot().sent_mail.is_empty());
}

#[tokio::test]
async fn a_throttled_send_keeps_a_failed_row_and_frees_the_key_for_a_retry() {
    let b = seeded(0);
    b.set_mail_behaviour(MailBehaviour::Throttle);
    let m = b.messaging(settings());
    let err = m
        .send(&meta("admin-1"), input("user-1", None, "x", Some("t")))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::MailThrottled { .. }), "{err:?}");
    let st = b.snapshot();
    let rows: Vec<_> = st
        .messages
        .values()
        .filter(|r| r.recipient_id == "user-1")
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, MessageStatus::Failed);
    b.set_mail_behaviour(MailBehaviour::Accept);
    m.send(&meta("admin-1"), input("user-1", None, "x", Some("t")))
        .await
        .unwrap();
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn a_store_failure_is_a_dependency_error_and_no_mail_goes_out_unrecorded() {
    for k in 1..=8 {
        let b = seeded(0);
        let m = b.messaging(settings());
        b.fail_at(k);
        let out = m
            .send(&meta("admin-1"), input("user-1", None, "x", Some("f")))
            .await;
        b.fail_at(0);
        let st = b.snapshot();
        // Every mail that went out has a message row.
        for mail in &st.sent_mail {
            assert!(
                st.messages.contains_key(&mail.message_id),
                "mail without a row (k={k})"
            );
        }
        if let Err(e) = out {
            assert!(matches!(e, SendError::Dependency(_)), "k={k}: {e:?}");
        }
    }
}

#[tokio::test]
async fn nobody_messages_a_deleted_user_or_a_user_without_email() {
    let b = seeded(0);
    b.put_profile(profile("user-3", "user", None));
    b.put_profile(profile("user-4", "user", Some("not an email")));
    let m = b.messaging(settings());
    let none = m.send(&meta("admin-1"), input("user-3", None, "x", None)).await;
    assert!(matches!(none, Err(SendError::NoEmailAddress)), "{none:?}");
    let bad = m.send(&meta("admin-1"), input("user-4", None, "x", None)).await;
    assert!(matches!(bad, Err(SendError::NoEmailAddress)), "{bad:?}");
    let d = b.deletion(DeletionSettings::default());
    d.delete(
        &meta("admin-1"),
        &UserId::parse("user-1").unwrap(),
        false,
        tokio::time::Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    let gone = m.send(&meta("admin-1"), input("user-1", None, "x", None)).await;
    assert!(
        matches!(gone, Err(SendError::Denied(Denial::UserDeleted))),
        "{gone:?}"
    );
    assert!(b.snapshot().sent_mail.is_empty());
}

#[tokio::test]
async fn the_per_admin_limit_answers_rate_limited() {
    let b = seeded(0);
    let m = b.messaging(MessagingSettings {
        messages_per_minute: 2,
        ..settings()
    });
    for _ in 0..2 {
        m.send(&meta("admin-1"), input("user-1", None, "x", None))
            .await
            .unwrap();
    }
    let third = m.send(&meta("admin-1"), input("user-1", None, "x", None)).await;
    assert!(matches!(third, Err(SendError::RateLimited { .. })), "{third:?}");
    let st = b.snapshot();
    assert!(st
        .security_logs
        .values()
        .any(|e| e.fields.get("reason").map(String::as_str) == Some("rate_limited")));
    // Another admin has their own budget.
    m.send(&meta("admin-2"), input("user-1", None, "x", None))
        .await
        .unwrap();
}

#[tokio::test]
async fn history_is_newest_first_and_paginated() {
    let b = seeded(0);
    let m = b.messaging(settings());
    for i in 0..5 {
        m.send(
            &meta("admin-1"),
            input("user-1", Some(&format!("n{i}")), "x", None),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let uid = UserId::parse("user-1").unwrap();
    let p1 = m.history(&meta("owner-1"), &uid, 3, None).await.unwrap();
    assert_eq!(
        p1.items.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["n4", "n3", "n2"]
    );
    let next = domain::cursor::MessageCursor::parse(p1.next.as_deref().expect("a next page")).unwrap();
    let p2 = m.history(&meta("owner-1"), &uid, 3, Some(&next)).await.unwrap();
    assert_eq!(
        p2.items.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["n1", "n0"]
    );
    assert!(p2.next.is_none());
    let denied = m.history(&meta("user-2"), &uid, 3, None).await;
    assert!(denied.is_err());
}

#[tokio::test]
async fn replays_do_not_count_against_the_limit() {
    let b = seeded(0);
    let m = b.messaging(MessagingSettings {
        messages_per_minute: 1,
        ..settings()
    });
    for _ in 0..5 {
        m.send(&meta("admin-1"), input("user-1", None, "x", Some("one")))
            .await
            .unwrap();
    }
    let new = m
        .send(&meta("admin-1"), input("user-1", None, "y", Some("two")))
        .await;
    assert!(matches!(new, Err(SendError::RateLimited { .. })), "{new:?}");
    // The refused key is free again once the window allows it (it was not stored as an answer).
    assert!(b.snapshot().idempotency.keys().all(|k| !k.ends_with("#two")));
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn after_a_hard_bounce_only_send_anyway_sends_again() {
    use domain::messaging::SendOptions;
    let b = seeded(0);
    let m = b.messaging(settings());
    let first = m
        .send(&meta("admin-1"), input("user-1", None, "x", None))
        .await
        .unwrap();
    let ses_id = first.receipt.ses_message_id.clone();
    b.delivery()
        .apply(&format!(r#"{{"eventType":"Bounce","bounce":{{"bounceType":"Permanent"}},"mail":{{"messageId":"{ses_id}"}}}}"#))
        .await
        .unwrap();
    let again = m.send(&meta("admin-1"), input("user-1", None, "y", None)).await;
    assert!(
        matches!(
            again,
            Err(SendError::RecipientUndeliverable {
                last_status: MessageStatus::Bounced
            })
        ),
        "{again:?}"
    );
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    m.send_with(
        &meta("admin-1"),
        input("user-1", None, "y", None),
        SendOptions { send_anyway: true },
    )
    .await
    .unwrap();
    assert_eq!(b.snapshot().sent_mail.len(), 2);
}

#[tokio::test]
async fn an_unconfirmed_send_stays_pending_and_the_same_key_never_sends_again() {
    let b = seeded(0);
    b.set_mail_behaviour(MailBehaviour::Unconfirmed);
    let m = b.messaging(settings());
    let first = m
        .send(&meta("admin-1"), input("user-1", None, "x", Some("u")))
        .await
        .unwrap_err();
    let SendError::MailUnconfirmed { message_id, .. } = first else {
        panic!("{first:?}")
    };
    assert_eq!(b.snapshot().sent_mail.len(), 1, "the provider took the mail");
    assert_eq!(b.snapshot().messages[&message_id].status, MessageStatus::Pending);
    b.set_mail_behaviour(MailBehaviour::Accept);
    let again = m
        .send(&meta("admin-1"), input("user-1", None, "x", Some("u")))
        .await;
    assert!(
        matches!(again, Err(SendError::MailUnconfirmed { .. })),
        "{again:?}"
    );
    assert_eq!(
        b.snapshot().sent_mail.len(),
        1,
        "a retry under the same key sent it again"
    );
    // The send lease is released: a deletion need not wait for it.
    assert_eq!(b.snapshot().send_leases["user-1"].0, 0);
}

//! The send-message use case on in-memory adapters: delivery, idempotency (the IETF
//! httpapi draft's codes), and at most one email per message whatever fails.

mod common;

use common::*;
use domain::deletion::DeletionSettings;
use domain::memory::{Fault, InMemoryBackend, MailBehaviour};
use domain::messaging::{Answer, Messaging, MessagingSettings, Outcome, SendError, SendInput, SendOptions};
use domain::model::{EventType, MessageStatus};
use domain::ports::{Clock, ManualClock};
use domain::types::{IdempotencyKey, MessageBody, Subject, UserId};
use policy::Denial;
use std::sync::Arc;
use std::time::Duration;

fn input(target: &str, subject: Option<&str>, body: &str, key: Option<&str>) -> SendInput {
    SendInput {
        target: UserId::parse(target).unwrap(),
        subject: Subject::parse(subject).unwrap(),
        body: MessageBody::parse(body).unwrap(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
    }
}

fn rows_for(b: &InMemoryBackend, recipient: &str) -> usize {
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

fn sent(answer: &Answer) -> &domain::messaging::SendReceipt {
    match &answer.outcome {
        Outcome::Sent(r) => r,
        other => panic!("expected sent, got {other:?}"),
    }
}

// The store calls of a send with a key, in order: 1 caller's profile, 2 target's profile,
// 3 last message (bounce check), 4 claim the key, 5 reserve, 6 begin the attempt, (SES),
// 7 mark sent, 8 release the lease, 9 complete the key.
const RESERVE: u64 = 5;
const BEGIN_ATTEMPT: u64 = 6;
const MARK_SENT: u64 = 7;

/// A send by admin-1 to user-1 with this body and key.
async fn send(m: &Messaging, body: &str, key: Option<&str>) -> Result<Answer, SendError> {
    m.send(&meta("admin-1"), input("user-1", None, body, key)).await
}

/// A send by admin-1 to user-1 under `key` that dies at store call `at`; no faults after it.
async fn crash_at(b: &InMemoryBackend, m: &Messaging, at: u64, key: &str) {
    b.inject(&[(at, Fault::Crash)]);
    tokio::select! {
        _ = send(m, "x", Some(key)) => panic!("expected the crash"),
        _ = b.crashed() => {}
    }
    b.inject(&[]);
}

fn with_clock() -> (Arc<InMemoryBackend>, Arc<ManualClock>) {
    let b = seeded(0);
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    b.set_clock(clock.clone());
    (b, clock)
}

#[tokio::test]
async fn a_message_goes_to_the_address_as_stored_with_the_support_reply_to() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let answer = send(&m, "Hello there", None).await.unwrap();
    let receipt = sent(&answer);
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    let mail = &st.sent_mail[0];
    // Stored as "Target.User@Example.com": the local part's case is the receiver's business.
    assert_eq!(mail.to, "Target.User@Example.com");
    assert_eq!(mail.from, "admin-tools@teleperson.com");
    assert_eq!(mail.reply_to, "hello@teleperson.com");
    assert_eq!(mail.subject, "A message from Teleperson");
    assert_eq!(mail.body, "Hello there");
    let row = &st.messages.get(&receipt.message_id).expect("the message row");
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(
        row.ses_message_id.as_deref(),
        Some(receipt.ses_message_id.as_str())
    );
    assert!(row.attempt.is_some(), "the attempt was recorded before the call");
    let audit: Vec<_> = st.security_logs.values().collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event_type, EventType::AdminSentUserMessage);
    assert_eq!(audit[0].fields.get("message_id"), Some(&receipt.message_id));
    let text = format!("{:?}", audit[0]);
    assert!(
        !text.to_lowercase().contains("example.com")
            && !text.contains("Hello there")
            && !text.contains("A message from")
    );
    // The send lease on the recipient is released once the send is over.
    assert!(st.send_leases["user-1"].0.is_empty());
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
    assert_eq!(first.outcome, second.outcome);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_idempotency_key_reused() {
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
    assert!(matches!(other, Err(SendError::IdempotencyKeyReused)), "{other:?}");
    // Keys are per caller: another admin may use the same key.
    m.send(
        &meta("admin-2"),
        input("user-1", Some("Hi"), "Other body", Some("k-1")),
    )
    .await
    .unwrap();
    assert_eq!(b.snapshot().sent_mail.len(), 2);
}

#[tokio::test]
async fn the_same_key_while_the_first_request_is_in_flight_is_request_in_progress() {
    let (b, _clock) = with_clock();
    let m = b.messaging(settings());
    // The first request dies right after taking its key (the reserve never happens).
    crash_at(&b, &m, RESERVE, "busy").await;
    let again = send(&m, "x", Some("busy")).await;
    let Err(SendError::RequestInProgress {
        message_id,
        retry_after,
    }) = again
    else {
        panic!("{again:?}")
    };
    assert!(!message_id.is_empty());
    assert!(retry_after > Duration::from_secs(20) && retry_after <= Duration::from_secs(30));
    let other = send(&m, "y", Some("busy")).await;
    assert!(matches!(other, Err(SendError::IdempotencyKeyReused)), "{other:?}");
    assert!(b.snapshot().sent_mail.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_send_one_email_and_name_one_message() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let tasks = (0..50).map(|_| {
        let m = m.clone();
        tokio::spawn(async move { send(&m, "Once", Some("same")).await })
    });
    let mut ids = std::collections::HashSet::new();
    for r in futures::future::join_all(tasks).await {
        match r.unwrap() {
            Ok(a) => ids.insert(a.outcome.message_id().to_owned()),
            Err(SendError::RequestInProgress { message_id, .. }) => ids.insert(message_id),
            Err(e) => panic!("{e:?}"),
        };
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

#[tokio::test]
async fn a_rejected_message_is_failed_and_its_key_is_free_for_a_retry() {
    let b = seeded(0);
    b.set_mail_behaviour(MailBehaviour::Reject);
    let m = b.messaging(settings());
    let err = send(&m, "x", Some("r")).await.unwrap_err();
    let SendError::MailRejected { message_id, code } = err else {
        panic!("{err:?}")
    };
    assert_eq!(code, "MessageRejected");
    let row = b
        .snapshot()
        .messages
        .get(&message_id)
        .expect("the message row")
        .clone();
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("MessageRejected"));
    // A definite no sent nothing: the same key may try again, and this time it goes out.
    b.set_mail_behaviour(MailBehaviour::Accept);
    let again = send(&m, "x", Some("r")).await.unwrap();
    assert_ne!(again.outcome.message_id(), message_id);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn a_throttled_or_unreachable_provider_sent_nothing_and_frees_the_key() {
    for behaviour in [MailBehaviour::Throttle, MailBehaviour::NotSent] {
        let b = seeded(0);
        b.set_mail_behaviour(behaviour.clone());
        let m = b.messaging(settings());
        let err = send(&m, "x", Some("t")).await.unwrap_err();
        match behaviour {
            MailBehaviour::Throttle => assert!(matches!(err, SendError::MailThrottled { .. }), "{err:?}"),
            _ => assert!(matches!(err, SendError::MailNotSent { .. }), "{err:?}"),
        }
        let st = b.snapshot();
        let rows: Vec<_> = st
            .messages
            .values()
            .filter(|r| r.recipient_id == "user-1")
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, MessageStatus::Failed);
        b.set_mail_behaviour(MailBehaviour::Accept);
        send(&m, "x", Some("t")).await.unwrap();
        assert_eq!(b.snapshot().sent_mail.len(), 1);
    }
}

#[tokio::test]
async fn an_unconfirmed_send_is_pending_and_nothing_ever_sends_it_again() {
    for behaviour in [MailBehaviour::Unconfirmed, MailBehaviour::LostRequest] {
        let (b, clock) = with_clock();
        b.set_mail_behaviour(behaviour.clone());
        let m = b.messaging(settings());
        let first = send(&m, "x", Some("u")).await.unwrap();
        let Outcome::Pending { message_id } = first.outcome.clone() else {
            panic!("{first:?}")
        };
        let gone = usize::from(behaviour == MailBehaviour::Unconfirmed);
        assert_eq!(b.snapshot().sent_mail.len(), gone);
        assert_eq!(
            b.snapshot()
                .messages
                .get(&message_id)
                .expect("the message row")
                .status,
            MessageStatus::Pending
        );
        // The lease is released: a deletion need not wait for it.
        assert!(b.snapshot().send_leases["user-1"].0.is_empty());
        b.set_mail_behaviour(MailBehaviour::Accept);
        // A retry under the same key, now and after the key's lease ran out.
        for wait in [0, 60] {
            clock.advance(chrono::Duration::seconds(wait));
            let again = send(&m, "x", Some("u")).await.unwrap();
            assert_eq!(again.outcome, first.outcome, "{behaviour:?}");
            assert!(again.replayed);
        }
        assert_eq!(
            b.snapshot().mail_calls.len(),
            1,
            "{behaviour:?}: SES was called again"
        );
        assert_eq!(rows_for(&b, "user-1"), 1);
    }
}

#[tokio::test]
async fn a_takeover_of_an_expired_key_never_sends_a_row_ses_may_have_seen() {
    let (b, clock) = with_clock();
    let m = b.messaging(settings());
    // The first request sent the mail and died before its bookkeeping: the row stays
    // pending with its attempt.
    crash_at(&b, &m, MARK_SENT, "k").await;
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    // After the key's lease, a retry takes the key over with the same message id, finds the
    // row attempted, and answers pending: SES is never called again.
    clock.advance(chrono::Duration::seconds(60));
    let again = send(&m, "x", Some("k")).await.unwrap();
    assert!(matches!(again.outcome, Outcome::Pending { .. }), "{again:?}");
    assert_eq!(b.snapshot().mail_calls.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

#[tokio::test]
async fn a_takeover_of_a_key_whose_send_never_reached_ses_sends_it_once() {
    let (b, clock) = with_clock();
    let m = b.messaging(settings());
    // The first request died at begin_attempt, before it applied: SES was never called.
    crash_at(&b, &m, BEGIN_ATTEMPT, "k").await;
    let row = b.snapshot().messages.values().next().cloned().unwrap();
    assert!(row.attempt.is_none() && row.status == MessageStatus::Pending);
    clock.advance(chrono::Duration::seconds(60));
    let again = send(&m, "x", Some("k")).await.unwrap();
    assert_eq!(
        sent(&again).message_id,
        row.message_id,
        "the same message, no second row"
    );
    assert_eq!(b.snapshot().sent_mail.len(), 1);
    assert_eq!(rows_for(&b, "user-1"), 1);
}

/// At most once, whatever fails: a fault (failure, lost answer, crash) at every store call
/// of a send, each followed by retries with the same key as a client would make them
/// (after the key's lease, too). Never two emails; a `sent` answer means exactly one; no row
/// says sent without an email.
#[tokio::test]
async fn at_most_one_email_per_key_with_a_fault_at_every_store_call() {
    let mut faults = 0;
    for fault in [Fault::Fail, Fault::FailAfter, Fault::Crash] {
        for k in 1.. {
            let (b, clock) = with_clock();
            let m = b.messaging(settings());
            b.inject(&[(k, fault)]);
            let mut answered_sent = false;
            for attempt in 0..5 {
                let out = tokio::select! {
                    r = send(&m, "x", Some("once")) => Some(r),
                    _ = b.crashed() => None,
                };
                if let Some(Ok(a)) = &out {
                    answered_sent |= matches!(a.outcome, Outcome::Sent(_));
                }
                if attempt == 0 {
                    b.inject(&[]);
                }
                clock.advance(chrono::Duration::seconds(45));
            }
            let st = b.snapshot();
            assert!(
                st.mail_calls.len() <= 1,
                "{fault:?} at {k}: SES called {} times",
                st.mail_calls.len()
            );
            if answered_sent {
                assert_eq!(st.sent_mail.len(), 1, "{fault:?} at {k}");
            }
            for row in st.messages.values().filter(|r| r.recipient_id == "user-1") {
                if row.status == MessageStatus::Sent {
                    assert!(
                        st.sent_mail.iter().any(|mail| mail.message_id == row.message_id),
                        "{fault:?} at {k}: {row:?} {:?}",
                        st.sent_mail
                    );
                }
            }
            if b.store_calls() < k {
                break;
            }
            faults += 1;
        }
    }
    assert!(faults > 20, "{faults}");
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
    // A deletion job that has only just been created is enough.
    let d = b.deletion(DeletionSettings::default());
    d.delete(
        &meta("admin-1"),
        &UserId::parse("user-1").unwrap(),
        false,
        tokio::time::Instant::now(),
    )
    .await
    .unwrap();
    assert!(
        b.snapshot().profiles["user-1"].deleted_at.is_none(),
        "no tombstone yet"
    );
    let gone = send(&m, "x", None).await;
    assert!(
        matches!(gone, Err(SendError::Denied(Denial::UserDeleted))),
        "{gone:?}"
    );
    assert!(b.snapshot().sent_mail.is_empty());
}

#[tokio::test]
async fn the_per_admin_limit_is_a_sliding_window() {
    let (b, clock) = with_clock();
    let m = b.messaging(MessagingSettings {
        messages_per_minute: 2,
        ..settings()
    });
    // Two sends late in a minute...
    clock.advance(chrono::Duration::seconds(50));
    for _ in 0..2 {
        send(&m, "x", None).await.unwrap();
    }
    // ... leave none for the next 60 seconds, across any window boundary.
    clock.advance(chrono::Duration::seconds(15));
    let third = send(&m, "x", None).await;
    let Err(SendError::RateLimited { retry_after }) = third else {
        panic!("{third:?}")
    };
    assert!(
        retry_after > Duration::from_secs(40) && retry_after <= Duration::from_secs(45),
        "{retry_after:?}"
    );
    assert!(b
        .snapshot()
        .security_logs
        .values()
        .any(|e| e.fields.get("reason").map(String::as_str) == Some("rate_limited")));
    // Another admin has their own budget.
    m.send(&meta("admin-2"), input("user-1", None, "x", None))
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(46));
    send(&m, "x", None).await.unwrap();
}

#[tokio::test]
async fn history_is_newest_first_and_paginated() {
    let (b, clock) = with_clock();
    let m = b.messaging(settings());
    for i in 0..5 {
        m.send(
            &meta("admin-1"),
            input("user-1", Some(&format!("n{i}")), "x", None),
        )
        .await
        .unwrap();
        clock.advance(chrono::Duration::milliseconds(3));
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
    let _ = clock.now();
}

#[tokio::test]
async fn replays_do_not_count_against_the_limit() {
    let b = seeded(0);
    let m = b.messaging(MessagingSettings {
        messages_per_minute: 1,
        ..settings()
    });
    for _ in 0..5 {
        send(&m, "x", Some("one")).await.unwrap();
    }
    let new = send(&m, "y", Some("two")).await;
    assert!(matches!(new, Err(SendError::RateLimited { .. })), "{new:?}");
    // The refused key is free again once the window allows it (it was not stored as an answer).
    assert!(b.snapshot().idempotency.keys().all(|k| !k.ends_with("#two")));
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn after_a_hard_bounce_only_send_anyway_sends_again() {
    let b = seeded(0);
    let m = b.messaging(settings());
    let first = send(&m, "x", None).await.unwrap();
    let ses_id = sent(&first).ses_message_id.clone();
    b.delivery()
        .apply(&format!(
            r#"{{"eventType":"Bounce","bounce":{{"bounceType":"Permanent"}},"mail":{{"messageId":"{ses_id}"}}}}"#
        ))
        .await
        .unwrap();
    let again = send(&m, "y", None).await;
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
async fn the_sweep_turns_rows_pending_for_15_minutes_unconfirmed_and_a_later_event_moves_them_on() {
    let (b, clock) = with_clock();
    b.set_mail_behaviour(MailBehaviour::Unconfirmed);
    let m = b.messaging(settings());
    let answer = send(&m, "x", None).await.unwrap();
    let id = answer.outcome.message_id().to_owned();
    let sweeper = b.sweeper(Default::default());
    clock.advance(chrono::Duration::minutes(14));
    assert!(sweeper.run().await.unwrap().unconfirmed.is_empty());
    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(sweeper.run().await.unwrap().unconfirmed, vec![id.clone()]);
    assert_eq!(
        b.snapshot().messages.get(&id).expect("the message row").status,
        MessageStatus::Unconfirmed
    );
    // SES's Send event, late, still confirms it: found by the tag, the row had no provider id.
    let event = format!(
        r#"{{"eventType":"Send","mail":{{"messageId":"SES-LATE","timestamp":"2026-11-25T10:00:00.000Z","tags":{{"message_id":["{id}"]}}}},"send":{{}}}}"#
    );
    b.delivery().apply(&event).await.unwrap();
    let row = b.snapshot().messages.get(&id).expect("the message row").clone();
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(row.ses_message_id.as_deref(), Some("SES-LATE"));
}

#[tokio::test]
async fn the_sweep_fails_a_row_whose_request_died_before_ses_was_called() {
    let (b, clock) = with_clock();
    let m = b.messaging(settings());
    crash_at(&b, &m, BEGIN_ATTEMPT, "k").await;
    let id = b
        .snapshot()
        .messages
        .values()
        .find(|r| r.recipient_id == "user-1")
        .unwrap()
        .message_id
        .clone();
    clock.advance(chrono::Duration::minutes(16));
    let report = b.sweeper(Default::default()).run().await.unwrap();
    assert_eq!(report.failed, vec![id.clone()]);
    let row = b.snapshot().messages.get(&id).expect("the message row").clone();
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("NotSent"));
    assert!(b.snapshot().mail_calls.is_empty());
}

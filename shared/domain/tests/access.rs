//! Who may speak: revoked tokens, and refusals that cannot flood the audit log.

mod common;

use common::*;
use domain::access::{REFUSAL_RETENTION_DAYS, REFUSAL_ROWS_PER_MINUTE};
use domain::deletion::DeletionSettings;
use domain::messaging::{MessagingSettings, SendError, SendInput};
use domain::model::{EventType, RequestMeta};
use domain::ports::{Clock, ManualClock};
use domain::types::{MessageBody, Subject, UserId};
use policy::Denial;
use std::sync::Arc;

fn input() -> SendInput {
    SendInput {
        target: UserId::parse("user-2").unwrap(),
        subject: Subject::parse(None).unwrap(),
        body: MessageBody::parse("hello").unwrap(),
        idempotency_key: None,
    }
}

fn with_token(caller: &str, iat: i64) -> RequestMeta {
    RequestMeta {
        token_issued_at: Some(iat),
        ..meta(caller)
    }
}

fn refusals_by(b: &domain::memory::InMemoryBackend, actor: &str) -> Vec<domain::model::SecurityEvent> {
    b.snapshot()
        .security_logs
        .into_values()
        .filter(|e| e.event_type == EventType::AdminActionDenied && e.actor_id.as_deref() == Some(actor))
        .collect()
}

#[tokio::test]
async fn a_token_issued_before_the_revocation_speaks_for_nobody() {
    let b = seeded(0);
    b.state().profiles.get_mut("admin-1").unwrap().tokens_valid_after = Some(1_000);
    let m = b.messaging(MessagingSettings::default());
    for iat in [999, 0] {
        let out = m.send(&with_token("admin-1", iat), input()).await;
        assert!(
            matches!(out, Err(SendError::Denied(Denial::Unauthenticated))),
            "{iat}: {out:?}"
        );
    }
    // No iat at all, once a revocation exists: refused too.
    let out = m.send(&meta("admin-1"), input()).await;
    assert!(
        matches!(out, Err(SendError::Denied(Denial::Unauthenticated))),
        "{out:?}"
    );
    assert!(b.snapshot().sent_mail.is_empty());
    // A token issued at or after the cut-off works.
    m.send(&with_token("admin-1", 1_000), input()).await.unwrap();
    // The revocation is the caller's alone: others are untouched.
    m.send(&meta("admin-2"), input()).await.unwrap();
    let d = b.deletion(DeletionSettings::default());
    let out = d
        .delete(
            &with_token("admin-1", 10),
            &UserId::parse("user-2").unwrap(),
            false,
            tokio::time::Instant::now(),
        )
        .await;
    assert!(out.is_err());
}

#[tokio::test]
async fn a_flood_of_refusals_writes_a_bounded_number_of_rows_and_counts_them_all() {
    let b = seeded(0);
    let clock = Arc::new(ManualClock::new("2026-11-25T10:00:05Z".parse().unwrap()));
    b.set_clock(clock.clone());
    let m = b.messaging(MessagingSettings::default());
    // user-1 is a plain user: every send is refused (403 forbidden_role).
    for _ in 0..100 {
        let out = m.send(&meta("user-1"), input()).await;
        assert!(
            matches!(out, Err(SendError::Denied(Denial::ForbiddenRole))),
            "{out:?}"
        );
    }
    let rows = refusals_by(&b, "user-1");
    assert_eq!(
        rows.len() as u64,
        REFUSAL_ROWS_PER_MINUTE,
        "one row each for the first ones only"
    );
    let first = rows
        .iter()
        .find(|e| e.event_id == "refusals#user-1#2026-11-25T10:00:00.000Z")
        .expect("the minute's first refusal row");
    assert_eq!(first.fields.get("refusals").map(String::as_str), Some("100"));
    assert_eq!(
        first.fields.get("reason").map(String::as_str),
        Some("forbidden_role")
    );
    // Every refusal row expires; the next minute starts a new count.
    let expires = (clock.now() + chrono::Duration::days(REFUSAL_RETENTION_DAYS)).timestamp();
    assert!(rows.iter().all(|e| e.expires_at == Some(expires)));
    clock.advance(chrono::Duration::seconds(60));
    m.send(&meta("user-1"), input()).await.unwrap_err();
    assert_eq!(
        refusals_by(&b, "user-1").len() as u64,
        REFUSAL_ROWS_PER_MINUTE + 1
    );
}

#[tokio::test]
async fn refusals_without_a_caller_are_counted_by_source_ip() {
    let b = seeded(0);
    let m = b.messaging(MessagingSettings::default());
    // Thirty requests (each its own request id, as API Gateway gives them).
    for _ in 0..30 {
        let anonymous = RequestMeta {
            caller: None,
            ..meta("x")
        };
        let _ = m
            .refuse_anonymous(&anonymous, policy::Action::SendMessage, "user-2")
            .await;
    }
    let rows: Vec<_> = b
        .snapshot()
        .security_logs
        .into_values()
        .filter(|e| e.event_type == EventType::AdminActionDenied && e.actor_id.is_none())
        .collect();
    assert_eq!(rows.len() as u64, REFUSAL_ROWS_PER_MINUTE);
    assert!(rows
        .iter()
        .any(|e| e.event_id.starts_with("refusals#ip:198.51.100.7#")
            && e.fields.get("refusals").map(String::as_str) == Some("30")));
}

#[tokio::test]
async fn deletion_and_message_events_are_kept_for_ever() {
    let b = seeded(1);
    b.messaging(MessagingSettings::default())
        .send(&meta("admin-1"), input())
        .await
        .unwrap();
    b.deletion(DeletionSettings::default())
        .delete(
            &meta("admin-1"),
            &UserId::parse("user-1").unwrap(),
            false,
            tokio::time::Instant::now() + std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let st = b.snapshot();
    let kept: Vec<_> = st
        .security_logs
        .values()
        .filter(|e| e.event_type != EventType::AdminActionDenied)
        .collect();
    assert_eq!(kept.len(), 3, "sent, deleted, completed");
    assert!(kept.iter().all(|e| e.expires_at.is_none()));
}

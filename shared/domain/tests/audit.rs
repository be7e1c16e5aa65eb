//! The audit trail for admins on in-memory adapters: the log read newest first through its
//! filters and pages, the erasure lookup by address hash (audited, the address never kept),
//! and the suppression list before a send.

mod common;

use common::*;
use domain::audit::AuditError;
use domain::cursor::AuditCursor;
use domain::deletion::{DeleteOutcome, DeletionSettings};
use domain::memory::InMemoryBackend;
use domain::messaging::{MessagingSettings, SendError, SendInput, SendOptions};
use domain::model::{EventType, RequestMeta, SecurityEvent};
use domain::ports::{AuditQuery, SecurityLog, SuppressionReason};
use domain::types::{EmailAddress, MessageBody, Subject, UserId};
use policy::Denial;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn event(id: &str, kind: EventType, actor: &str, target: &str, at: &str) -> SecurityEvent {
    SecurityEvent::new(id.into(), kind, target, &meta(actor), at)
}

/// 30 rows over three actors, two targets and every type; five share one millisecond, so a
/// page boundary falls inside a group of equal `created_at`.
async fn logged() -> Arc<InMemoryBackend> {
    let b = seeded(0);
    let kinds = EventType::ALL;
    for i in 0..30 {
        let at = if (10..15).contains(&i) {
            "2026-11-20T10:00:00.000Z".to_owned()
        } else {
            format!("2026-11-{:02}T10:00:00.000Z", i / 2 + 1)
        };
        let actor = ["admin-1", "admin-2", "owner-1"][i % 3];
        let target = ["user-1", "user-2"][i % 2];
        b.append(&event(
            &format!("e-{i:02}"),
            kinds[i % kinds.len()],
            actor,
            target,
            &at,
        ))
        .await
        .unwrap();
    }
    b
}

async fn read_all(b: &Arc<InMemoryBackend>, mut query: AuditQuery) -> Vec<SecurityEvent> {
    let log = b.audit_log();
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = log.list(&meta("admin-1"), &query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        out.extend(page.items);
        match page.next {
            None => return out,
            Some(next) => query.after = Some(AuditCursor::parse(&next.to_string()).unwrap()),
        }
    }
    panic!("the pages never end");
}

fn is_newest_first(rows: &[SecurityEvent]) -> bool {
    rows.windows(2)
        .all(|w| (&w[0].created_at, &w[0].event_id) > (&w[1].created_at, &w[1].event_id))
}

#[tokio::test]
async fn the_log_is_read_newest_first_in_pages_that_miss_and_repeat_nothing() {
    let b = logged().await;
    let all = read_all(
        &b,
        AuditQuery {
            limit: 4,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 30);
    assert!(is_newest_first(&all));
    let ids: BTreeSet<&str> = all.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 30, "a row came twice");
}

#[tokio::test]
async fn every_filter_and_their_combinations_narrow_the_log() {
    let b = logged().await;
    for (target, actor, kind) in [
        (Some("user-1"), None, None),
        (None, Some("admin-2"), None),
        (None, None, Some(EventType::AdminActionDenied)),
        (Some("user-2"), Some("owner-1"), None),
        (Some("user-1"), None, Some(EventType::AdminSentUserMessage)),
        (None, Some("admin-1"), Some(EventType::AdminDeletedUser)),
    ] {
        let query = AuditQuery {
            target: target.map(str::to_owned),
            actor: actor.map(str::to_owned),
            event_type: kind,
            limit: 3,
            after: None,
        };
        let rows = read_all(&b, query.clone()).await;
        let expected = b
            .snapshot()
            .security_logs
            .values()
            .filter(|e| query.matches(e))
            .count();
        assert!(expected > 0, "{query:?} matches nothing: the test proves nothing");
        assert!(expected < 30, "{query:?} filters nothing");
        assert_eq!(rows.len(), expected, "{query:?}");
        assert!(rows.iter().all(|e| query.matches(e)), "{query:?}");
        assert!(is_newest_first(&rows));
    }
}

#[tokio::test]
async fn only_admins_and_owners_read_the_log_and_a_refusal_is_audited() {
    let b = logged().await;
    b.put_profile(profile("plain-1", "user", Some("plain@example.com")));
    let log = b.audit_log();
    let query = AuditQuery {
        limit: 10,
        ..Default::default()
    };
    let err = log.list(&meta("plain-1"), &query).await.unwrap_err();
    assert!(
        matches!(err, AuditError::Denied(Denial::ForbiddenRole)),
        "{err:?}"
    );
    let err = log.list(&meta("nobody"), &query).await.unwrap_err();
    assert!(
        matches!(err, AuditError::Denied(Denial::Unauthenticated)),
        "{err:?}"
    );
    let refusals: Vec<_> = b
        .snapshot()
        .security_logs
        .into_values()
        .filter(|e| {
            e.event_type == EventType::AdminActionDenied
                && e.fields.get("action").map(String::as_str) == Some("read_audit")
        })
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(log.list(&meta("owner-1"), &query).await.is_ok());
}

fn address_nowhere(b: &InMemoryBackend, address: &str) {
    let st = b.snapshot();
    let text = format!("{:?}{:?}", st.security_logs, st.jobs).to_lowercase();
    assert!(!text.contains(&address.to_lowercase()), "the address is kept");
}

#[tokio::test]
async fn an_erased_address_is_found_by_its_hash_and_the_lookup_is_audited_with_the_hash_only() {
    let b = seeded(6);
    let out = b
        .deletion(DeletionSettings::default())
        .delete(
            &meta("admin-1"),
            &UserId::parse("user-1").unwrap(),
            false,
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    let DeleteOutcome::Completed(job) = out else {
        panic!("expected a completed deletion, got {out:?}")
    };
    let log = b.audit_log();
    // Stored as "Target.User@Example.com": looked up in another case, with spaces around.
    let asked = EmailAddress::parse("  target.user@EXAMPLE.com ").unwrap();
    let found = log.erasures(&meta("owner-1"), &asked).await.unwrap();
    assert_eq!(found.email_sha256, asked.sha256_hex());
    assert_eq!(found.erasures.len(), 1, "{found:?}");
    let erasure = &found.erasures[0];
    assert_eq!(erasure.job_id, job.job_id);
    assert_eq!(erasure.user_id, "user-1");
    assert_eq!(erasure.actor_id.as_deref(), Some("admin-1"));
    assert_eq!(erasure.target_role.as_deref(), Some("user"));
    assert_eq!(erasure.status, "completed");
    assert_eq!(erasure.completed_at, job.completed_at);
    assert_eq!(erasure.deleted, job.counts());
    assert_eq!(erasure.deleted["transactions"], 6);
    let late = erasure
        .late_pass
        .as_ref()
        .expect("a completed job shows its late pass");
    assert_eq!(late.status, "pending");

    let none = log
        .erasures(
            &meta("owner-1"),
            &EmailAddress::parse("nobody@example.com").unwrap(),
        )
        .await
        .unwrap();
    assert!(none.erasures.is_empty());

    let lookups: Vec<SecurityEvent> = b
        .snapshot()
        .security_logs
        .into_values()
        .filter(|e| e.event_type == EventType::AdminLookedUpErasure)
        .collect();
    assert_eq!(lookups.len(), 2);
    for row in &lookups {
        assert_eq!(row.actor_id.as_deref(), Some("owner-1"));
        assert_eq!(row.target_id, "*");
        assert_eq!(row.fields.len(), 2, "{:?}", row.fields);
        assert_eq!(row.fields["email_sha256"].len(), 64);
    }
    let found_counts: BTreeSet<&str> = lookups.iter().map(|e| e.fields["found"].as_str()).collect();
    assert_eq!(found_counts, BTreeSet::from(["0", "1"]));
    address_nowhere(&b, "target.user@example.com");
    address_nowhere(&b, "nobody@example.com");
}

#[tokio::test]
async fn a_lookup_that_cannot_be_audited_is_not_answered() {
    let b = seeded(0);
    let log = b.audit_log();
    let asked = EmailAddress::parse("target.user@example.com").unwrap();
    // The audit row is a lookup's last store call: fail exactly that one.
    b.inject(&[]);
    log.erasures(&meta("admin-1"), &asked).await.unwrap();
    let calls = b.store_calls();
    let lookups = |b: &InMemoryBackend| {
        b.snapshot()
            .security_logs
            .values()
            .filter(|e| e.event_type == EventType::AdminLookedUpErasure)
            .count()
    };
    assert_eq!(lookups(&b), 1);
    b.fail_at(calls);
    let err = log.erasures(&meta("admin-1"), &asked).await.unwrap_err();
    assert!(matches!(err, AuditError::Dependency(_)), "{err:?}");
    assert_eq!(lookups(&b), 1, "the failed call was not the audit row's");
    let err = log.erasures(&meta("user-2"), &asked).await.unwrap_err();
    assert!(
        matches!(err, AuditError::Denied(Denial::ForbiddenRole)),
        "{err:?}"
    );
}

fn send_input() -> SendInput {
    SendInput {
        target: UserId::parse("user-1").unwrap(),
        subject: Subject::parse(None).unwrap(),
        body: MessageBody::parse("Hello").unwrap(),
        idempotency_key: None,
    }
}

fn admin() -> RequestMeta {
    meta("admin-1")
}

#[tokio::test]
async fn a_suppressed_address_is_refused_before_anything_is_sent_unless_sent_anyway() {
    let b = seeded(0);
    // Stored as "Target.User@Example.com"; the list holds it in lower case.
    b.suppress(
        "target.user@example.com",
        SuppressionReason::Complaint,
        "2026-10-02T09:15:00Z",
    );
    let m = b.messaging(MessagingSettings::default());
    let before = b.snapshot();
    let err = m.send(&admin(), send_input()).await.unwrap_err();
    let SendError::RecipientSuppressed { suppression } = &err else {
        panic!("expected recipient_suppressed, got {err:?}")
    };
    assert_eq!(suppression.reason, SuppressionReason::Complaint);
    assert_eq!(suppression.since, "2026-10-02T09:15:00Z");
    let after = b.snapshot();
    assert!(after.mail_calls.is_empty(), "nothing may reach the mailer");
    assert_eq!(after.messages, before.messages, "no message row");

    let answer = m
        .send_with(&admin(), send_input(), SendOptions { send_anyway: true })
        .await
        .unwrap();
    assert!(!answer.replayed);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn a_suppression_list_that_cannot_be_asked_sends_nothing_and_send_anyway_does_not_ask() {
    let b = seeded(0);
    b.set_suppression_list_down(true);
    let m = b.messaging(MessagingSettings::default());
    let err = m.send(&admin(), send_input()).await.unwrap_err();
    assert!(matches!(&err, SendError::Dependency(e) if e.retryable), "{err:?}");
    assert!(b.snapshot().mail_calls.is_empty());
    m.send_with(&admin(), send_input(), SendOptions { send_anyway: true })
        .await
        .unwrap();
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

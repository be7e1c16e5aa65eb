//! The delete routine on in-memory adapters: outcomes, crash injection at every store call,
//! concurrency, and the policy through the use case.

mod common;

use common::*;
use domain::cascade::CASCADE_PLAN;
use domain::deletion::{DeleteError, DeleteOutcome, DeletionSettings, Resumed};
use domain::memory::{InMemoryBackend, State};
use domain::model::EventType;
use domain::ports::ManualClock;
use domain::types::{EmailAddress, UserId};
use policy::Denial;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

fn events(st: &State, kind: EventType, target: &str) -> usize {
    st.security_logs
        .values()
        .filter(|e| e.event_type == kind && e.target_id == target)
        .count()
}

/// The final state every successful deletion of user-1 must reach.
fn assert_fully_deleted(b: &InMemoryBackend, per_table: usize) {
    let st = b.snapshot();
    for table in CASCADE_PLAN {
        assert_eq!(
            b.count_user_items(table, "user-1"),
            0,
            "{} still holds user-1 items",
            table.name
        );
        assert_eq!(
            b.count_user_items(table, "user-2"),
            1,
            "{}: a bystander's item was deleted",
            table.name
        );
    }
    let tomb = &st.profiles["user-1"];
    assert!(tomb.email.is_none(), "the tombstone still has an email");
    assert_eq!(tomb.display_name, "Deleted User");
    assert!(tomb.deleted_at.is_some());
    assert!(
        !st.auth_users.contains_key("user-1"),
        "the Cognito user is still there"
    );
    assert_eq!(
        events(&st, EventType::AdminDeletedUser, "user-1"),
        1,
        "admin_deleted_user must be written once"
    );
    assert_eq!(events(&st, EventType::AdminDeletionCompleted, "user-1"), 1);
    let job = &st.jobs["user-1"];
    assert!(job.is_completed());
    assert!(
        job.auth_username.is_none(),
        "the job keeps the Cognito username after completion"
    );
    for (table, n) in job.counts() {
        assert_eq!(n, per_table as u64, "count for {table}");
    }
    let audit = st
        .security_logs
        .values()
        .find(|e| e.event_type == EventType::AdminDeletedUser)
        .unwrap();
    let hash = EmailAddress::parse("  target.user@example.COM ")
        .unwrap()
        .sha256_hex();
    assert_eq!(audit.fields.get("target_email_sha256"), Some(&hash));
    assert_eq!(audit.fields.get("target_role").map(String::as_str), Some("user"));
    assert_eq!(audit.fields.get("job_id"), Some(&job.job_id));
    assert_eq!(audit.actor_id.as_deref(), Some("admin-1"));
}

#[tokio::test]
async fn an_admin_deletes_a_user_and_every_item_goes() {
    let b = seeded(40);
    let d = b.deletion(DeletionSettings {
        page_size: 7,
        ..Default::default()
    });
    let out = d
        .delete(&meta("admin-1"), &uid("user-1"), false, far())
        .await
        .unwrap();
    let DeleteOutcome::Completed(job) = out else {
        panic!("expected completion, got {out:?}")
    };
    assert_eq!(job.counts()["transactions"], 40);
    assert_fully_deleted(&b, 40);
    assert!(b
        .snapshot()
        .security_logs
        .values()
        .all(|e| !format!("{e:?}").contains("example.com")));
}

#[tokio::test]
async fn a_crash_at_any_store_call_is_finished_by_running_again() {
    let per_table = 9;
    let mut k = 1;
    loop {
        let b = seeded(per_table);
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let d = deletion_with_clock(&b, clock.clone(), 4);
        b.fail_at(k);
        let first = d.delete(&meta("admin-1"), &uid("user-1"), false, far()).await;
        let calls = b.store_calls();
        b.fail_at(0);
        if calls < k {
            // The routine finished before reaching call k: every crash point was covered.
            assert!(first.is_ok());
            assert_fully_deleted(&b, per_table);
            assert!(k > 40, "suspiciously few store calls: {k}");
            break;
        }
        // Run again until done, as a retrying client or the worker would (after the lease of
        // a runner that could not release it runs out).
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 10, "crash at call {k}: the routine does not converge");
            clock.advance(chrono::Duration::minutes(30));
            match d.delete(&meta("admin-1"), &uid("user-1"), false, far()).await {
                Ok(DeleteOutcome::Completed(_)) => break,
                // The tombstone exists and the job completed: a further DELETE is 410.
                Err(DeleteError::Denied(Denial::UserDeleted)) => break,
                Ok(DeleteOutcome::InProgress(_)) => {
                    let r = d.resume("user-1", far()).await.unwrap();
                    if matches!(r, Resumed::Completed(_)) {
                        break;
                    }
                }
                Err(e) => panic!("crash at call {k}: unexpected {e:?}"),
            }
        }
        assert_fully_deleted(&b, per_table);
        k += 1;
    }
}

#[tokio::test]
async fn a_tiny_budget_answers_in_progress_and_the_worker_finishes() {
    let b = seeded(30);
    let d = b.deletion(DeletionSettings {
        page_size: 5,
        ..Default::default()
    });
    let out = d
        .delete(&meta("admin-1"), &uid("user-1"), false, Instant::now())
        .await
        .unwrap();
    assert!(matches!(out, DeleteOutcome::InProgress(_)), "{out:?}");
    let queued = b.drain_queue();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "user-1");
    // The worker runs with small budgets until it is done, re-enqueueing what is left.
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 1000);
        match d
            .resume("user-1", Instant::now() + Duration::from_millis(2))
            .await
            .unwrap()
        {
            Resumed::Completed(_) => break,
            Resumed::Continued(_) => assert_eq!(b.drain_queue().len(), 1),
            other => panic!("{other:?}"),
        }
    }
    assert_fully_deleted(&b, 30);
}

#[tokio::test]
async fn ten_concurrent_deletes_make_one_job_and_one_audit_event() {
    let b = seeded(20);
    let d = b.deletion(DeletionSettings {
        page_size: 3,
        ..Default::default()
    });
    let runs = (0..10).map(|_| {
        let d = d.clone();
        tokio::spawn(async move { d.delete(&meta("admin-1"), &uid("user-1"), false, far()).await })
    });
    let results = futures::future::join_all(runs).await;
    let mut completed = 0;
    for r in results {
        match r.unwrap() {
            Ok(DeleteOutcome::Completed(_)) => completed += 1,
            Ok(DeleteOutcome::InProgress(_)) | Err(DeleteError::Denied(Denial::UserDeleted)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    // Whoever did not finish it queued a continuation; the worker finds it done.
    for (user, _) in b.drain_queue() {
        let _ = d.resume(&user, far()).await.unwrap();
    }
    assert!(completed >= 1);
    let st = b.snapshot();
    assert_eq!(st.jobs.len(), 1);
    assert_fully_deleted(&b, 20);
}

#[tokio::test]
async fn a_second_delete_of_a_finished_deletion_is_user_deleted() {
    let b = seeded(1);
    let d = b.deletion(DeletionSettings::default());
    d.delete(&meta("admin-1"), &uid("user-1"), false, far())
        .await
        .unwrap();
    let again = d.delete(&meta("admin-1"), &uid("user-1"), false, far()).await;
    assert!(
        matches!(again, Err(DeleteError::Denied(Denial::UserDeleted))),
        "{again:?}"
    );
}

async fn assert_denied_and_nothing_changed(
    b: &Arc<InMemoryBackend>,
    caller: &str,
    target: &str,
    ack: bool,
    want: Denial,
) {
    let d = b.deletion(DeletionSettings::default());
    let before = b.snapshot();
    let out = d.delete(&meta(caller), &uid(target), ack, far()).await;
    match out {
        Err(DeleteError::Denied(got)) => assert_eq!(got, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
    let after = b.snapshot();
    assert_eq!(before.profiles, after.profiles);
    assert_eq!(before.jobs, after.jobs);
    assert_eq!(before.tables, after.tables);
    assert_eq!(before.messages, after.messages);
    assert_eq!(before.auth_users, after.auth_users);
    assert!(after.queue.is_empty());
    let new: Vec<_> = after
        .security_logs
        .values()
        .filter(|e| !before.security_logs.contains_key(&e.event_id))
        .collect();
    assert_eq!(new.len(), 1, "one admin_action_denied event");
    assert_eq!(new[0].event_type, EventType::AdminActionDenied);
    assert_eq!(new[0].fields.get("reason").map(String::as_str), Some(want.code()));
    assert_eq!(
        new[0].fields.get("action").map(String::as_str),
        Some("delete_user")
    );
}

#[tokio::test]
async fn denied_deletions_change_nothing_and_are_audited() {
    let b = seeded(2);
    assert_denied_and_nothing_changed(&b, "admin-1", "admin-1", true, Denial::SelfDeletion).await;
    assert_denied_and_nothing_changed(&b, "admin-1", "admin-2", true, Denial::PrivilegedTarget).await;
    assert_denied_and_nothing_changed(&b, "admin-1", "owner-1", true, Denial::PrivilegedTarget).await;
    assert_denied_and_nothing_changed(&b, "owner-1", "admin-1", false, Denial::AcknowledgementRequired).await;
    assert_denied_and_nothing_changed(&b, "user-2", "user-1", false, Denial::ForbiddenRole).await;
    assert_denied_and_nothing_changed(&b, "nobody", "user-1", false, Denial::Unauthenticated).await;
    assert_denied_and_nothing_changed(&b, "admin-1", "ghost", false, Denial::UserNotFound).await;
}

#[tokio::test]
async fn an_owner_with_acknowledgement_deletes_an_admin_who_then_loses_access_at_once() {
    let b = seeded(0);
    let d = b.deletion(DeletionSettings::default());
    let out = d
        .delete(&meta("owner-1"), &uid("admin-2"), true, far())
        .await
        .unwrap();
    assert!(matches!(out, DeleteOutcome::Completed(_)));
    let again = d.delete(&meta("admin-2"), &uid("user-1"), false, far()).await;
    assert!(
        matches!(again, Err(DeleteError::Denied(Denial::Unauthenticated))),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_preview_counts_items_and_tells_what_the_policy_says() {
    let b = seeded(12);
    let d = b.deletion(DeletionSettings::default());
    let p = d.preview(&meta("owner-1"), &uid("admin-1")).await.unwrap();
    assert!(p.allowed && p.acknowledgement_required);
    let p = d.preview(&meta("admin-1"), &uid("user-1")).await.unwrap();
    assert!(p.allowed && !p.acknowledgement_required);
    assert!(p.tables.values().all(|n| n == "12"), "{:?}", p.tables);
    let p = d.preview(&meta("admin-1"), &uid("owner-1")).await.unwrap();
    assert!(!p.allowed);
    assert_eq!(p.denied_code, Some("privileged_target"));
}

#[tokio::test]
async fn a_deletion_waits_for_a_send_in_flight_before_the_tombstone() {
    let b = seeded(1);
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    // Another request holds a send lease on user-1 for the next 10 seconds.
    b.state()
        .send_leases
        .insert("user-1".into(), (1, clock.now_plus(10)));
    let d = deletion_with_clock(&b, clock.clone(), 10);
    // With a budget shorter than the lease, the routine pauses before anonymising.
    let out = d
        .delete(
            &meta("admin-1"),
            &uid("user-1"),
            false,
            Instant::now() + Duration::from_millis(50),
        )
        .await;
    assert!(matches!(out, Ok(DeleteOutcome::InProgress(_))), "{out:?}");
    assert!(
        b.snapshot().profiles["user-1"].email.is_some(),
        "anonymised while a send was in flight"
    );
    // Once the send is over, the worker finishes.
    b.state()
        .send_leases
        .insert("user-1".into(), (0, clock.now_plus(10)));
    assert!(matches!(
        d.resume("user-1", far()).await.unwrap(),
        Resumed::Completed(_)
    ));
    assert_fully_deleted(&b, 1);
}

trait NowPlus {
    fn now_plus(&self, secs: i64) -> chrono::DateTime<chrono::Utc>;
}

impl NowPlus for ManualClock {
    fn now_plus(&self, secs: i64) -> chrono::DateTime<chrono::Utc> {
        use domain::ports::Clock;
        self.now() + chrono::Duration::seconds(secs)
    }
}

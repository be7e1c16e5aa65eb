//! The delete routine on in-memory adapters: outcomes; an erasure that finishes by itself
//! (the queue, the sweep) after a crash, a failure or a lost answer at every store call, with
//! nobody sending the DELETE again; concurrency; the policy through the use case.

mod common;

use common::*;
use domain::cascade::{Lookup, CASCADE_PLAN};
use domain::deletion::{Continuation, Continued, DeleteError, DeleteOutcome, Deletion, DeletionSettings};
use domain::job::Step;
use domain::memory::{Fault, InMemoryBackend, IndexLag, State};
use domain::messaging::{MessagingSettings, SendError, SendInput};
use domain::model::EventType;
use domain::types::{EmailAddress, MessageBody, Subject, UserId};
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

/// Settings with this page size.
fn paged(page_size: usize) -> DeletionSettings {
    DeletionSettings {
        page_size,
        ..Default::default()
    }
}

/// admin-1 deletes user-1, with this deadline.
async fn delete_user_1(d: &Deletion, deadline: Instant) -> Result<DeleteOutcome, DeleteError> {
    d.delete(&meta("admin-1"), &uid("user-1"), false, deadline).await
}

fn events(st: &State, kind: EventType, target: &str) -> usize {
    st.security_logs
        .values()
        .filter(|e| e.event_type == kind && e.target_id == target)
        .count()
}

/// Simulated time allowed for any erasure to finish, late pass included.
const SIX_HOURS: Duration = Duration::from_secs(6 * 3600);

/// The final state every completed deletion of user-1 must reach.
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
    let d = b.deletion(paged(7));
    let out = delete_user_1(&d, far()).await.unwrap();
    let DeleteOutcome::Completed(job) = out else {
        panic!("expected completion, got {out:?}")
    };
    assert_eq!(job.counts()["transactions"], 40);
    assert_eq!(job.step, Step::LatePass, "completed, the late pass to come");
    assert!(job.late_pass_due_at.is_some() && job.locked_out_at.is_some());
    assert_fully_deleted(&b, 40);
    assert!(b
        .snapshot()
        .security_logs
        .values()
        .all(|e| !format!("{e:?}").contains("example.com")));
}

#[tokio::test]
async fn before_anything_destructive_a_continuation_is_queued_past_the_runners_lease() {
    let b = seeded(3);
    let d = b.deletion(DeletionSettings {
        lease_margin: Duration::from_secs(30),
        ..Default::default()
    });
    let out = delete_user_1(&d, Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert!(matches!(out, DeleteOutcome::Completed(_)));
    let st = b.snapshot();
    let net = &st.queue[0];
    let delay = (net.visible_at
        - st.jobs["user-1"]
            .created_at
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap())
    .to_std()
    .unwrap();
    assert!(
        delay >= Duration::from_secs(50),
        "the continuation is due only after the lease (20 s + 30 s): {delay:?}"
    );
    assert_eq!(net.continuation.job_id, st.jobs["user-1"].job_id);
}

/// What one fault scenario came to.
enum Faulted {
    /// The fault hit and the erasure still finished: the simulated time from the DELETE to
    /// completion.
    Finished(Duration),
    /// The fault stopped the DELETE before its job existed: nothing happened.
    BeforeTheJob,
    /// The whole erasure made fewer store calls than the fault's number.
    NotReached,
}

/// The scenario of every fault test: a DELETE with a 1 s budget (so the worker takes over
/// part of the job), the fault at store call `k`, then nobody does anything: only the queue
/// and the sweep run.
async fn fault_then_finish(k: u64, fault: Fault, per_table: usize) -> Faulted {
    let b = sim_backend(per_table, Duration::from_millis(20));
    let settings = paged(4);
    let mut sim = Sim::new(&b, settings);
    b.inject(&[(k, fault)]);
    let (admin, target) = (meta("admin-1"), uid("user-1"));
    let delete = sim
        .deletion
        .delete(&admin, &target, false, Instant::now() + Duration::from_secs(1));
    tokio::select! {
        _ = delete => {}
        _ = b.crashed() => {}
    }
    if !b.snapshot().jobs.contains_key("user-1") {
        // Nothing may have changed, and the admin got no 2xx.
        let st = b.snapshot();
        assert!(st.profiles["user-1"].email.is_some() && st.profiles["user-1"].deletion_job_id.is_none());
        assert_eq!(events(&st, EventType::AdminDeletedUser, "user-1"), 0);
        assert!(b.store_calls() >= k, "k={k}: no job, yet the fault never hit");
        return Faulted::BeforeTheJob;
    }
    let to_completed = sim.run_until(SIX_HOURS, job_completed("user-1")).await;
    assert_fully_deleted(&b, per_table);
    sim.run_until(SIX_HOURS, job_done("user-1")).await;
    let st = b.snapshot();
    assert!(
        st.jobs["user-1"].late_counts().values().all(|n| *n == 0),
        "nothing was written late"
    );
    assert!(
        sim.schedule.dead_letters.is_empty(),
        "k={k}: a continuation walked to the dead-letter queue"
    );
    assert_fully_deleted(&b, per_table);
    if b.store_calls() < k {
        return Faulted::NotReached;
    }
    Faulted::Finished(to_completed)
}

/// Runs the scenario with `fault` at every store call, 1, 2, ... until a run finishes
/// without reaching it. Returns the worst simulated time to completion.
async fn at_every_store_call(fault: Fault) -> Duration {
    let mut worst = Duration::ZERO;
    let mut k = 1;
    loop {
        match fault_then_finish(k, fault, 17).await {
            Faulted::Finished(took) => worst = worst.max(took),
            Faulted::BeforeTheJob => {}
            Faulted::NotReached => break,
        }
        k += 1;
    }
    assert!(k > 150, "suspiciously few store calls: {k}");
    eprintln!(
        "{fault:?} at each of the {} store calls of an erasure: every one finished; worst simulated time from the DELETE to completion {worst:?}",
        k - 1
    );
    worst
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_store_call_is_finished_by_the_queue_or_the_sweep_with_no_second_delete() {
    let worst = at_every_store_call(Fault::Crash).await;
    // A crashed runner is taken over when its lease (budget + 30 s margin) runs out, by the
    // continuation it queued first, or by the sweep for a crash before that continuation.
    assert!(worst < Duration::from_secs(20 * 60), "{worst:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_any_store_call_is_finished_by_the_queue_or_the_sweep_with_no_second_delete() {
    at_every_store_call(Fault::Fail).await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_at_any_store_call_is_finished_by_the_queue_or_the_sweep_with_no_second_delete() {
    at_every_store_call(Fault::FailAfter).await;
}

#[tokio::test(start_paused = true)]
async fn a_store_that_is_down_for_three_seconds_mid_cascade_does_not_stop_the_erasure() {
    let b = sim_backend(30, Duration::from_millis(20));
    let mut sim = Sim::new(&b, paged(4));
    // Down from 1.5 s after the start (mid-cascade, with 20 ms per call) for 3 s.
    let start = now_of(&b);
    b.set_outage(
        start + chrono::Duration::milliseconds(1500),
        start + chrono::Duration::milliseconds(4500),
    );
    let out = delete_user_1(&sim.deletion, Instant::now() + Duration::from_secs(20)).await;
    assert!(
        matches!(out, Err(DeleteError::Dependency(_))),
        "the DELETE met the outage: {out:?}"
    );
    assert_eq!(
        b.snapshot().jobs["user-1"].step,
        Step::Cascade,
        "stopped mid-cascade"
    );
    let took = sim.run_until(SIX_HOURS, job_completed("user-1")).await;
    assert_fully_deleted(&b, 30);
    eprintln!("3 s outage mid-cascade: completed {took:?} after the DELETE answered");
}

#[tokio::test(start_paused = true)]
async fn a_tiny_budget_answers_in_progress_and_the_worker_finishes() {
    let b = sim_backend(30, Duration::from_millis(5));
    let mut sim = Sim::new(&b, paged(5));
    sim.worker_budget = Duration::from_millis(200);
    let out = delete_user_1(&sim.deletion, Instant::now()).await.unwrap();
    assert!(matches!(out, DeleteOutcome::InProgress(_)), "{out:?}");
    sim.run_until(Duration::from_secs(3600), job_completed("user-1"))
        .await;
    assert_fully_deleted(&b, 30);
    assert!(
        sim.schedule.worker_runs > 2,
        "several worker runs: {}",
        sim.schedule.worker_runs
    );
    assert!(sim.schedule.dead_letters.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_busy_job_is_queued_again_for_when_its_lease_runs_out_never_failed() {
    let b = sim_backend(5, Duration::from_millis(5));
    let d = b.deletion(DeletionSettings::default());
    // A runner holds the job (it took the lease, then hung).
    b.inject(&[(12, Fault::Crash)]);
    let (admin, target) = (meta("admin-1"), uid("user-1"));
    tokio::select! {
        _ = d.delete(&admin, &target, false, Instant::now() + Duration::from_secs(10)) => panic!("expected the crash"),
        _ = b.crashed() => {}
    }
    b.inject(&[]);
    let job = b.snapshot().jobs["user-1"].clone();
    let lease_until = job.lease.as_ref().expect("the lease is held").until().unwrap();
    let before = b.snapshot().queue.len();
    let out = d.continue_job(&Continuation::of(&job), far()).await.unwrap();
    let Continued::Requeued { delay } = out else {
        panic!("{out:?}")
    };
    let left = (lease_until - now_of(&b)).to_std().unwrap();
    assert!(
        delay >= left && delay <= left + Duration::from_secs(2),
        "{delay:?} vs {left:?}"
    );
    assert_eq!(b.snapshot().queue.len(), before + 1);
}

#[tokio::test]
async fn a_continuation_of_a_done_job_or_of_no_job_is_acknowledged() {
    let b = seeded(1);
    let d = b.deletion(DeletionSettings::default());
    let stray = Continuation {
        user_id: "user-1".into(),
        job_id: "nope".into(),
        attempt: 0,
    };
    assert_eq!(d.continue_job(&stray, far()).await.unwrap(), Continued::Nothing);
    delete_user_1(&d, far()).await.unwrap();
    let job = b.snapshot().jobs["user-1"].clone();
    // Completed, late pass not due: nothing to do now.
    assert_eq!(
        d.continue_job(&Continuation::of(&job), far()).await.unwrap(),
        Continued::Nothing
    );
    b.state().jobs.get_mut("user-1").unwrap().step = Step::Done;
    assert_eq!(
        d.continue_job(&Continuation::of(&job), far()).await.unwrap(),
        Continued::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn the_late_pass_removes_rows_written_with_an_old_token_and_counts_them_late() {
    let b = sim_backend(4, Duration::from_millis(5));
    let mut sim = Sim::new(&b, DeletionSettings::default());
    delete_user_1(&sim.deletion, far()).await.unwrap();
    // After completion, a session and a transaction are written with a token issued before
    // the lock-out (still valid for up to an hour).
    for table in ["sessions", "transactions"] {
        let t = CASCADE_PLAN.iter().find(|t| t.name == table).unwrap();
        put_user_item(&b, t, "user-1", 900);
    }
    let job = b.snapshot().jobs["user-1"].clone();
    assert_eq!(job.step, Step::LatePass);
    let took = sim.run_until(SIX_HOURS, job_done("user-1")).await;
    let job = b.snapshot().jobs["user-1"].clone();
    assert_eq!(job.late_counts()["sessions"], 1);
    assert_eq!(job.late_counts()["transactions"], 1);
    assert_eq!(job.late_counts()["help_requests"], 0);
    assert_eq!(job.counts()["sessions"], 4, "the main counts are unchanged");
    for table in CASCADE_PLAN {
        assert_eq!(b.count_user_items(table, "user-1"), 0, "{}", table.name);
    }
    // Not before the longest token lifetime (1 h) after the lock-out, and soon after it
    // (the sweep runs every 5 minutes).
    assert!(
        took >= Duration::from_secs(3590) && took <= Duration::from_secs(3600 + 400),
        "{took:?}"
    );
    assert!(job.late_pass_done_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_table_found_through_an_index_is_queried_again_until_a_query_finds_nothing() {
    let b = sim_backend(0, Duration::from_millis(5));
    // Rows written just before the deletion are missing from the index for 200 ms, and
    // deleted rows still show in it for 600 ms.
    b.set_index_lag(IndexLag {
        new_rows_hidden_for: Duration::from_millis(200),
        deleted_rows_shown_for: Duration::from_millis(600),
    });
    for table in CASCADE_PLAN {
        for i in 0..9 {
            put_user_item(&b, table, "user-1", i);
        }
        put_user_item(&b, table, "user-2", 0);
    }
    let mut sim = Sim::new(&b, paged(4));
    delete_user_1(&sim.deletion, far()).await.unwrap();
    sim.run_until(SIX_HOURS, job_completed("user-1")).await;
    assert_fully_deleted(&b, 9);
    for t in CASCADE_PLAN
        .iter()
        .filter(|t| matches!(t.lookup, Lookup::Index { .. }))
    {
        if t.name != "admin_messages" {
            assert_eq!(b.count_user_items(t, "user-1"), 0);
        }
    }
}

/// The cascade saves the job when a page's keys become `pending`, and for nothing else: the
/// counts, a cursor, a table's end or an index's re-query go out with the next save. Each save
/// is one write of the job (its version), so the bookkeeping of an erase follows its pages.
#[tokio::test]
async fn the_cascade_saves_the_job_once_per_page_of_keys_and_for_nothing_else() {
    async fn saves(per_table: usize) -> u64 {
        let b = seeded(per_table);
        let out = delete_user_1(&b.deletion(paged(3)), far()).await.unwrap();
        let DeleteOutcome::Completed(job) = out else {
            panic!("expected completion, got {out:?}")
        };
        assert_fully_deleted(&b, per_table);
        job.version
    }
    // 7 items in pages of 3: three pages of keys per table, in every table of the plan.
    let pages = 3 * CASCADE_PLAN.len() as u64;
    assert_eq!(saves(7).await - saves(0).await, pages);
}

#[tokio::test]
async fn ten_concurrent_deletes_make_one_job_and_one_audit_event() {
    let b = seeded(20);
    let d = b.deletion(paged(3));
    let runs = (0..10).map(|_| {
        let d = d.clone();
        tokio::spawn(async move { delete_user_1(&d, far()).await })
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
    for c in b.drain_queue() {
        let _ = d.continue_job(&c, far()).await.unwrap();
    }
    assert!(completed >= 1);
    let st = b.snapshot();
    assert_eq!(st.jobs.len(), 1);
    assert_fully_deleted(&b, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_deleting_each_other_at_once_make_exactly_one_job() {
    for _ in 0..50 {
        let b = seeded(1);
        b.put_profile(profile("owner-2", "owner", Some("owner2@example.com")));
        let d = b.deletion(DeletionSettings::default());
        let (d1, d2) = (d.clone(), d.clone());
        let a = tokio::spawn(async move { d1.delete(&meta("owner-1"), &uid("owner-2"), true, far()).await });
        let c = tokio::spawn(async move { d2.delete(&meta("owner-2"), &uid("owner-1"), true, far()).await });
        let (a, c) = (a.await.unwrap(), c.await.unwrap());
        let st = b.snapshot();
        assert_eq!(st.jobs.len(), 1, "{a:?} / {c:?}");
        let refused = [&a, &c]
            .iter()
            .filter(|r| matches!(r, Err(DeleteError::Denied(Denial::Unauthenticated))))
            .count();
        assert_eq!(refused, 1, "{a:?} / {c:?}");
        let survivor = if st.jobs.contains_key("owner-2") {
            "owner-1"
        } else {
            "owner-2"
        };
        assert!(!st.profiles[survivor].is_deleted());
        assert!(
            st.profiles[survivor].email.is_some(),
            "one owner is left untouched"
        );
    }
}

#[tokio::test]
async fn a_caller_whose_deletion_was_just_created_is_deleted_for_every_route() {
    let b = seeded(50);
    let d = b.deletion(DeletionSettings::default());
    // Budget 0: the job exists, nothing of the routine has run yet (no tombstone).
    let out = d
        .delete(&meta("owner-1"), &uid("admin-2"), true, Instant::now())
        .await
        .unwrap();
    assert!(matches!(out, DeleteOutcome::InProgress(_)));
    assert!(b.snapshot().profiles["admin-2"].deleted_at.is_none());
    let m = b.messaging(MessagingSettings::default());
    let sent = m
        .send(
            &meta("admin-2"),
            SendInput {
                target: uid("user-1"),
                subject: Subject::parse(None).unwrap(),
                body: MessageBody::parse("hello").unwrap(),
                idempotency_key: None,
            },
        )
        .await;
    assert!(
        matches!(sent, Err(SendError::Denied(Denial::Unauthenticated))),
        "{sent:?}"
    );
    assert!(b.snapshot().sent_mail.is_empty(), "nothing sent");
    let again = d.delete(&meta("admin-2"), &uid("user-1"), false, far()).await;
    assert!(
        matches!(again, Err(DeleteError::Denied(Denial::Unauthenticated))),
        "{again:?}"
    );
    let list = b.directory().list(&meta("admin-2"), &Default::default()).await;
    assert!(list.is_err());
}

#[tokio::test]
async fn the_last_active_owner_cannot_be_deleted() {
    let b = seeded(0);
    // owner-1 is the only owner: an admin trying (with or without the checkbox) is refused.
    let d = b.deletion(DeletionSettings::default());
    for ack in [false, true] {
        let out = d.delete(&meta("admin-1"), &uid("owner-1"), ack, far()).await;
        assert!(
            matches!(out, Err(DeleteError::Denied(Denial::LastOwner))),
            "{out:?}"
        );
    }
    assert!(b.snapshot().jobs.is_empty());
    // With a second owner, that owner may delete the first.
    b.put_profile(profile("owner-2", "owner", Some("o2@example.com")));
    let out = d.delete(&meta("owner-2"), &uid("owner-1"), true, far()).await;
    assert!(matches!(out, Ok(DeleteOutcome::Completed(_))), "{out:?}");
}

#[tokio::test]
async fn the_cognito_username_is_resolved_by_sub_when_the_profile_has_none() {
    let b = seeded(1);
    // The pool's usernames are email addresses; a federated user's is provider_id.
    b.state().auth_users.remove("user-1");
    b.put_auth_user_with_sub("target.user@example.com", "user-1");
    b.put_auth_user_with_sub("Google_1093", "user-2");
    let d = b.deletion(DeletionSettings::default());
    delete_user_1(&d, far()).await.unwrap();
    let st = b.snapshot();
    assert!(
        !st.auth_users.contains_key("target.user@example.com"),
        "deleted by its real username"
    );
    assert!(st.auth_users.contains_key("Google_1093"));
    assert!(
        st.jobs["user-1"].auth_username.is_none(),
        "forgotten once completed"
    );
    d.delete(&meta("admin-1"), &uid("user-2"), false, far())
        .await
        .unwrap();
    assert!(!b.snapshot().auth_users.contains_key("Google_1093"));
}

#[tokio::test]
async fn a_username_not_found_at_lock_out_is_resolved_again_by_sub_not_taken_as_done() {
    let b = seeded(1);
    b.state().auth_users.remove("user-1");
    // The profile names a stale username; the real user has another one.
    b.state().profiles.get_mut("user-1").unwrap().auth_username = Some("old-name".into());
    b.put_auth_user_with_sub("new-name", "user-1");
    let d = b.deletion(DeletionSettings::default());
    delete_user_1(&d, far()).await.unwrap();
    assert!(
        !b.snapshot().auth_users.contains_key("new-name"),
        "the real user was deleted"
    );
}

#[tokio::test]
async fn a_user_without_any_cognito_account_is_still_erased() {
    let b = seeded(2);
    b.state().auth_users.clear();
    let d = b.deletion(DeletionSettings::default());
    let out = delete_user_1(&d, far()).await.unwrap();
    assert!(matches!(out, DeleteOutcome::Completed(_)));
    let st = b.snapshot();
    assert!(st.profiles["user-1"].is_tombstone());
    assert_eq!(st.jobs["user-1"].counts()["transactions"], 2);
}

#[tokio::test]
async fn a_second_delete_of_a_finished_deletion_is_user_deleted() {
    let b = seeded(1);
    let d = b.deletion(DeletionSettings::default());
    delete_user_1(&d, far()).await.unwrap();
    let again = delete_user_1(&d, far()).await;
    assert!(
        matches!(again, Err(DeleteError::Denied(Denial::UserDeleted))),
        "{again:?}"
    );
}

async fn assert_denied_and_nothing_changed(
    b: &Arc<InMemoryBackend>, caller: &str, target: &str, ack: bool, want: Denial,
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
    b.put_profile(profile("owner-2", "owner", Some("o2@example.com")));
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
    assert_eq!(p.denied_code, Some("last_owner"));
    b.put_profile(profile("owner-2", "owner", Some("o2@example.com")));
    let p = d.preview(&meta("admin-1"), &uid("owner-1")).await.unwrap();
    assert_eq!(p.denied_code, Some("privileged_target"));
}

#[tokio::test(start_paused = true)]
async fn a_deletion_waits_for_a_send_in_flight_before_the_tombstone() {
    let b = sim_backend(1, Duration::from_millis(1));
    let now = now_of(&b);
    // Another request holds a send lease on user-1 for the next 10 seconds.
    b.state().send_leases.insert(
        "user-1".into(),
        (
            ["m-in-flight".to_owned()].into(),
            now + chrono::Duration::seconds(10),
        ),
    );
    let mut sim = Sim::new(&b, DeletionSettings::default());
    // With a budget shorter than the lease, the routine pauses before anonymising.
    let out = delete_user_1(&sim.deletion, Instant::now() + Duration::from_millis(50)).await;
    assert!(matches!(out, Ok(DeleteOutcome::InProgress(_))), "{out:?}");
    assert!(
        b.snapshot().profiles["user-1"].email.is_some(),
        "anonymised while a send was in flight"
    );
    // The worker goes on once the lease has run out (the send never released it).
    let took = sim
        .run_until(Duration::from_secs(600), job_completed("user-1"))
        .await;
    assert_fully_deleted(&b, 1);
    assert!(took >= Duration::from_secs(9), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn the_sweep_queues_stalled_jobs_and_reports_those_over_an_hour_old() {
    let b = sim_backend(3, Duration::from_millis(1));
    let d = b.deletion(DeletionSettings::default());
    // A job created, then its runner died before queueing anything: the sixth store call is
    // the first enqueue (three reads, the Cognito lookup, the create).
    b.inject(&[(6, Fault::Crash)]);
    let (admin, target) = (meta("admin-1"), uid("user-1"));
    tokio::select! {
        _ = d.delete(&admin, &target, false, far()) => panic!("expected the crash"),
        _ = b.crashed() => {}
    }
    b.inject(&[]);
    assert!(b.snapshot().queue.is_empty(), "nothing queued yet");
    assert!(b.snapshot().jobs.contains_key("user-1"));
    let sweeper = b.sweeper(Default::default());
    assert!(sweeper.run().await.unwrap().queued.is_empty(), "not stalled yet");
    tokio::time::sleep(Duration::from_secs(150)).await;
    let report = sweeper.run().await.unwrap();
    assert_eq!(report.queued.len(), 1);
    assert!(report.overdue.is_empty());
    b.drain_queue();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let report = sweeper.run().await.unwrap();
    assert_eq!(report.overdue.len(), 1, "in progress for over an hour");
}

#[tokio::test(start_paused = true)]
async fn a_row_the_index_still_shows_after_its_deletion_is_not_counted() {
    use domain::ports::UserData;
    let b = sim_backend(0, Duration::from_millis(5));
    b.set_index_lag(IndexLag {
        new_rows_hidden_for: Duration::ZERO,
        deleted_rows_shown_for: Duration::from_secs(2),
    });
    let sessions = CASCADE_PLAN.iter().find(|t| t.name == "sessions").unwrap();
    for table in CASCADE_PLAN {
        for i in 0..9 {
            put_user_item(&b, table, "user-1", i);
        }
        put_user_item(&b, table, "user-2", 0);
    }
    // The app itself removed a session just before: the index still shows it for 2 s.
    let gone = domain::model::ItemKey::from([("session_id".to_owned(), "user-1-sessions-00003".to_owned())]);
    b.delete(sessions, &[gone]).await.unwrap();
    let mut sim = Sim::new(&b, DeletionSettings::default());
    delete_user_1(&sim.deletion, far()).await.unwrap();
    sim.run_until(SIX_HOURS, job_completed("user-1")).await;
    let job = b.snapshot().jobs["user-1"].clone();
    assert_eq!(job.counts()["sessions"], 8, "the deleted session was counted");
    assert_eq!(job.counts()["transactions"], 9);
    assert_eq!(b.count_user_items(sessions, "user-1"), 0);
}

#[tokio::test(start_paused = true)]
async fn throttling_slows_the_cascade_down_and_never_fails_it() {
    let b = sim_backend(40, Duration::from_millis(5));
    // Every other store call from the 15th on is told to slow down, a hundred times.
    let plan: Vec<(u64, Fault)> = (0..100).map(|i| (15 + 2 * i, Fault::Throttle)).collect();
    b.inject(&plan);
    let mut sim = Sim::new(&b, paged(5));
    let out = delete_user_1(&sim.deletion, Instant::now() + Duration::from_secs(20)).await;
    assert!(
        matches!(
            out,
            Ok(DeleteOutcome::Completed(_) | DeleteOutcome::InProgress(_))
        ),
        "throttling is no failure: {out:?}"
    );
    sim.run_until(SIX_HOURS, job_completed("user-1")).await;
    assert!(b.store_calls() > 200, "the throttles were reached");
    assert!(sim.schedule.dead_letters.is_empty());
    assert_fully_deleted(&b, 40);
}

//! Fault injection at the adapter boundary, through the real handlers: the in-memory backend
//! fails its k-th store call before it applies, fails it after it applied (the answer lost),
//! or never returns (the function killed there), for every k of a send and of a whole
//! erasure; and the mail provider refuses, throttles, cannot be reached, or never answers.
//!
//! The erasure runs in tokio's paused time with SQS's event source mapping and the sweep's
//! schedule around it (`reliability_tests::sim`): nobody sends the DELETE again, and every
//! job that was created finishes. A send never mails twice, whatever fails and however
//! often the client retries with its `Idempotency-Key`, and once SES's events and the
//! 15-minute sweep have run, every message row says what happened to its mail.

use domain::cascade::CASCADE_PLAN;
use domain::deletion::DeletionSettings;
use domain::job::Step;
use domain::memory::{Fault, InMemoryBackend, MailBehaviour, State};
use domain::model::{EventType, MessageStatus};
use domain::sweep::SweepSettings;
use reliability_tests::sim::Sim;
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SUBJECT: &str = "Your invoice for March";
const BODY: &str = "Hello Fiona, your invoice is attached as discussed";
const TARGET_EMAIL: &str = "Fiona.Fault@Fault-Example.com";
const ITEMS_PER_TABLE: usize = 23;
/// Every store call takes this long in simulated time, so that budgets and leases run out.
const STORE_LATENCY: Duration = Duration::from_millis(20);
const KINDS: [Fault; 3] = [Fault::Fail, Fault::FailAfter, Fault::Crash];

fn seeded() -> Arc<InMemoryBackend> {
    logs::capture();
    logs::forbid([TARGET_EMAIL, SUBJECT, BODY, "owen.owner@fault-example.com"]);
    let b = InMemoryBackend::new();
    b.put_profile(world::profile(
        "owner-1",
        "owner",
        Some("owen.owner@fault-example.com"),
    ));
    b.put_profile(world::profile(
        "admin-1",
        "admin",
        Some("adam.admin@fault-example.com"),
    ));
    b.put_profile(world::profile("user-1", "user", Some(TARGET_EMAIL)));
    b.put_profile(world::profile(
        "user-2",
        "user",
        Some("bystander@fault-example.com"),
    ));
    for id in ["owner-1", "admin-1", "user-1", "user-2"] {
        b.put_auth_user(id);
    }
    world::put_user_data(&b, "user-1", ITEMS_PER_TABLE);
    world::put_user_data(&b, "user-2", 3);
    b
}

/// The apps with a small cascade page (a deletion makes many store calls), and the
/// production budgets and lease margin.
fn apps(b: &Arc<InMemoryBackend>) -> Apps {
    let mut apps = Apps::in_memory(b);
    let settings = DeletionSettings {
        page_size: 7,
        ..DeletionSettings::default()
    };
    apps.delete.deletion = b.deletion(settings.clone());
    apps.worker.deletion = b.deletion(settings);
    apps
}

/// A seeded backend whose clock follows tokio's paused time, and its apps.
fn simulated() -> (Arc<InMemoryBackend>, Apps) {
    let b = seeded();
    Sim::backend_clock(&b);
    b.set_latency(STORE_LATENCY);
    let apps = apps(&b);
    (b, apps)
}

fn send_event(key: &str) -> http_api::event::ApiEvent {
    world::send(Some("admin-1"), "user-1")
        .header("idempotency-key", key)
        .json(&json!({ "subject": SUBJECT, "body": BODY }))
}

/// Calls the handler; `None` when the injected crash hit (the invocation died there).
async fn call_or_crash(
    b: &InMemoryBackend, apps: &Apps, f: Function, e: http_api::event::ApiEvent,
) -> Option<Answer> {
    tokio::select! {
        a = apps.call(f, e) => Some(a),
        _ = b.crashed() => None,
    }
}

fn mails_to_target(st: &State) -> usize {
    st.sent_mail.iter().filter(|m| m.to == TARGET_EMAIL).count()
}

/// Faults injected by this test binary (store faults that were hit, mail provider faults).
static INJECTED: AtomicU64 = AtomicU64::new(0);

/// Stops injecting; counts the fault if the run reached store call `k`.
fn disarm(b: &InMemoryBackend, k: u64) -> bool {
    let hit = b.store_calls() >= k;
    if hit {
        INJECTED.fetch_add(1, Ordering::SeqCst);
    }
    b.inject(&[]);
    hit
}

fn report(test: &str) {
    println!(
        "{test}: {} faults injected in this binary so far",
        INJECTED.load(Ordering::SeqCst)
    );
}

/// The SES configuration set's `Send` event for every mail that went out, then the sweep
/// once the 15 minutes have passed: afterwards every row of this test's sends says what
/// happened, checked against what the mail provider saw.
async fn settle_and_check_history(b: &Arc<InMemoryBackend>, what: &str) {
    let delivery = b.delivery();
    for mail in b.snapshot().sent_mail {
        let event = json!({
            "eventType": "Send",
            "mail": {
                "messageId": mail.provider_id,
                "timestamp": domain::model::timestamp(b.clock().now()),
                "tags": { "message_id": [mail.message_id] }
            },
            "send": {}
        });
        delivery
            .apply(&event.to_string())
            .await
            .unwrap_or_else(|e| panic!("{what}: the Send event failed: {e}"));
    }
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    b.sweeper(SweepSettings::default())
        .run()
        .await
        .unwrap_or_else(|e| panic!("{what}: the sweep failed: {e}"));
    let st = b.snapshot();
    for row in st.messages.values().filter(|m| m.sender_id == "admin-1") {
        let mailed = st.sent_mail.iter().any(|m| m.message_id == row.message_id);
        let called = st.mail_calls.contains(&row.message_id);
        match row.status {
            MessageStatus::Sent => assert!(mailed, "{what}: a row says sent but no mail went out"),
            MessageStatus::Failed => assert!(
                !mailed && !called,
                "{what}: a row says failed but the provider was called"
            ),
            // SES may or may not have taken it; here it did not (its Send event would have
            // settled the row), and nothing sends it again.
            MessageStatus::Unconfirmed => assert!(!mailed, "{what}: an unconfirmed row whose mail went out"),
            other => panic!("{what}: a row still {} after the sweep", other.as_str()),
        }
        if mailed {
            assert!(
                st.security_logs.contains_key(&format!("{}#sent", row.message_id)),
                "{what}: a mail went out without its admin_sent_user_message event"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_fault_at_any_call_of_a_send_never_mails_twice_and_the_history_tells_the_truth() {
    let calls = {
        let (b, apps) = simulated();
        b.inject(&[]);
        apps.call(Function::MessageUser, send_event("probe"))
            .await
            .assert_success(201);
        b.store_calls()
    };
    assert!(calls >= 4, "a send makes several store calls, saw {calls}");
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for fault in KINDS {
        for k in 1..=calls {
            let what = format!("send, {fault:?} at store call {k} of {calls}");
            let (b, apps) = simulated();
            b.inject(&[(k, fault)]);
            let first = call_or_crash(&b, &apps, Function::MessageUser, send_event("k-1")).await;
            disarm(&b, k);
            let st = b.snapshot();
            let first_summary = first.as_ref().map_or("crash".to_owned(), Answer::summary);
            if let Some(a) = &first {
                a.assert_well_formed();
                assert!(
                    matches!(a.status, 201 | 202 | 503),
                    "{what}: answered {}",
                    a.summary()
                );
                if a.status == 201 {
                    assert_eq!(mails_to_target(&st), 1, "{what}: a 201 without its mail");
                }
                if a.status == 202 {
                    assert_eq!(a.json()["status"], "pending", "{what}");
                    let id = a.json()["message_id"].as_str().unwrap_or_default();
                    assert!(st.messages.contains_key(id), "{what}: a 202 names no row");
                }
            }
            assert!(
                st.mail_calls.len() <= 1,
                "{what}: SES called {} times",
                st.mail_calls.len()
            );

            // The client retries with the same key once the first request's lease is over.
            tokio::time::sleep(Duration::from_secs(31)).await;
            let retry = apps.call(Function::MessageUser, send_event("k-1")).await;
            retry.assert_well_formed();
            let st = b.snapshot();
            assert!(
                st.mail_calls.len() <= 1,
                "{what}: the retry called SES again ({} calls)",
                st.mail_calls.len()
            );
            match retry.status {
                201 => assert_eq!(
                    mails_to_target(&st),
                    1,
                    "{what}: the retry's 201 without one mail"
                ),
                // Only when the first may have reached SES: it is never sent again.
                202 => assert!(
                    st.messages
                        .values()
                        .any(|m| m.sender_id == "admin-1" && m.attempt.is_some()),
                    "{what}: a 202 for a message SES was never asked to send"
                ),
                _ => panic!("{what}: the retry answered {}: {}", retry.summary(), retry.body),
            }
            *tally
                .entry(format!("{first_summary} then {}", retry.summary()))
                .or_default() += 1;
            settle_and_check_history(&b, &what).await;
        }
    }
    println!("send, {calls} store calls x {KINDS:?}: first answer then retry: {tally:?}");
    report("send");
    logs::assert_clean();
}

/// What became of one erasure with one fault.
struct Erased {
    answer: String,
    /// From the DELETE to the job completed (late pass not counted).
    to_completed: Duration,
    worker_runs: usize,
    sweeps: usize,
}

/// The DELETE with `fault` at store call `k` (0: none), then nothing but the queue and the
/// sweep. `None` when no job was created (the request failed before it; nothing changed).
async fn erase_with(k: u64, fault: Fault, calls: Option<&mut u64>) -> Option<Erased> {
    let (b, apps) = simulated();
    let what = format!("delete, {fault:?} at store call {k}");
    let before = b.snapshot();
    b.inject(&[(k, fault)]);
    let start = b.clock().now();
    let answer = call_or_crash(
        &b,
        &apps,
        Function::DeleteUser,
        world::delete(Some("admin-1"), "user-1"),
    )
    .await;
    if let Some(a) = &answer {
        a.assert_well_formed();
        assert!(
            matches!(a.status, 200 | 202 | 503),
            "{what}: answered {}",
            a.summary()
        );
    }
    if !b.snapshot().jobs.contains_key("user-1") {
        disarm(&b, k);
        // Nothing started: the admin was told 503 (or the request died), and no data moved.
        assert!(
            answer.as_ref().is_none_or(|a| a.status == 503),
            "{what}: no job but {:?}",
            answer.map(|a| a.summary())
        );
        let after = b.snapshot();
        assert_eq!(
            before.profiles, after.profiles,
            "{what}: no job, yet a profile changed"
        );
        assert_eq!(before.tables, after.tables, "{what}: no job, yet data went");
        assert_eq!(
            before.messages, after.messages,
            "{what}: no job, yet messages went"
        );
        return None;
    }
    let mut sim = Sim::new(&b, apps);
    let limit = Duration::from_secs(3 * 3600);
    sim.run_until(limit, |st| st.jobs["user-1"].is_completed()).await;
    let to_completed = (b.clock().now() - start).to_std().unwrap_or_default();
    sim.run_until(limit, |st| st.jobs["user-1"].step == Step::Done)
        .await;
    if let Some(calls) = calls {
        *calls = b.store_calls();
    }
    disarm(&b, k);

    let st = b.snapshot();
    let job = &st.jobs["user-1"];
    for t in CASCADE_PLAN {
        assert_eq!(b.count_user_items(t, "user-1"), 0, "{what}: {} left", t.name);
        assert_eq!(
            b.count_user_items(t, "user-2"),
            3,
            "{what}: a bystander lost data"
        );
        assert_eq!(
            job.counts()[t.name],
            ITEMS_PER_TABLE as u64,
            "{what}: {} counted {}",
            t.name,
            job.counts()[t.name]
        );
        assert_eq!(job.late_counts()[t.name], 0, "{what}: {} late", t.name);
    }
    let p = &st.profiles["user-1"];
    assert!(p.is_tombstone() && p.email.is_none(), "{what}: not a tombstone");
    assert!(
        !st.auth_users.contains_key("user-1"),
        "{what}: the Cognito user is left"
    );
    let events = |kind: EventType| {
        st.security_logs
            .values()
            .filter(|e| e.event_type == kind && e.target_id == "user-1")
            .count()
    };
    assert_eq!(
        events(EventType::AdminDeletedUser),
        1,
        "{what}: admin_deleted_user"
    );
    assert_eq!(
        events(EventType::AdminDeletionCompleted),
        1,
        "{what}: completion event"
    );
    assert!(
        sim.schedule.dead_letters.is_empty(),
        "{what}: a continuation walked to the dead-letter queue"
    );
    Some(Erased {
        answer: answer.map_or("crash".to_owned(), |a| a.summary()),
        to_completed,
        worker_runs: sim.schedule.worker_runs,
        sweeps: sim.schedule.sweeps,
    })
}

#[tokio::test(start_paused = true)]
async fn a_store_fault_at_any_call_of_an_erasure_is_finished_by_the_queue_or_the_sweep_with_no_second_delete()
{
    let mut calls = 0;
    let base = erase_with(0, Fault::Fail, Some(&mut calls))
        .await
        .expect("the erasure without faults");
    assert!(calls >= 50, "a paged erasure makes many store calls, saw {calls}");
    println!(
        "erasure without faults: {calls} store calls (DELETE, worker runs, sweeps), answered {}, completed \
         {:.2} s after the DELETE, {} worker runs",
        base.answer,
        base.to_completed.as_secs_f64(),
        base.worker_runs
    );
    for fault in KINDS {
        let mut finished = 0;
        let mut not_started = 0;
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        let (mut worst, mut worst_k) = (Duration::ZERO, 0);
        let mut by_sweep = 0;
        for k in 1..=calls {
            match erase_with(k, fault, None).await {
                None => not_started += 1,
                Some(e) => {
                    finished += 1;
                    *answers.entry(e.answer).or_default() += 1;
                    by_sweep += usize::from(e.sweeps > 0 && e.to_completed > Duration::from_secs(120));
                    if e.to_completed > worst {
                        (worst, worst_k) = (e.to_completed, k);
                    }
                }
            }
        }
        println!(
            "erasure, {fault:?} at each of {calls} store calls: {finished} finished with no second DELETE, \
             {not_started} failed before the job existed (nothing changed); DELETE answers {answers:?}; \
             worst time from the DELETE to completion {:.2} s (store call {worst_k}); {by_sweep} needed the sweep",
            worst.as_secs_f64()
        );
    }
    report("erasure");
    logs::assert_clean();
}

#[tokio::test]
async fn a_refusal_stands_when_any_store_call_fails_and_nothing_changes() {
    // Nobody deletes the only owner; a user may not send; nobody deletes themself.
    let cases = [
        (
            Function::DeleteUser,
            world::delete(Some("admin-1"), "owner-1").json(&json!({"acknowledge_privileged": true})),
            409,
        ),
        (
            Function::MessageUser,
            world::send(Some("user-2"), "user-1").json(&json!({"body": BODY})),
            403,
        ),
        (
            Function::DeleteUser,
            world::delete(Some("admin-1"), "admin-1"),
            403,
        ),
    ];
    for (function, event, status) in cases {
        let calls = {
            let b = seeded();
            b.inject(&[]);
            apps(&b).call(function, event.clone()).await;
            b.store_calls()
        };
        for fault in [Fault::Fail, Fault::FailAfter] {
            for k in 1..=calls + 1 {
                let b = seeded();
                let apps = apps(&b);
                let before = b.snapshot();
                b.inject(&[(k, fault)]);
                let answer = apps.call(function, event.clone()).await;
                disarm(&b, k);
                answer.assert_well_formed();
                assert!(
                    answer.status == status || answer.status == 503,
                    "{fault:?} at store call {k}: a refusal became {}",
                    answer.summary()
                );
                let after = b.snapshot();
                assert!(
                    world::differences(&before, &after).is_empty(),
                    "{fault:?} at store call {k}"
                );
                let events = world::new_events(&before, &after);
                assert!(
                    events
                        .iter()
                        .all(|e| e.event_type == EventType::AdminActionDenied),
                    "{fault:?} at store call {k}"
                );
            }
        }
    }
    report("refusals");
    logs::assert_clean();
}

#[tokio::test]
async fn reads_answer_503_when_a_store_call_fails() {
    let reads = [
        (Function::MessageUser, world::history(Some("admin-1"), "user-1")),
        (
            Function::DeleteUser,
            world::deletion_status(Some("admin-1"), "user-1"),
        ),
        (Function::ListUsers, world::list(Some("admin-1"))),
    ];
    for (function, event) in reads {
        let calls = {
            let b = seeded();
            b.inject(&[]);
            apps(&b).call(function, event.clone()).await;
            b.store_calls()
        };
        for k in 1..=calls {
            let b = seeded();
            let apps = apps(&b);
            b.fail_at(k);
            let answer = apps.call(function, event.clone()).await;
            disarm(&b, k);
            answer.assert_well_formed();
            if answer.status != 200 {
                answer.assert_problem(503, "dependency_unavailable");
            }
        }
    }
    report("reads");
}

/// A send the provider refused for good, or never received: the key is released and the
/// same key, once the provider takes mail again, sends it once.
async fn definite_no_then_retry(behaviour: MailBehaviour, status: u16, code: &str) {
    let b = seeded();
    let apps = apps(&b);
    b.set_mail_behaviour(behaviour.clone());
    INJECTED.fetch_add(1, Ordering::SeqCst);
    let key = format!("{behaviour:?}-1");
    let answer = apps.call(Function::MessageUser, send_event(&key)).await;
    let doc = answer.assert_problem(status, code).clone();
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 0, "{behaviour:?}: nothing went out");
    let mine: Vec<_> = st
        .messages
        .values()
        .filter(|m| m.sender_id == "admin-1")
        .collect();
    assert_eq!(mine.len(), 1, "{behaviour:?}: the attempt is recorded");
    assert_eq!(mine[0].status, MessageStatus::Failed, "{behaviour:?}");
    if status == 502 {
        assert_eq!(doc["message_id"], mine[0].message_id.as_str());
    }
    b.set_mail_behaviour(MailBehaviour::Accept);
    let again = apps.call(Function::MessageUser, send_event(&key)).await;
    again.assert_success(201);
    assert_eq!(
        again.header("idempotent-replayed"),
        None,
        "{behaviour:?}: a new send"
    );
    assert_eq!(mails_to_target(&b.snapshot()), 1, "{behaviour:?}: one mail");
    let third = apps.call(Function::MessageUser, send_event(&key)).await;
    assert_eq!(
        third.assert_success(201),
        again.json(),
        "{behaviour:?}: now replayed"
    );
    assert_eq!(third.header("idempotent-replayed"), Some("true"));
    assert_eq!(mails_to_target(&b.snapshot()), 1, "{behaviour:?}: still one mail");
}

#[tokio::test]
async fn a_rejected_mail_is_502_recorded_failed_and_the_key_may_be_used_again() {
    definite_no_then_retry(MailBehaviour::Reject, 502, "mail_rejected").await;
    report("rejected");
    logs::assert_clean();
}

#[tokio::test]
async fn a_throttled_mail_is_429_with_retry_after_and_the_key_may_be_used_again() {
    definite_no_then_retry(MailBehaviour::Throttle, 429, "rate_limited").await;
    report("throttled");
    logs::assert_clean();
}

#[tokio::test]
async fn a_mail_provider_that_cannot_be_reached_is_503_and_the_key_may_be_used_again() {
    definite_no_then_retry(MailBehaviour::NotSent, 503, "dependency_unavailable").await;
    report("not reached");
    logs::assert_clean();
}

/// SES's answer is lost: 202 pending, never sent again, "unconfirmed" after 15 minutes, and
/// an SES `Send` event (when the mail did go out) moves it to "sent".
async fn unknown_outcome(behaviour: MailBehaviour, went_out: bool) {
    let (b, apps) = simulated();
    b.set_mail_behaviour(behaviour.clone());
    INJECTED.fetch_add(1, Ordering::SeqCst);
    let what = format!("{behaviour:?}");
    let first = apps.call(Function::MessageUser, send_event("unknown-1")).await;
    let doc = first.assert_success(202).clone();
    assert_eq!(doc["status"], "pending", "{what}");
    let id = doc["message_id"].as_str().expect("the message id").to_owned();
    assert_eq!(
        b.snapshot().messages.get(&id).expect("the message row").status,
        MessageStatus::Pending,
        "{what}"
    );
    assert_eq!(mails_to_target(&b.snapshot()), usize::from(went_out), "{what}");

    // The same key, at once and after the lease: the same answer; SES is not called again.
    b.set_mail_behaviour(MailBehaviour::Accept);
    for wait in [Duration::ZERO, Duration::from_secs(31), Duration::from_secs(3600)] {
        tokio::time::sleep(wait).await;
        let again = apps.call(Function::MessageUser, send_event("unknown-1")).await;
        assert_eq!(again.assert_success(202), &doc, "{what}: after {wait:?}");
        assert_eq!(
            b.snapshot().mail_calls.len(),
            1,
            "{what}: SES called again after {wait:?}"
        );
    }
    let history = || async {
        let page = apps
            .call(Function::MessageUser, world::history(Some("admin-1"), "user-1"))
            .await;
        let items = page.assert_success(200)["items"].clone();
        let item = items
            .as_array()
            .and_then(|a| a.iter().find(|i| i["message_id"] == id.as_str()).cloned())
            .expect("the message in the history");
        item["status"].as_str().unwrap_or_default().to_owned()
    };
    // More than 15 minutes after it was written, the sweep marks it unconfirmed.
    b.sweeper(SweepSettings::default()).run().await.expect("a sweep");
    assert_eq!(history().await, "unconfirmed", "{what}");
    if went_out {
        let provider_id = b.snapshot().sent_mail[0].provider_id.clone();
        let event = json!({
            "eventType": "Send",
            "mail": { "messageId": provider_id, "tags": { "message_id": [id] } },
            "send": {}
        });
        b.delivery()
            .apply(&event.to_string())
            .await
            .expect("the Send event");
        assert_eq!(history().await, "sent", "{what}: the Send event settles it");
    }
    assert_eq!(mails_to_target(&b.snapshot()), usize::from(went_out), "{what}");
}

#[tokio::test(start_paused = true)]
async fn a_mail_whose_answer_was_lost_is_202_pending_never_sent_again_and_settled_by_its_send_event() {
    unknown_outcome(MailBehaviour::Unconfirmed, true).await;
    report("answer lost");
    logs::assert_clean();
}

#[tokio::test(start_paused = true)]
async fn a_mail_request_lost_on_the_way_is_202_pending_never_sent_again_and_shown_unconfirmed() {
    unknown_outcome(MailBehaviour::LostRequest, false).await;
    report("request lost");
    logs::assert_clean();
}

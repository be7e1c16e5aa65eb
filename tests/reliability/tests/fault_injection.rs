//! Fault injection at the adapter boundary: the in-memory backend fails its k-th store call,
//! for every k through a send, a delete, a refusal, a history and a list, through the real
//! handlers; and the mail provider rejects, throttles or is down.
//!
//! Whatever fails, the answer is a success or `503 dependency_unavailable` (never a panic,
//! never a 500 with details), and no record is lost: a mail that went out has its
//! `admin_messages` row, a message row is `pending`, `sent` or `failed`, and a deletion job
//! is finished by running it again.

use domain::cascade::CASCADE_PLAN;
use domain::deletion::DeletionSettings;
use domain::memory::{InMemoryBackend, MailBehaviour, State};
use domain::model::{EventType, MessageStatus};
use domain::ports::ManualClock;
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SUBJECT: &str = "Your invoice for March";
const BODY: &str = "Hello Fiona, your invoice is attached as discussed";
const TARGET_EMAIL: &str = "fiona.fault@fault-example.com";
const ITEMS_PER_TABLE: usize = 23;

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

/// The apps with a small cascade page, so that a deletion makes many store calls.
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

fn send_event(key: &str) -> http_api::event::ApiEvent {
    world::send(Some("admin-1"), "user-1")
        .header("idempotency-key", key)
        .json(&json!({ "subject": SUBJECT, "body": BODY }))
}

/// A failing store call is answered `503 dependency_unavailable` (with `Retry-After`), never
/// a 500 and never a detail about the cause.
fn assert_success_or_unavailable(answer: &Answer, success: &[u16], what: &str) {
    answer.assert_well_formed();
    if !success.contains(&answer.status) {
        answer.assert_problem(503, "dependency_unavailable");
    }
    assert!(
        success.contains(&answer.status) || answer.status == 503,
        "{what}: {}",
        answer.summary()
    );
}

/// No record is lost: every mail that went out has its message row, every row has a state.
fn assert_no_mail_without_a_row(st: &State, what: &str) {
    for mail in &st.sent_mail {
        let row = st
            .messages
            .get(&mail.message_id)
            .unwrap_or_else(|| panic!("{what}: a mail went out without an admin_messages row"));
        assert!(
            matches!(
                row.status,
                MessageStatus::Pending | MessageStatus::Sent | MessageStatus::Failed
            ),
            "{what}: row in state {:?}",
            row.status
        );
    }
    // Rows the seed wrote have no events; rows of this test are sent by admin-1.
    for row in st.messages.values().filter(|m| m.sender_id == "admin-1") {
        if row.status == MessageStatus::Sent {
            let event = format!("{}#sent", row.message_id);
            assert!(
                st.security_logs.contains_key(&event),
                "{what}: a sent message has no admin_sent_user_message event"
            );
        }
    }
}

fn mails_to_target(st: &State) -> usize {
    st.sent_mail.iter().filter(|m| m.to == TARGET_EMAIL).count()
}

/// Faults injected by this test binary: store failures that happened, mail provider failures.
static INJECTED: AtomicU64 = AtomicU64::new(0);

/// Stops injecting; counts the fault if the run reached store call `k`.
fn disarm(b: &InMemoryBackend, k: u64) {
    if b.store_calls() >= k {
        INJECTED.fetch_add(1, Ordering::SeqCst);
    }
    b.fail_at(0);
}

fn report(test: &str) {
    println!(
        "{test}: {} faults injected in this binary so far",
        INJECTED.load(Ordering::SeqCst)
    );
}

/// Runs `event` once with no fault and returns how many store calls it made.
async fn store_calls_of(function: Function, event: http_api::event::ApiEvent) -> u64 {
    let b = seeded();
    let apps = apps(&b);
    b.fail_at(0);
    apps.call(function, event).await;
    b.store_calls()
}

#[tokio::test]
async fn a_store_failure_at_any_call_of_a_send_is_answered_503_and_loses_no_record() {
    let calls = store_calls_of(Function::MessageUser, send_event("k-probe")).await;
    assert!(calls >= 4, "a send makes several store calls, saw {calls}");
    let mut injected = 0;
    for k in 1..=calls {
        let b = seeded();
        let apps = apps(&b);
        let what = format!("send, store call {k} of {calls} fails");
        b.fail_at(k);
        let answer = apps.call(Function::MessageUser, send_event("k-1")).await;
        injected += u64::from(b.store_calls() >= k);
        disarm(&b, k);
        assert_success_or_unavailable(&answer, &[201], &what);
        let st = b.snapshot();
        assert_no_mail_without_a_row(&st, &what);
        assert!(mails_to_target(&st) <= 1, "{what}: more than one mail");
        if answer.status == 201 {
            assert_eq!(mails_to_target(&st), 1, "{what}: a 201 without a mail");
        }
    }
    println!("send: {injected} store failures injected over {calls} store calls");
    report("in memory");
    logs::assert_clean();
}

#[tokio::test]
async fn after_any_single_store_failure_a_retry_with_the_same_key_converges_to_one_mail() {
    let calls = store_calls_of(Function::MessageUser, send_event("k-probe")).await;
    let mut failures = Vec::new();
    for k in 1..=calls {
        let b = seeded();
        let mut apps = apps(&b);
        // A clock the test moves, and a short wait for duplicates: a retry that finds the
        // key still held answers 409 with Retry-After; the client retries once the send's
        // lease is over.
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        apps.messaging.clock = clock.clone();
        apps.messaging.settings.duplicate_wait = Duration::from_millis(30);
        let lease = apps.messaging.settings.send_lease;
        b.fail_at(k);
        let first = apps.call(Function::MessageUser, send_event("k-2")).await;
        disarm(&b, k);
        let mut retry = apps.call(Function::MessageUser, send_event("k-2")).await;
        for _ in 0..3 {
            if retry.status != 409 {
                break;
            }
            retry.assert_problem(409, "idempotency_conflict");
            assert!(retry.header("retry-after").is_some());
            clock.advance(chrono::Duration::from_std(lease).unwrap() + chrono::Duration::seconds(1));
            retry = apps.call(Function::MessageUser, send_event("k-2")).await;
        }
        retry.assert_success(201);
        let st = b.snapshot();
        assert_no_mail_without_a_row(&st, &format!("retry after failure {k}"));
        let sent_rows = st
            .messages
            .values()
            .filter(|m| m.sender_id == "admin-1" && m.status == MessageStatus::Sent)
            .count();
        if mails_to_target(&st) != 1 {
            let pending = st
                .messages
                .values()
                .filter(|m| m.sender_id == "admin-1" && m.status == MessageStatus::Pending)
                .count();
            failures.push(format!(
                "store call {k} of {calls} failed (first answer {}); the retry with the same \
                 Idempotency-Key answered {} and the user got {} mails ({sent_rows} rows sent, \
                 {pending} left pending)",
                first.summary(),
                retry.summary(),
                mails_to_target(&st)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "DESIGN.md section 3: the same Idempotency-Key \"sends nothing again\". A retry after a \
         failed store call mailed the user twice (see the report: domain/src/messaging.rs \
         releases the key after the mail went out):\n{}",
        failures.join("\n")
    );
    report("in memory");
    logs::assert_clean();
}

#[tokio::test]
async fn a_store_failure_at_any_call_of_a_delete_is_finished_by_deleting_again() {
    let event = || world::delete(Some("admin-1"), "user-1");
    let calls = store_calls_of(Function::DeleteUser, event()).await;
    assert!(
        calls >= 20,
        "a paged deletion makes many store calls, saw {calls}"
    );
    for k in 1..=calls {
        let b = seeded();
        let apps = apps(&b);
        let what = format!("delete, store call {k} of {calls} fails");
        b.fail_at(k);
        let answer = apps.call(Function::DeleteUser, event()).await;
        disarm(&b, k);
        assert_success_or_unavailable(&answer, &[200, 202], &what);

        // Running it again finishes the job, with exact counts.
        let again = apps.call(Function::DeleteUser, event()).await;
        let doc = match again.status {
            200 => again.assert_success(200).clone(),
            // The first run holds no lease after a failure; a 410 means it had finished.
            410 if answer.status == 200 => json!({}),
            _ => panic!(
                "{what}: deleting again answered {}: {}",
                again.summary(),
                again.body
            ),
        };
        let st = b.snapshot();
        let job = st.jobs.get("user-1").unwrap_or_else(|| panic!("{what}: no job"));
        assert!(job.is_completed(), "{what}: job not completed");
        if let Some(deleted) = doc.get("deleted") {
            for t in CASCADE_PLAN {
                assert_eq!(
                    deleted[t.name], ITEMS_PER_TABLE as u64,
                    "{what}: {} counted {}",
                    t.name, deleted[t.name]
                );
            }
        }
        for t in CASCADE_PLAN {
            assert_eq!(b.count_user_items(t, "user-1"), 0, "{what}: {} left", t.name);
            assert_eq!(
                b.count_user_items(t, "user-2"),
                3,
                "{what}: a bystander lost data"
            );
        }
        assert!(st.profiles["user-1"].is_tombstone(), "{what}");
        assert!(!st.auth_users.contains_key("user-1"), "{what}");
        let audits = st
            .security_logs
            .values()
            .filter(|e| e.event_type == EventType::AdminDeletedUser && e.target_id == "user-1")
            .count();
        assert_eq!(audits, 1, "{what}: admin_deleted_user written {audits} times");
    }
    println!("delete: {calls} store failures injected, one per run");
    report("in memory");
    logs::assert_clean();
}

#[tokio::test]
async fn a_store_failure_in_a_delete_is_finished_by_the_worker_when_the_job_exists() {
    let event = || world::delete(Some("admin-1"), "user-1");
    let calls = store_calls_of(Function::DeleteUser, event()).await;
    let mut resumed = 0;
    for k in 1..=calls {
        let b = seeded();
        let apps = apps(&b);
        b.fail_at(k);
        let answer = apps.call(Function::DeleteUser, event()).await;
        disarm(&b, k);
        if answer.status != 503 || !b.snapshot().jobs.contains_key("user-1") {
            continue;
        }
        let record = json!({
            "messageId": format!("m-{k}"),
            "body": json!({"user_id": "user-1", "job_id": b.snapshot().jobs["user-1"].job_id}).to_string(),
            "eventSource": "aws:sqs",
        });
        let event: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_value(json!({ "Records": [record] })).expect("an SQS event");
        let out = deletion_worker::handle(
            &apps.worker,
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .expect("the worker answers");
        assert!(
            out.batch_item_failures.is_empty(),
            "store call {k}: the worker failed"
        );
        assert!(b.snapshot().jobs["user-1"].is_completed(), "store call {k}");
        for t in CASCADE_PLAN {
            assert_eq!(
                b.count_user_items(t, "user-1"),
                0,
                "store call {k}: {} left",
                t.name
            );
        }
        resumed += 1;
    }
    assert!(resumed > 10, "the worker resumed {resumed} interrupted jobs");
    report("worker");
}

#[tokio::test]
async fn a_refusal_stands_when_any_store_call_fails_and_nothing_changes() {
    // An admin may not delete an owner; a user may not send.
    let cases = [
        (
            Function::DeleteUser,
            world::delete(Some("admin-1"), "owner-1"),
            403,
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
        let calls = store_calls_of(function, event.clone()).await;
        for k in 1..=calls + 1 {
            let b = seeded();
            let apps = apps(&b);
            let before = b.snapshot();
            b.fail_at(k);
            let answer = apps.call(function, event.clone()).await;
            disarm(&b, k);
            answer.assert_well_formed();
            assert!(
                answer.status == status || answer.status == 503,
                "store call {k}: a refusal became {}",
                answer.summary()
            );
            let after = b.snapshot();
            assert!(world::differences(&before, &after).is_empty(), "store call {k}");
            let events = world::new_events(&before, &after);
            assert!(
                events
                    .iter()
                    .all(|e| e.event_type == EventType::AdminActionDenied),
                "store call {k}"
            );
        }
    }
    report("in memory");
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
        let calls = store_calls_of(function, event.clone()).await;
        for k in 1..=calls {
            let b = seeded();
            let apps = apps(&b);
            b.fail_at(k);
            let answer = apps.call(function, event.clone()).await;
            disarm(&b, k);
            assert_success_or_unavailable(&answer, &[200], &format!("{function:?} store call {k}"));
        }
    }
    report("reads");
}

#[tokio::test]
async fn a_rejected_mail_is_502_recorded_as_failed_and_replayed_without_a_second_attempt() {
    let b = seeded();
    let apps = apps(&b);
    b.set_mail_behaviour(MailBehaviour::Reject);
    INJECTED.fetch_add(1, Ordering::SeqCst);
    let answer = apps.call(Function::MessageUser, send_event("rej-1")).await;
    let doc = answer.assert_problem(502, "mail_rejected").clone();
    let message_id = doc["message_id"].as_str().expect("the rejected message's id");
    let st = b.snapshot();
    assert_eq!(st.messages[message_id].status, MessageStatus::Failed);
    assert_eq!(st.sent_mail.len(), 0);
    // The same key replays the rejection, even once the provider would accept.
    b.set_mail_behaviour(MailBehaviour::Accept);
    let again = apps.call(Function::MessageUser, send_event("rej-1")).await;
    again.assert_problem(502, "mail_rejected");
    assert_eq!(b.snapshot().sent_mail.len(), 0, "a replay sends nothing");
    report("in memory");
    logs::assert_clean();
}

#[tokio::test]
async fn a_throttled_mail_is_429_with_retry_after_and_the_key_may_be_retried() {
    let b = seeded();
    let apps = apps(&b);
    b.set_mail_behaviour(MailBehaviour::Throttle);
    INJECTED.fetch_add(1, Ordering::SeqCst);
    let answer = apps.call(Function::MessageUser, send_event("thr-1")).await;
    answer.assert_problem(429, "rate_limited");
    assert!(answer.header("retry-after").is_some());
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 0);
    assert!(st
        .messages
        .values()
        .filter(|m| m.sender_id == "admin-1")
        .all(|m| m.status == MessageStatus::Failed));
    b.set_mail_behaviour(MailBehaviour::Accept);
    apps.call(Function::MessageUser, send_event("thr-1"))
        .await
        .assert_success(201);
    assert_eq!(mails_to_target(&b.snapshot()), 1);
    report("in memory");
    logs::assert_clean();
}

#[tokio::test]
async fn an_unavailable_mail_provider_is_503_with_retry_after_and_the_row_is_failed() {
    let b = seeded();
    let apps = apps(&b);
    b.set_mail_behaviour(MailBehaviour::Unavailable);
    INJECTED.fetch_add(1, Ordering::SeqCst);
    let answer = apps.call(Function::MessageUser, send_event("down-1")).await;
    answer.assert_problem(503, "dependency_unavailable");
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 0);
    assert_eq!(st.messages.len(), ITEMS_PER_TABLE + 3 + 1);
    assert!(st
        .messages
        .values()
        .filter(|m| m.sender_id == "admin-1")
        .all(|m| m.status == MessageStatus::Failed));
    b.set_mail_behaviour(MailBehaviour::Accept);
    apps.call(Function::MessageUser, send_event("down-1"))
        .await
        .assert_success(201);
    assert_eq!(mails_to_target(&b.snapshot()), 1);
    report("in memory");
    logs::assert_clean();
}

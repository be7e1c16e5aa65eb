//! The deletion worker on SQS events, on the in-memory backend: partial batch failures,
//! poison messages, busy jobs, failing stores and the time budget.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use deletion_worker::WorkerApp;
use domain::deletion::{DeleteOutcome, DeletionSettings};
use domain::job::{JobStatus, Lease};
use domain::memory::{Fault, InMemoryBackend};
use domain::model::RequestMeta;
use domain::types::UserId;
use fixtures::profile;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    for (id, role) in [
        ("owner-1", "owner"),
        ("admin-2", "admin"),
        ("user-1", "user"),
        ("user-2", "user"),
    ] {
        b.put_profile(profile(id, role, Some(&format!("{id}@example.com"))));
        b.put_auth_user(id);
    }
    b
}

fn worker(b: &Arc<InMemoryBackend>, budget: Duration) -> WorkerApp {
    WorkerApp {
        deletion: b.deletion(DeletionSettings::default()),
        budget,
    }
}

/// Starts the deletion of `user` with no time at all: the job is created, paused and queued.
async fn paused_job(b: &Arc<InMemoryBackend>, user: &str) -> String {
    let meta = RequestMeta {
        caller: Some("owner-1".into()),
        request_id: "req-1".into(),
        ..RequestMeta::default()
    };
    let target = UserId::parse(user).unwrap();
    let outcome = b
        .deletion(DeletionSettings::default())
        .delete(&meta, &target, true, tokio::time::Instant::now())
        .await
        .expect("the deletion starts");
    match outcome {
        DeleteOutcome::InProgress(job) => job.job_id,
        other => panic!("expected a paused job, got {other:?}"),
    }
}

fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:teleperson-deletion-queue",
        "awsRegion": "eu-west-1"
    })
}

fn continuation(message_id: &str, user: &str, job: &str) -> Value {
    record(message_id, &json!({"user_id": user, "job_id": job}).to_string())
}

fn event(records: Vec<Value>) -> LambdaEvent<SqsEvent> {
    let payload: SqsEvent = serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    LambdaEvent::new(payload, Context::default())
}

/// The worker's answer to a batch of these records.
async fn run(w: &WorkerApp, records: Vec<Value>) -> SqsBatchResponse {
    deletion_worker::handle(w, event(records)).await.unwrap()
}

/// The worker's answer to the continuations `m-1` and `m-2` of two (user, job) pairs.
async fn continue_two(w: &WorkerApp, (u1, j1): (&str, &str), (u2, j2): (&str, &str)) -> SqsBatchResponse {
    run(w, vec![continuation("m-1", u1, j1), continuation("m-2", u2, j2)]).await
}

fn failures(r: &SqsBatchResponse) -> Vec<&str> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

fn completed(b: &InMemoryBackend, user: &str) -> bool {
    b.snapshot()
        .jobs
        .get(user)
        .is_some_and(|j| j.status() == JobStatus::Completed)
}

#[tokio::test]
async fn a_batch_continues_every_job_and_reports_no_failures() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    let j2 = paused_job(&b, "admin-2").await;
    b.drain_queue();
    let w = worker(&b, Duration::from_secs(60));
    let r = continue_two(&w, ("user-1", &j1), ("admin-2", &j2)).await;
    assert!(failures(&r).is_empty());
    assert!(completed(&b, "user-1") && completed(&b, "admin-2"));
    // What is left on the queue are the runs' own continuations: they find nothing to do.
    for c in b.drain_queue() {
        let out = w
            .deletion
            .continue_job(&c, tokio::time::Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out, domain::deletion::Continued::Nothing, "{c:?}");
    }
}

#[tokio::test]
async fn a_malformed_record_among_good_ones_is_dropped_and_the_others_complete() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    let j2 = paused_job(&b, "user-2").await;
    let w = worker(&b, Duration::from_secs(60));
    let r = run(
        &w,
        vec![
            continuation("m-1", "user-1", &j1),
            record("m-poison", "{not json"),
            record("m-wrong", r#"{"user":"user-2"}"#),
            continuation("m-2", "user-2", &j2),
        ],
    )
    .await;
    assert!(failures(&r).is_empty(), "a poison message is not retried");
    assert!(completed(&b, "user-1") && completed(&b, "user-2"));
}

#[tokio::test]
async fn a_busy_job_is_queued_again_for_when_its_lease_runs_out_and_its_record_is_not_failed() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    let j2 = paused_job(&b, "user-2").await;
    let in_two_minutes = chrono::Utc::now() + chrono::Duration::seconds(120);
    {
        let mut st = b.state();
        let job = st.jobs.get_mut("user-2").unwrap();
        job.lease = Some(Lease {
            owner: "another-runner".into(),
            until: domain::model::timestamp(in_two_minutes),
        });
    }
    b.drain_queue();
    let w = worker(&b, Duration::from_secs(60));
    let r = continue_two(&w, ("user-1", &j1), ("user-2", &j2)).await;
    assert!(
        failures(&r).is_empty(),
        "a busy job never walks to the dead-letter queue"
    );
    assert!(completed(&b, "user-1"));
    assert!(!completed(&b, "user-2"));
    let again: Vec<_> = b
        .snapshot()
        .queue
        .into_iter()
        .filter(|m| m.continuation.user_id == "user-2")
        .collect();
    assert_eq!(again.len(), 1);
    let due = (again[0].visible_at - in_two_minutes).num_milliseconds();
    assert!(
        (0..=2_000).contains(&due),
        "due when the lease runs out: {due} ms after it"
    );
}

#[tokio::test]
async fn a_failing_store_continues_after_a_backoff_without_failing_the_record() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    b.drain_queue();
    let w = worker(&b, Duration::from_secs(60));
    b.fail_at(1);
    let r = run(&w, vec![continuation("m-1", "user-1", &j1)]).await;
    assert!(failures(&r).is_empty());
    let queued = b.drain_queue();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attempt, 1, "the backoff grows with the failures");
    let r = run(
        &w,
        vec![record("m-2", &serde_json::to_string(&queued[0]).unwrap())],
    )
    .await;
    assert!(failures(&r).is_empty());
    assert!(completed(&b, "user-1"));
}

#[tokio::test]
async fn a_record_whose_continuation_cannot_be_queued_again_is_reported_for_retry() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    let w = worker(&b, Duration::from_secs(60));
    // The job cannot be read, and the queue is down too.
    b.inject(&[(1, Fault::Fail), (2, Fault::Fail)]);
    let r = run(&w, vec![continuation("m-1", "user-1", &j1)]).await;
    assert_eq!(failures(&r), ["m-1"]);
}

#[tokio::test]
async fn a_stray_message_without_a_job_is_done() {
    let b = backend();
    let w = worker(&b, Duration::from_secs(60));
    let r = run(&w, vec![continuation("m-1", "user-1", "no-such-job")]).await;
    assert!(failures(&r).is_empty());
    assert!(b.snapshot().jobs.is_empty());
}

#[tokio::test]
async fn out_of_budget_the_job_is_requeued_not_retried() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    b.drain_queue();
    let w = worker(&b, Duration::ZERO);
    let r = run(&w, vec![continuation("m-1", "user-1", &j1)]).await;
    assert!(failures(&r).is_empty());
    // This run's own continuation (due after its lease) and the one of its pause (now).
    let queued = b.drain_queue();
    assert_eq!(queued.len(), 2);
    assert!(queued.iter().all(|c| c.user_id == "user-1" && c.job_id == j1));
    assert!(!completed(&b, "user-1"));
}

#[tokio::test]
async fn a_failing_record_without_a_message_id_fails_the_whole_batch() {
    let b = backend();
    let j1 = paused_job(&b, "user-1").await;
    let w = worker(&b, Duration::from_secs(60));
    let mut rec = continuation("x", "user-1", &j1);
    rec.as_object_mut().unwrap().remove("messageId");
    b.inject(&[(1, Fault::Fail), (2, Fault::Fail)]);
    assert!(deletion_worker::handle(&w, event(vec![rec])).await.is_err());
}

#[test]
fn the_lambda_deadline_caps_the_budget_with_a_five_second_margin() {
    let budget = Duration::from_secs(60);
    assert_eq!(deletion_worker::budget(budget, &Context::default()), budget);
    let mut ctx = Context::default();
    let soon = SystemTime::now() + Duration::from_secs(4);
    ctx.deadline = soon.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert_eq!(deletion_worker::budget(budget, &ctx), Duration::ZERO);
    let later = SystemTime::now() + Duration::from_secs(900);
    ctx.deadline = later.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert_eq!(deletion_worker::budget(budget, &ctx), budget);
    // `cargo lambda watch` sends a fixed deadline in 1970: the configured budget applies.
    ctx.deadline = 600_000;
    assert_eq!(deletion_worker::budget(budget, &ctx), budget);
}

/// The sample SQS event kept beside the function: both jobs complete.
#[tokio::test]
async fn the_sample_event_completes_both_jobs() {
    let b = backend();
    paused_job(&b, "user-1").await;
    paused_job(&b, "admin-2").await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/sqs-continue-deletion.json");
    let payload: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let r = deletion_worker::handle(
        &worker(&b, Duration::from_secs(60)),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .unwrap();
    assert!(failures(&r).is_empty());
    assert!(completed(&b, "user-1") && completed(&b, "admin-2"));
}

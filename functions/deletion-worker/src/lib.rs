//! The SQS consumer that continues deletions the HTTP handler ran out of time for
//! (DESIGN.md section 5). Each record is `{"user_id", "job_id"}`; the job itself lives in
//! `deletion_jobs`, so a record only says "continue this user's job".
//!
//! The answer is a partial batch response: only the records that should be retried are
//! reported (`ReportBatchItemFailures`), so one failing record never replays the others.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::deletion::{Deletion, Resumed};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use std::time::{Duration, SystemTime};
use tracing::Instrument;

/// Kept free of the Lambda deadline so the batch response still gets out.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(5);

pub struct WorkerApp {
    pub deletion: Deletion,
    /// `WORKER_BUDGET_MS`: how long one invocation works before re-enqueueing what is left.
    pub budget: Duration,
}

/// The queue message, as the deletion queue adapter writes it. Unknown fields are ignored
/// so that a newer producer does not break an older worker.
#[derive(Debug, Deserialize)]
struct Continuation {
    user_id: String,
    job_id: String,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Finished with this record (the job completed, continues under a new message, or
    /// there is nothing to do).
    Done,
    /// Report it in `batchItemFailures`: SQS delivers it again after the visibility
    /// timeout, and after repeated failures moves it to the dead-letter queue.
    Retry,
}

/// The handler. Every record is processed, concurrently, against one shared deadline.
///
/// It returns `Err` (which makes Lambda retry the whole batch) only when a record that has
/// to be retried carries no `messageId`, which SQS always sets; every step of the routine is
/// idempotent, so replaying the others is safe.
pub async fn handle(
    app: &WorkerApp,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deadline = tokio::time::Instant::now() + budget(app.budget, &event.context);
    let records = &event.payload.records;
    let results = futures::future::join_all(records.iter().map(|r| handle_record(app, r, deadline))).await;

    let mut response = SqsBatchResponse::default();
    for (record, handled) in records.iter().zip(results) {
        if handled == Handled::Retry {
            match record.message_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => response.add_failure(id),
                None => return Err("a record without a messageId failed; retrying the whole batch".into()),
            }
        }
    }
    Ok(response)
}

/// `min(budget, Lambda time left - LAMBDA_MARGIN)`; the budget alone without a deadline.
pub fn budget(budget: Duration, ctx: &lambda_runtime::Context) -> Duration {
    if ctx.deadline == 0 {
        return budget;
    }
    match ctx.deadline().duration_since(SystemTime::now()) {
        Ok(left) => budget.min(left.saturating_sub(LAMBDA_MARGIN)),
        // A deadline already past when the handler starts never comes from Lambda
        // (`cargo lambda watch` sends a fixed one): the configured budget applies.
        Err(_) => budget,
    }
}

async fn handle_record(app: &WorkerApp, record: &SqsMessage, deadline: tokio::time::Instant) -> Handled {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let parsed = record.body.as_deref().map(serde_json::from_str::<Continuation>);
    let continuation = match parsed {
        Some(Ok(c)) => c,
        // A poison message is acknowledged, not retried: a body that does not parse now
        // never will, so retrying only delays it. Nothing is lost: the job it was meant to
        // continue is still `in_progress` in deletion_jobs, visible through
        // `GET /admin/users/{id}/deletion`, and repeating the DELETE joins and resumes it.
        // The error line (message id only, never the body) is what an alarm watches.
        _ => {
            tracing::error!(message_id, "malformed deletion continuation message; dropped");
            return Handled::Done;
        }
    };
    let span = tracing::info_span!(
        "continue_deletion",
        message_id,
        user_id = continuation.user_id.as_str(),
        job_id = continuation.job_id.as_str()
    );
    async {
        match app.deletion.resume(&continuation.user_id, deadline).await {
            Ok(Resumed::Completed(_)) => {
                tracing::info!("deletion completed");
                Handled::Done
            }
            Ok(Resumed::Continued(_)) => {
                tracing::info!("deletion continues in a new message");
                Handled::Done
            }
            Ok(Resumed::NoJob) => {
                tracing::warn!("no deletion job for this message; dropped");
                Handled::Done
            }
            Ok(Resumed::Busy) => {
                tracing::info!("another runner holds the job; retrying later");
                Handled::Retry
            }
            Err(err) => {
                tracing::error!(error = ?anyhow::Error::from(err), "deletion step failed; retrying later");
                Handled::Retry
            }
        }
    }
    .instrument(span)
    .await
}

//! The SQS consumer that continues deletions: every run of the routine queues a
//! continuation before it does anything, every failure queues one again, and the sweep
//! queues stalled jobs (`docs/DESIGN.md`, "The delete routine"). Each record is
//! `{"user_id", "job_id", "attempt"}`; the job itself lives in `deletion_jobs`, so a record
//! only says "continue this user's job".
//!
//! A record is acknowledged whatever became of the job, as long as any continuation still
//! needed was queued again (a busy job is re-queued for when its lease runs out, a failed
//! step after a backoff): a busy or failing job never walks to the dead-letter queue. Only a
//! record whose re-queue itself failed is reported in the partial batch response
//! (`ReportBatchItemFailures`), so SQS delivers it again.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::deletion::{Continuation, Continued, Deletion};
use lambda_runtime::LambdaEvent;
use std::time::Duration;
use tracing::Instrument;

/// Kept free of the Lambda deadline so the batch response still gets out: the routine stops
/// starting steps this long before it.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(5);
/// Every AWS call ends this long before the Lambda deadline, whatever it waits for.
pub const CALL_MARGIN: Duration = Duration::from_secs(2);

pub struct WorkerApp {
    pub deletion: Deletion,
    /// `WORKER_BUDGET_MS`: how long one invocation works before re-enqueueing what is left.
    pub budget: Duration,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Finished with this record: the job completed, or continues under a new message, or
    /// there is nothing to do.
    Done,
    /// Report it in `batchItemFailures`: its continuation could not be queued again, so SQS
    /// delivers this one again after the visibility timeout.
    Retry,
}

/// The handler. Every record is processed, concurrently, against one shared deadline.
///
/// It returns `Err` (which makes Lambda retry the whole batch) only when a record that has
/// to be retried carries no `messageId`, which SQS always sets; every step of the routine is
/// idempotent, so replaying the others is safe.
pub async fn handle(
    app: &WorkerApp, event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deadline = tokio::time::Instant::now() + budget(app.budget, &event.context);
    let records = &event.payload.records;
    let calls_end = aws_adapters::deadline::before_lambda_deadline(event.context.deadline, CALL_MARGIN);
    let results = aws_adapters::deadline::within_opt(
        calls_end,
        futures::future::join_all(records.iter().map(|r| handle_record(app, r, deadline))),
    )
    .await;

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
    aws_adapters::deadline::budget(budget, ctx.deadline, LAMBDA_MARGIN)
}

async fn handle_record(app: &WorkerApp, record: &SqsMessage, deadline: tokio::time::Instant) -> Handled {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let parsed = record.body.as_deref().map(serde_json::from_str::<Continuation>);
    let continuation = match parsed {
        Some(Ok(c)) => c,
        // A poison message is acknowledged, not retried: a body that does not parse now
        // never will. Nothing is lost: the job it was meant to continue is still open in
        // deletion_jobs, and the sweep queues it once it stalls. The error line (message id
        // only, never the body) is what an alarm watches.
        _ => {
            tracing::error!(message_id, "malformed deletion continuation message; dropped");
            return Handled::Done;
        }
    };
    let span = tracing::info_span!("continuation", message_id);
    async {
        match app.deletion.continue_job(&continuation, deadline).await {
            Ok(Continued::Completed) => tracing::info!("deletion completed"),
            Ok(Continued::Paused) => tracing::info!("deletion continues in a new message"),
            Ok(Continued::Requeued { .. }) => tracing::info!("another runner holds the job; queued again"),
            Ok(Continued::Nothing) => tracing::info!("nothing to do for this continuation"),
            Ok(Continued::Failed { retry_in }) => {
                tracing::warn!(retry_in_ms = retry_in.as_millis() as u64, "deletion step failed; continued after a backoff")
            }
            Err(err) => {
                tracing::error!(error = ?anyhow::Error::from(err), "the continuation could not be queued again; SQS delivers it again");
                return Handled::Retry;
            }
        }
        Handled::Done
    }
    .instrument(span)
    .await
}

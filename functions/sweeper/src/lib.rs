//! The scheduled sweep (EventBridge, every few minutes): the backstop that makes sure nothing
//! that must finish waits for a person. See [`domain::sweep`].
//!
//! The event itself carries nothing the sweep needs (it is EventBridge's scheduled-event
//! envelope); the answer is a summary of ids and counts. A failed sweep answers `Err`, so the
//! invocation counts as failed (Lambda's own metric and retries); the next schedule runs it
//! again in any case.

use domain::sweep::{SweepReport, Sweeper};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Every AWS call ends this long before the Lambda deadline.
pub const CALL_MARGIN: Duration = Duration::from_secs(2);

/// What one sweep did (ids only).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub queued: Vec<String>,
    pub overdue: Vec<String>,
    pub unconfirmed: Vec<String>,
    pub failed: Vec<String>,
}

impl From<SweepReport> for Summary {
    fn from(r: SweepReport) -> Self {
        Summary {
            queued: r.queued,
            overdue: r.overdue,
            unconfirmed: r.unconfirmed,
            failed: r.failed,
        }
    }
}

pub async fn handle(sweeper: &Sweeper, event: LambdaEvent<Value>) -> Result<Summary, lambda_runtime::Error> {
    let deadline = aws_adapters::deadline::before_lambda_deadline(event.context.deadline, CALL_MARGIN);
    match aws_adapters::deadline::within_opt(deadline, sweeper.run()).await {
        Ok(report) => Ok(report.into()),
        Err(err) => {
            tracing::error!(error = ?anyhow::Error::from(err), "sweep failed");
            Err("the sweep failed; see the error above".into())
        }
    }
}

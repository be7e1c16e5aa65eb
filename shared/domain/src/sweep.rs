//! The scheduled sweep (`docs/DESIGN.md`, "The sweep"): the backstop that makes sure nothing
//! that must finish waits for a person.
//!
//! - Deletion jobs that stalled (in progress, lease run out, not saved for a while) and
//!   completed jobs whose late pass is due get a continuation queued.
//! - A job in progress for over an hour is reported (an error log line an alarm watches).
//! - Messages still `pending` 15 minutes after they were written become `unconfirmed` (SES
//!   may have sent them) or `failed` (their request died before SES was called).
//!
//! Everything is found through sparse indexes, never a scan, and every action is idempotent:
//! a sweep that runs twice, or dies half-way, does no harm.

use crate::deletion::Continuation;
use crate::model::{chrono_duration, parse_timestamp, timestamp, MessageStatus};
use crate::ports::{Clock, DeletionJobs, DeletionQueue, DependencyError, MessageOutbox};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// Open jobs and pending messages handled per sweep at most.
    pub limit: usize,
    /// A message still pending this long after it was written becomes unconfirmed.
    pub unconfirmed_after: Duration,
    /// A job in progress this long is reported.
    pub overdue_after: Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            limit: 500,
            unconfirmed_after: Duration::from_secs(15 * 60),
            overdue_after: Duration::from_secs(3600),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Jobs a continuation was queued for.
    pub queued: Vec<String>,
    /// Jobs in progress for longer than `overdue_after` (job ids).
    pub overdue: Vec<String>,
    /// Messages turned `unconfirmed` (SES may have sent them).
    pub unconfirmed: Vec<String>,
    /// Messages turned `failed`: still pending, never handed to SES (their request died
    /// before the attempt).
    pub failed: Vec<String>,
}

#[derive(Clone)]
pub struct Sweeper {
    pub jobs: Arc<dyn DeletionJobs>,
    pub queue: Arc<dyn DeletionQueue>,
    pub outbox: Arc<dyn MessageOutbox>,
    pub clock: Arc<dyn Clock>,
    pub settings: SweepSettings,
}

impl Sweeper {
    /// One sweep: both halves run even when the other fails; the first failure is returned.
    pub async fn run(&self) -> Result<SweepReport, DependencyError> {
        let mut report = SweepReport::default();
        let jobs = self.sweep_jobs(&mut report).await;
        let messages = self.sweep_messages(&mut report).await;
        for id in &report.overdue {
            tracing::error!(job_id = %id, "deletion job in progress for over an hour");
        }
        tracing::info!(
            queued = report.queued.len(),
            overdue = report.overdue.len(),
            unconfirmed = report.unconfirmed.len(),
            failed = report.failed.len(),
            "sweep done"
        );
        jobs.and(messages).map(|()| report)
    }

    async fn sweep_jobs(&self, report: &mut SweepReport) -> Result<(), DependencyError> {
        let now = self.clock.now();
        let overdue_before = now - chrono_duration(self.settings.overdue_after);
        for job in self.jobs.open(self.settings.limit).await? {
            if !job.completed && parse_timestamp(&job.created_at).is_some_and(|t| t < overdue_before) {
                report.overdue.push(job.job_id.clone());
            }
            if parse_timestamp(&job.due_at).is_none_or(|due| due > now) {
                continue;
            }
            // The index is eventually consistent: the worker reads the job again and drops a
            // continuation that is not needed any more.
            let continuation = Continuation {
                user_id: job.user_id,
                job_id: job.job_id.clone(),
                attempt: 0,
            };
            self.queue.enqueue(&continuation, Duration::ZERO).await?;
            tracing::info!(job_id = %job.job_id, "sweep queued a continuation");
            report.queued.push(job.job_id);
        }
        Ok(())
    }

    async fn sweep_messages(&self, report: &mut SweepReport) -> Result<(), DependencyError> {
        let now = self.clock.now();
        let before = now - chrono_duration(self.settings.unconfirmed_after);
        let at = timestamp(now);
        for message_id in self.outbox.stale_pending(before, self.settings.limit).await? {
            match self.outbox.settle_stale(&message_id, &at).await? {
                Some(MessageStatus::Unconfirmed) => {
                    tracing::warn!(%message_id, "message still pending after 15 minutes: unconfirmed");
                    report.unconfirmed.push(message_id);
                }
                Some(_) => {
                    tracing::warn!(%message_id, "message still pending after 15 minutes, never sent: failed");
                    report.failed.push(message_id);
                }
                None => {}
            }
        }
        Ok(())
    }
}

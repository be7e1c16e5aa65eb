//! The deletion job: one per target user, the progress of the delete routine (see
//! `docs/DESIGN.md`, "The delete routine"). It is also the erasure receipt once completed.

use crate::model::{parse_timestamp, timestamp, ItemKey, RequestMeta};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long an in-progress job may sit still after its lease ran out before the sweep queues
/// it. The continuation every run queues arrives before this in the normal case; the sweep is
/// the backstop for continuations that were never queued or walked to the dead-letter queue.
pub const STALL_GRACE: Duration = Duration::from_secs(120);

/// The routine's steps, in order. The job stores the next step to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Write `admin_deleted_user` (exactly once per job).
    Audit,
    /// Disable the Cognito user and sign it out everywhere.
    LockOut,
    /// Anonymise the profile into the tombstone.
    Anonymise,
    /// Cascade every user-data table.
    Cascade,
    /// Delete the Cognito user.
    DeleteAuth,
    /// Mark the job completed (and write the completion event).
    Complete,
    /// Completed. Once the longest access-token lifetime has passed since the lock-out, one
    /// last pass over the user-data tables removes rows written with a token issued before it.
    LatePass,
    /// Nothing left.
    Done,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Audit => "audit",
            Step::LockOut => "lock_out",
            Step::Anonymise => "anonymise",
            Step::Cascade => "cascade",
            Step::DeleteAuth => "delete_auth",
            Step::Complete => "complete",
            Step::LatePass => "late_pass",
            Step::Done => "done",
        }
    }
}

/// `in_progress` until the routine has run step 7, `completed` after (the late pass runs on a
/// completed job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    InProgress,
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

/// Progress through one table of the cascade plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// Items deleted and counted so far.
    pub deleted: u64,
    /// Where the next query starts (`LastEvaluatedKey` of the last page read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<ItemKey>,
    /// Keys read but not yet confirmed deleted. Deleting them again is harmless; counting
    /// them only once they are gone keeps the counts exact across crashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<ItemKey>,
    /// The last page has been read (no `LastEvaluatedKey`).
    #[serde(default)]
    pub exhausted: bool,
    /// A table found through an index (eventually consistent) is queried again from the start
    /// until a query finds nothing; this is set while such re-queries are under way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verifying: bool,
    #[serde(default)]
    pub done: bool,
}

/// Which runner holds the job, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    /// RFC 3339.
    pub until: String,
}

impl Lease {
    pub fn until(&self) -> Option<DateTime<Utc>> {
        parse_timestamp(&self.until)
    }

    /// Held by someone, and not run out at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.until().is_some_and(|u| u > now)
    }
}

/// A row of `deletion_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    pub user_id: String,
    pub job_id: String,
    pub step: Step,
    pub actor_id: String,
    /// The target's role string when the job was created.
    pub target_role: String,
    /// SHA-256 of the normalised email, captured before anything changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_email_sha256: Option<String>,
    /// The Cognito username (the profile's `auth_username`, else resolved by `sub` when the
    /// job was created), kept only until the job completes. `None`: there is no Cognito user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When the account was locked out (step 3 done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_out_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// When the late pass is due (set on completion: lock-out + the longest token lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_pass_due_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_pass_done_at: Option<String>,
    /// The request that started the job (for the audit events).
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Per table of the cascade plan.
    #[serde(default)]
    pub progress: BTreeMap<String, TableProgress>,
    /// Per table, the late pass.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub late_progress: BTreeMap<String, TableProgress>,
    /// Optimistic concurrency: every save is conditional on the version it read.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

fn counts_of(progress: &BTreeMap<String, TableProgress>) -> BTreeMap<String, u64> {
    crate::cascade::CASCADE_PLAN
        .iter()
        .map(|t| (t.name.to_owned(), progress.get(t.name).map_or(0, |p| p.deleted)))
        .collect()
}

impl DeletionJob {
    /// A job just created, before any step ran: at the audit step, version 1, no progress and
    /// no lease; who asked comes from `meta` (its request id, source IP and user agent).
    pub fn started(
        user_id: &str, job_id: &str, actor_id: &str, target_role: &str, at: &str, meta: &RequestMeta,
    ) -> DeletionJob {
        DeletionJob {
            user_id: user_id.to_owned(),
            job_id: job_id.to_owned(),
            step: Step::Audit,
            actor_id: actor_id.to_owned(),
            target_role: target_role.to_owned(),
            target_email_sha256: None,
            auth_username: None,
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
            locked_out_at: None,
            completed_at: None,
            late_pass_due_at: None,
            late_pass_done_at: None,
            request_id: meta.request_id.clone(),
            source_ip: meta.source_ip.clone(),
            user_agent: meta.user_agent.clone(),
            progress: BTreeMap::new(),
            late_progress: BTreeMap::new(),
            version: 1,
            lease: None,
        }
    }

    /// Derived from the step: completed once step 7 has run.
    pub fn status(&self) -> JobStatus {
        if self.step >= Step::LatePass {
            JobStatus::Completed
        } else {
            JobStatus::InProgress
        }
    }

    pub fn is_completed(&self) -> bool {
        self.status() == JobStatus::Completed
    }

    /// Once completed: the late pass, as the API shows it.
    pub fn late_pass(&self) -> Option<LatePassView> {
        self.is_completed().then(|| LatePassView {
            status: if self.late_pass_done_at.is_some() {
                "done"
            } else {
                "pending"
            },
            due_at: self.late_pass_due_at.clone(),
            done_at: self.late_pass_done_at.clone(),
            late: self.late_counts(),
        })
    }

    /// Per-table counts of the items the routine deleted.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        counts_of(&self.progress)
    }

    /// Per-table counts of the late pass (zero until it ran).
    pub fn late_counts(&self) -> BTreeMap<String, u64> {
        counts_of(&self.late_progress)
    }

    /// The lease, if one is held and has not run out at `now`.
    pub fn live_lease(&self, now: DateTime<Utc>) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.is_live(now))
    }

    /// When the sweep should look at this job next (`None`: never again). An in-progress job
    /// is due `STALL_GRACE` after its lease ran out (or after its last save); a completed one
    /// when its late pass is due.
    pub fn sweep_due_at(&self) -> Option<String> {
        match self.step {
            Step::Done => None,
            Step::LatePass => self.late_pass_due_at.clone(),
            _ => {
                let last = self
                    .lease
                    .as_ref()
                    .and_then(Lease::until)
                    .into_iter()
                    .chain(parse_timestamp(&self.updated_at))
                    .max()?;
                let grace = chrono::Duration::from_std(STALL_GRACE).unwrap_or(chrono::Duration::MAX);
                Some(timestamp(last + grace))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(step: Step) -> DeletionJob {
        let meta = RequestMeta {
            request_id: "r".into(),
            ..RequestMeta::default()
        };
        DeletionJob {
            step,
            updated_at: "2026-01-01T00:00:10.000Z".into(),
            late_pass_due_at: Some("2026-01-01T01:00:00.000Z".into()),
            ..DeletionJob::started("u", "j", "a", "user", "2026-01-01T00:00:00.000Z", &meta)
        }
    }

    #[test]
    fn the_status_follows_the_step() {
        for (step, status) in [
            (Step::Audit, JobStatus::InProgress),
            (Step::Complete, JobStatus::InProgress),
            (Step::LatePass, JobStatus::Completed),
            (Step::Done, JobStatus::Completed),
        ] {
            assert_eq!(job(step).status(), status, "{step:?}");
        }
    }

    #[test]
    fn a_stalled_job_is_due_for_the_sweep_a_grace_after_its_lease_or_last_save() {
        let mut j = job(Step::Cascade);
        assert_eq!(j.sweep_due_at().as_deref(), Some("2026-01-01T00:02:10.000Z"));
        j.lease = Some(Lease {
            owner: "me".into(),
            until: "2026-01-01T00:05:00.000Z".into(),
        });
        assert_eq!(j.sweep_due_at().as_deref(), Some("2026-01-01T00:07:00.000Z"));
        assert_eq!(
            job(Step::LatePass).sweep_due_at().as_deref(),
            Some("2026-01-01T01:00:00.000Z")
        );
        assert_eq!(job(Step::Done).sweep_due_at(), None);
    }
}

/// The late pass of a completed job: when it is due, when it ran, what it found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LatePassView {
    /// `pending` or `done`.
    pub status: &'static str,
    pub due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
    /// Rows written with a token issued before the lock-out, removed by the late pass.
    pub late: BTreeMap<String, u64>,
}

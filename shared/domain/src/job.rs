//! The deletion job: one per target user, the progress of the delete routine.

use crate::model::ItemKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The routine's steps, in order (DESIGN.md section 5). The job stores the next step to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 2. Write `admin_deleted_user` (exactly once per job).
    Audit,
    /// 3. Disable the Cognito user and sign it out everywhere.
    LockOut,
    /// 4. Anonymise the profile into the tombstone.
    Anonymise,
    /// 5. Cascade every user-data table.
    Cascade,
    /// 6. Delete the Cognito user.
    DeleteAuth,
    /// 7. Mark the job completed (and write the erasure receipt event).
    Complete,
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
            Step::Done => "done",
        }
    }
}

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
    #[serde(default)]
    pub done: bool,
}

/// A row of `deletion_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    pub user_id: String,
    pub job_id: String,
    pub status: JobStatus,
    pub step: Step,
    pub actor_id: String,
    /// The target's role string when the job was created.
    pub target_role: String,
    /// SHA-256 of the normalised email, captured before anything changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_email_sha256: Option<String>,
    /// The Cognito username, kept only until the Cognito user is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The request that started the job (for the audit events).
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Per table of the cascade plan.
    #[serde(default)]
    pub progress: BTreeMap<String, TableProgress>,
    /// Optimistic concurrency: every save is conditional on the version it read.
    pub version: u64,
    /// Which runner holds the job, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
}

impl DeletionJob {
    /// Per-table counts of deleted items.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        crate::cascade::CASCADE_PLAN
            .iter()
            .map(|t| {
                (
                    t.name.to_owned(),
                    self.progress.get(t.name).map_or(0, |p| p.deleted),
                )
            })
            .collect()
    }

    pub fn is_completed(&self) -> bool {
        self.status == JobStatus::Completed
    }
}

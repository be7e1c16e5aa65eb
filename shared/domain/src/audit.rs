//! The audit trail for admins: `GET /admin/audit` (the log, filtered and paginated) and
//! `GET /admin/erasures` (was this address erased, when, by whom, how much).
//!
//! The erasure lookup never keeps the address: it arrives, is hashed (the audit hash: SHA-256
//! of the trimmed, lower-cased form) and dropped. The `admin_deleted_user` rows keep the same
//! hash, so the receipts are found through an index on it; the lookup itself is audited with
//! the hash only.

use crate::access::authorize_untargeted;
use crate::cursor::AuditCursor;
use crate::job::{JobStatus, LatePassView};
use crate::model::{timestamp, EventType, RequestMeta, SecurityEvent};
use crate::ports::*;
use crate::types::EmailAddress;
use policy::{Action, Denial};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most receipts one lookup returns (an address erased more often than this is a
/// question for the table itself).
pub const MAX_ERASURES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// One erasure of an address: its `admin_deleted_user` receipt and its job's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub job_id: String,
    pub user_id: String,
    pub actor_id: Option<String>,
    pub target_role: Option<String>,
    /// When the deletion was accepted (the receipt's `created_at`).
    pub requested_at: String,
    pub request_id: String,
    /// `in_progress` or `completed`.
    pub status: &'static str,
    pub completed_at: Option<String>,
    /// Rows erased so far, per table.
    pub deleted: BTreeMap<String, u64>,
    pub late_pass: Option<LatePassView>,
}

/// The answer to "was this address erased?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureLookup {
    /// The hash the address was looked up by (the address itself is never kept).
    pub email_sha256: String,
    /// Newest first; empty when none.
    pub erasures: Vec<Erasure>,
}

/// A page of the log and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub items: Vec<SecurityEvent>,
    pub next: Option<AuditCursor>,
}

#[derive(Clone)]
pub struct AuditLog {
    pub profiles: Arc<dyn Profiles>,
    pub log: Arc<dyn SecurityLog>,
    pub trail: Arc<dyn AuditTrail>,
    pub jobs: Arc<dyn DeletionJobs>,
    pub clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// A request without a caller (no `sub` claim): refused by the policy and audited.
    pub async fn refuse_anonymous(&self, meta: &RequestMeta) -> Denial {
        crate::access::refuse_anonymous(&*self.log, &*self.clock, meta, Action::ReadAudit, "*").await
    }

    async fn allow(&self, meta: &RequestMeta) -> Result<(), AuditError> {
        authorize_untargeted(&*self.profiles, &*self.log, &*self.clock, meta, Action::ReadAudit)
            .await?
            .map_err(AuditError::Denied)
    }

    /// The rows matching `query`, newest first. Reading the log is not itself audited.
    pub async fn list(&self, meta: &RequestMeta, query: &AuditQuery) -> Result<LogPage, AuditError> {
        self.allow(meta).await?;
        let mut query = query.clone();
        query.limit = query.limit.clamp(1, AuditQuery::MAX_LIMIT);
        let page = self.trail.list(&query).await?;
        let next = match (page.more, page.items.last()) {
            (true, Some(last)) => AuditCursor::after(&last.created_at, &last.event_id).ok(),
            _ => None,
        };
        Ok(LogPage {
            items: page.items,
            next,
        })
    }

    /// The erasures of `email`, found by its hash; the lookup is audited (hash only) before
    /// the answer is given.
    pub async fn erasures(
        &self, meta: &RequestMeta, email: &EmailAddress,
    ) -> Result<ErasureLookup, AuditError> {
        self.allow(meta).await?;
        let hash = email.sha256_hex();
        let receipts = self.trail.erasure_receipts(&hash, MAX_ERASURES).await?;
        let jobs =
            futures::future::try_join_all(receipts.iter().map(|receipt| self.jobs.get(&receipt.target_id)))
                .await?;
        let erasures: Vec<Erasure> = receipts
            .iter()
            .zip(jobs)
            .map(|(receipt, job)| {
                let job_id = receipt.fields.get("job_id").cloned().unwrap_or_default();
                // The job is the receipt's progress; a job of another id (never, with random
                // ids) is not this erasure's.
                let job = job.filter(|j| j.job_id == job_id);
                if job.is_none() {
                    tracing::warn!(job_id, user_id = %receipt.target_id, "an erasure receipt without its job");
                }
                Erasure {
                    user_id: receipt.target_id.clone(),
                    actor_id: receipt.actor_id.clone(),
                    target_role: receipt.fields.get("target_role").cloned(),
                    requested_at: receipt.created_at.clone(),
                    request_id: receipt.request_id.clone(),
                    status: job.as_ref().map_or(JobStatus::InProgress, |j| j.status()).as_str(),
                    completed_at: job.as_ref().and_then(|j| j.completed_at.clone()),
                    deleted: job.as_ref().map(|j| j.counts()).unwrap_or_default(),
                    late_pass: job.as_ref().and_then(|j| j.late_pass()),
                    job_id,
                }
            })
            .collect();
        let event = SecurityEvent::new(
            uuid::Uuid::new_v4().to_string(),
            EventType::AdminLookedUpErasure,
            "*",
            meta,
            &timestamp(self.clock.now()),
        )
        .with("email_sha256", hash.clone())
        .with("found", erasures.len().to_string());
        self.log.append(&event).await?;
        Ok(ErasureLookup {
            email_sha256: hash,
            erasures,
        })
    }
}

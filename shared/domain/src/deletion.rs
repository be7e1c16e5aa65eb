//! Delete a user: the step-by-step, resumable routine of DESIGN.md section 5.
//!
//! Every step is idempotent and the job is saved after every step and every page, so a
//! crash anywhere is finished by running the routine again (by a second request, or by the
//! deletion worker from the queue). One runner at a time holds the job's lease.

use crate::access::{audit_denial, load_caller, target_state};
use crate::cascade::{CascadeTable, CASCADE_PLAN};
use crate::job::{DeletionJob, JobStatus, Step, TableProgress};
use crate::messaging::chrono_duration;
use crate::model::{parse_timestamp, timestamp, EventType, RequestMeta, SecurityEvent};
use crate::ports::*;
use crate::types::{EmailAddress, UserId};
use policy::{Action, Decision, Denial};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct DeletionSettings {
    /// Keys read per page of the cascade (each page is deleted in batches of 25).
    pub page_size: usize,
    /// How long past its deadline a runner's lease lasts (covers a step in flight).
    pub lease_margin: Duration,
    /// Per-admin limit: deletions per hour (0 = no limit).
    pub deletions_per_hour: u32,
}

impl Default for DeletionSettings {
    fn default() -> Self {
        DeletionSettings {
            page_size: 250,
            lease_margin: Duration::from_secs(30),
            deletions_per_hour: 0,
        }
    }
}

/// The answer of a delete request or a worker run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// `200`: everything is done.
    Completed(DeletionJob),
    /// `202`: the job continues on the queue (or in the runner that holds it).
    InProgress(DeletionJob),
}

impl DeleteOutcome {
    pub fn job(&self) -> &DeletionJob {
        match self {
            DeleteOutcome::Completed(j) | DeleteOutcome::InProgress(j) => j,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error("too many deletions by this admin")]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// What a worker run did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    Completed(DeletionJob),
    /// Out of budget; re-enqueued.
    Continued(DeletionJob),
    /// Another runner holds the lease; retry later.
    Busy,
    /// No such job (a stray message).
    NoJob,
}

/// The deletion preview: what a deletion would remove, and what the policy says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub user_id: String,
    pub role: String,
    /// Per table: exact counts up to the cap, then `"<cap>+"`.
    pub tables: BTreeMap<String, String>,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_code: Option<&'static str>,
    pub acknowledgement_required: bool,
}

pub const PREVIEW_CAP: u64 = 10_000;

#[derive(Clone)]
pub struct Deletion {
    pub profiles: Arc<dyn Profiles>,
    pub jobs: Arc<dyn DeletionJobs>,
    pub log: Arc<dyn SecurityLog>,
    pub auth: Arc<dyn AuthDirectory>,
    pub user_data: Arc<dyn UserData>,
    pub queue: Arc<dyn DeletionQueue>,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub settings: DeletionSettings,
}

/// What a view of a deletion read, once the policy allowed it.
struct View {
    caller: policy::Caller,
    state: policy::Target,
    is_self: bool,
    profile: Option<crate::model::Profile>,
    job: Option<DeletionJob>,
}

enum Run {
    Finished(DeletionJob),
    /// Out of budget; the lease is released.
    Paused(DeletionJob),
    /// Someone else holds (or took) the job.
    Elsewhere(DeletionJob),
}

impl Deletion {
    /// A request without a caller (no `sub` claim): refused by the policy and audited.
    pub async fn refuse_anonymous(&self, meta: &RequestMeta, action: Action, target_id: &str) -> Denial {
        crate::access::refuse_anonymous(&*self.log, &*self.clock, meta, action, target_id).await
    }

    /// `DELETE /admin/users/{id}`: authorise, create or join the job, run it until `deadline`.
    pub async fn delete(
        &self,
        meta: &RequestMeta,
        target: &UserId,
        acknowledged: bool,
        deadline: Instant,
    ) -> Result<DeleteOutcome, DeleteError> {
        let span = tracing::info_span!(
            "delete_user",
            actor = meta.caller.as_deref(),
            target = target.as_str()
        );
        self.delete_inner(meta, target, acknowledged, deadline)
            .instrument(span)
            .await
    }

    async fn delete_inner(
        &self,
        meta: &RequestMeta,
        target: &UserId,
        acknowledged: bool,
        deadline: Instant,
    ) -> Result<DeleteOutcome, DeleteError> {
        let target_id = target.as_str();
        let (caller, profile, job) = futures::try_join!(
            load_caller(&*self.profiles, meta),
            self.profiles.get(target_id),
            self.jobs.get(target_id)
        )?;
        let decision = policy::decide(policy::Request {
            action: Action::DeleteUser,
            caller,
            target: target_state(profile.as_ref(), job.as_ref()),
            is_self: meta.caller.as_deref() == Some(target_id),
            acknowledged,
        });
        if let Decision::Deny(denial) = decision {
            audit_denial(
                &*self.log,
                &*self.clock,
                meta,
                Action::DeleteUser,
                target_id,
                denial.code(),
            )
            .await;
            return Err(DeleteError::Denied(denial));
        }
        // The policy refuses a missing target; should it ever not, the answer is the same.
        let Some(profile) = profile else {
            return Err(DeleteError::Denied(Denial::UserNotFound));
        };

        let job = match job {
            Some(job) => job,
            None => {
                if self.settings.deletions_per_hour > 0 {
                    let bucket = format!("deletions#{}", meta.caller.as_deref().unwrap_or_default());
                    if let RateDecision::Limited { retry_after } = self
                        .limiter
                        .take(
                            &bucket,
                            self.settings.deletions_per_hour,
                            Duration::from_secs(3600),
                            self.clock.now(),
                        )
                        .await?
                    {
                        audit_denial(
                            &*self.log,
                            &*self.clock,
                            meta,
                            Action::DeleteUser,
                            target_id,
                            "rate_limited",
                        )
                        .await;
                        return Err(DeleteError::RateLimited { retry_after });
                    }
                }
                // Step 1: capture role and email hash before anything changes.
                let now = timestamp(self.clock.now());
                let new = DeletionJob {
                    user_id: target_id.to_owned(),
                    job_id: uuid::Uuid::new_v4().to_string(),
                    status: JobStatus::InProgress,
                    step: Step::Audit,
                    actor_id: meta.caller.clone().unwrap_or_default(),
                    target_role: profile.role.clone(),
                    target_email_sha256: profile
                        .email
                        .as_deref()
                        .and_then(|e| EmailAddress::parse(e).ok())
                        .map(|e| e.sha256_hex()),
                    auth_username: Some(profile.cognito_username().to_owned()),
                    created_at: now.clone(),
                    updated_at: now,
                    completed_at: None,
                    request_id: meta.request_id.clone(),
                    source_ip: meta.source_ip.clone(),
                    user_agent: meta.user_agent.clone(),
                    progress: BTreeMap::new(),
                    version: 1,
                    lease_owner: None,
                    lease_until: None,
                };
                match self.jobs.create(&new).await? {
                    Created::Created => {
                        tracing::info!(job_id = %new.job_id, "deletion job created");
                        new
                    }
                    Created::Exists(existing) => existing,
                }
            }
        };
        if job.is_completed() {
            return Ok(DeleteOutcome::Completed(job));
        }
        match self.run(job, deadline).await? {
            Run::Finished(job) => Ok(DeleteOutcome::Completed(job)),
            // Another runner holds the job. Queue a continuation anyway: if that runner dies,
            // the worker picks the job up once its lease runs out.
            Run::Elsewhere(job) | Run::Paused(job) => {
                self.queue.enqueue(&job.user_id, &job.job_id).await?;
                Ok(DeleteOutcome::InProgress(job))
            }
        }
    }

    /// The worker's entry: continue the job of `user_id` until `deadline`; re-enqueue what is left.
    pub async fn resume(&self, user_id: &str, deadline: Instant) -> Result<Resumed, DependencyError> {
        let span = tracing::info_span!("resume_deletion", target = user_id);
        async {
            let Some(job) = self.jobs.get(user_id).await? else {
                return Ok(Resumed::NoJob);
            };
            if job.is_completed() {
                return Ok(Resumed::Completed(job));
            }
            match self.run(job, deadline).await? {
                Run::Finished(job) => Ok(Resumed::Completed(job)),
                Run::Elsewhere(_) => Ok(Resumed::Busy),
                Run::Paused(job) => {
                    self.queue.enqueue(&job.user_id, &job.job_id).await?;
                    Ok(Resumed::Continued(job))
                }
            }
        }
        .instrument(span)
        .await
    }

    /// `GET /admin/users/{id}/deletion`
    pub async fn status(
        &self,
        meta: &RequestMeta,
        target: &UserId,
    ) -> Result<Option<DeletionJob>, DeleteError> {
        Ok(self.view(meta, target).await?.job)
    }

    /// Reads what a view of a deletion needs and asks the policy whether the caller may see it.
    async fn view(&self, meta: &RequestMeta, target: &UserId) -> Result<View, DeleteError> {
        let (caller, profile, job) = futures::try_join!(
            load_caller(&*self.profiles, meta),
            self.profiles.get(target.as_str()),
            self.jobs.get(target.as_str())
        )?;
        let state = target_state(profile.as_ref(), job.as_ref());
        let is_self = meta.caller.as_deref() == Some(target.as_str());
        let decision = policy::decide(policy::Request {
            action: Action::ViewDeletion,
            caller,
            target: state,
            is_self,
            acknowledged: false,
        });
        if let Decision::Deny(denial) = decision {
            audit_denial(
                &*self.log,
                &*self.clock,
                meta,
                Action::ViewDeletion,
                target.as_str(),
                denial.code(),
            )
            .await;
            return Err(DeleteError::Denied(denial));
        }
        Ok(View {
            caller,
            state,
            is_self,
            profile,
            job,
        })
    }

    /// `GET /admin/users/{id}/deletion-preview`: counts per table and the policy's answer.
    pub async fn preview(&self, meta: &RequestMeta, target: &UserId) -> Result<Preview, DeleteError> {
        let View {
            caller,
            state,
            is_self,
            profile,
            ..
        } = self.view(meta, target).await?;
        let ask = |acknowledged| {
            policy::decide(policy::Request {
                action: Action::DeleteUser,
                caller,
                target: state,
                is_self,
                acknowledged,
            })
        };
        let (without, with) = (ask(false), ask(true));
        let counts = futures::future::try_join_all(
            CASCADE_PLAN
                .iter()
                .map(|t| self.user_data.count(t, target.as_str(), PREVIEW_CAP)),
        )
        .await?;
        let tables = CASCADE_PLAN
            .iter()
            .zip(counts)
            .map(|(t, c)| {
                let text = if c.capped {
                    format!("{}+", c.count)
                } else {
                    c.count.to_string()
                };
                (t.name.to_owned(), text)
            })
            .collect();
        let denied_code = match with {
            Decision::Deny(d) => Some(d.code()),
            Decision::Allow => None,
        };
        Ok(Preview {
            user_id: target.as_str().to_owned(),
            role: profile.map(|p| p.role).unwrap_or_default(),
            tables,
            allowed: with.is_allowed(),
            denied_code,
            acknowledgement_required: with.is_allowed() && !without.is_allowed(),
        })
    }

    /// Take the lease and run the remaining steps until done or out of time. On a failure the
    /// lease is released (best effort) so that a retry can continue at once.
    async fn run(&self, job: DeletionJob, deadline: Instant) -> Result<Run, DependencyError> {
        let me = uuid::Uuid::new_v4().to_string();
        let user_id = job.user_id.clone();
        let result = self.run_steps(job, deadline, &me).await;
        if result.is_err() {
            if let Ok(Some(stored)) = self.jobs.get(&user_id).await {
                if stored.lease_owner.as_deref() == Some(me.as_str()) {
                    let _ = self.pause(stored).await;
                }
            }
        }
        result
    }

    async fn run_steps(
        &self,
        mut job: DeletionJob,
        deadline: Instant,
        me: &str,
    ) -> Result<Run, DependencyError> {
        let now = self.clock.now();
        let held_by_other = job.lease_owner.is_some()
            && job
                .lease_until
                .as_deref()
                .and_then(parse_timestamp)
                .is_some_and(|until| until > now);
        if held_by_other {
            return Ok(Run::Elsewhere(job));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        job.lease_owner = Some(me.to_owned());
        job.lease_until = Some(timestamp(
            now + chrono_duration(remaining + self.settings.lease_margin),
        ));
        if !self.save(&mut job).await? {
            return Ok(Run::Elsewhere(self.jobs.get(&job.user_id).await?.unwrap_or(job)));
        }

        loop {
            if job.step == Step::Done {
                return Ok(Run::Finished(job));
            }
            if Instant::now() >= deadline {
                return self.pause(job).await;
            }
            let step = job.step;
            tracing::debug!(step = step.as_str(), job_id = %job.job_id, "deletion step");
            match step {
                Step::Audit => {
                    let event = self
                        .event(
                            &job,
                            format!("{}#deleted", job.job_id),
                            EventType::AdminDeletedUser,
                        )
                        .with("target_role", job.target_role.clone())
                        .with("job_id", job.job_id.clone());
                    let event = match &job.target_email_sha256 {
                        Some(h) => event.with("target_email_sha256", h.clone()),
                        None => event,
                    };
                    self.log.append(&event).await?;
                    job.step = Step::LockOut;
                }
                Step::LockOut => {
                    if let Some(username) = &job.auth_username {
                        self.auth.lock_out(username).await?;
                    }
                    job.step = Step::Anonymise;
                }
                Step::Anonymise => match self.profiles.anonymise(&job.user_id, self.clock.now()).await? {
                    Anonymised::Done | Anonymised::Missing => job.step = Step::Cascade,
                    Anonymised::SendInFlight { until } => {
                        // A message to this user is being sent right now: let it finish first.
                        let wait = (until - self.clock.now()).to_std().unwrap_or_default()
                            + Duration::from_millis(5);
                        if Instant::now() + wait >= deadline {
                            return self.pause(job).await;
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                },
                Step::Cascade => {
                    for table in CASCADE_PLAN {
                        if !self.cascade_table(&mut job, table, deadline).await? {
                            return if Instant::now() >= deadline {
                                self.pause(job).await
                            } else {
                                Ok(Run::Elsewhere(job))
                            };
                        }
                    }
                    job.step = Step::DeleteAuth;
                }
                Step::DeleteAuth => {
                    if let Some(username) = &job.auth_username {
                        self.auth.delete(username).await?;
                    }
                    job.step = Step::Complete;
                }
                Step::Complete => {
                    let counts = serde_json::to_string(&job.counts()).unwrap_or_default();
                    let event = self
                        .event(
                            &job,
                            format!("{}#completed", job.job_id),
                            EventType::AdminDeletionCompleted,
                        )
                        .with("job_id", job.job_id.clone())
                        .with("deleted", counts);
                    self.log.append(&event).await?;
                    let now = timestamp(self.clock.now());
                    job.status = JobStatus::Completed;
                    job.completed_at = Some(now);
                    job.auth_username = None;
                    job.lease_owner = None;
                    job.lease_until = None;
                    job.step = Step::Done;
                    tracing::info!(job_id = %job.job_id, "deletion completed");
                }
                Step::Done => unreachable!("handled above"),
            }
            if !self.save(&mut job).await? {
                return Ok(Run::Elsewhere(job));
            }
        }
    }

    /// Erase one table page by page. Returns false when it stopped early (deadline or lost job).
    async fn cascade_table(
        &self,
        job: &mut DeletionJob,
        table: &CascadeTable,
        deadline: Instant,
    ) -> Result<bool, DependencyError> {
        loop {
            let progress = job.progress.entry(table.name.to_owned()).or_default();
            if progress.done {
                return Ok(true);
            }
            // Keys recorded as pending were read before a save: delete them (again) and count them.
            if !progress.pending.is_empty() {
                self.user_data.delete(table, &progress.pending).await?;
                progress.deleted += progress.pending.len() as u64;
                progress.pending.clear();
            }
            if progress.exhausted {
                progress.done = true;
                progress.cursor = None;
            } else {
                if Instant::now() >= deadline {
                    // The caller pauses, which saves what was deleted so far.
                    return Ok(false);
                }
                let page = self
                    .user_data
                    .page(
                        table,
                        &job.user_id,
                        progress.cursor.as_ref(),
                        self.settings.page_size,
                    )
                    .await?;
                let TableProgress {
                    pending,
                    cursor,
                    exhausted,
                    ..
                } = progress;
                *pending = page.keys;
                *exhausted = page.next.is_none();
                *cursor = page.next;
            }
            if !self.save(job).await? {
                return Ok(false);
            }
        }
    }

    /// Release the lease so the worker can take over at once.
    async fn pause(&self, mut job: DeletionJob) -> Result<Run, DependencyError> {
        job.lease_owner = None;
        job.lease_until = None;
        if self.save(&mut job).await? {
            Ok(Run::Paused(job))
        } else {
            Ok(Run::Elsewhere(job))
        }
    }

    /// Conditional save; false when the job moved on under us.
    async fn save(&self, job: &mut DeletionJob) -> Result<bool, DependencyError> {
        job.version += 1;
        job.updated_at = timestamp(self.clock.now());
        match self.jobs.save(job).await? {
            Saved::Saved => Ok(true),
            Saved::Conflict => {
                tracing::info!(job_id = %job.job_id, "deletion job taken over by another runner");
                Ok(false)
            }
        }
    }

    fn event(&self, job: &DeletionJob, event_id: String, kind: EventType) -> SecurityEvent {
        let meta = RequestMeta {
            caller: Some(job.actor_id.clone()),
            request_id: job.request_id.clone(),
            source_ip: job.source_ip.clone(),
            user_agent: job.user_agent.clone(),
        };
        SecurityEvent::new(event_id, kind, &job.user_id, &meta, &timestamp(self.clock.now()))
    }
}

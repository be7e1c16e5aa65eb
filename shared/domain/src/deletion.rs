//! Delete a user: the step-by-step, resumable routine (`docs/DESIGN.md`, "The delete
//! routine").
//!
//! Every step is idempotent and the job is saved after every step and every page, so a crash
//! anywhere is finished by running the routine again. Nothing depends on the request that
//! started it: every run queues a continuation, delayed past its own lease, before it runs a
//! step; every failure queues one again; a worker that finds the job busy queues one for when
//! the lease runs out; and a scheduled sweep queues every job that stalled anyway.

use crate::access::{authorize, load_caller, target_state};
use crate::cascade::CASCADE_PLAN;
use crate::job::{DeletionJob, Lease, Step};
use crate::model::{chrono_duration, parse_timestamp, timestamp, EventType, RequestMeta, SecurityEvent};
use crate::ports::*;
use crate::types::{EmailAddress, UserId};
use policy::{Action, Caller, Denial, Role, RoleName, Target};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

mod cascade_run;

/// SQS's longest delivery delay.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);
/// How much later than a lease's end its continuation is due.
const AFTER_LEASE: Duration = Duration::from_secs(1);
/// How long a run that DynamoDB kept throttling waits before the job goes on.
const THROTTLED_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct DeletionSettings {
    /// Keys read per page of the cascade (each page is deleted in batches of 25).
    pub page_size: usize,
    /// How long past its deadline a runner's lease lasts (covers a step in flight).
    pub lease_margin: Duration,
    /// Per-admin limit: deletions per hour (0 = no limit).
    pub deletions_per_hour: u32,
    /// The longest access-token lifetime of the user pool: the late pass runs this long after
    /// the lock-out, when no token issued before it can be used any more.
    pub token_lifetime: Duration,
    /// How long the re-query of a table found through an index waits when its last query
    /// found only items already gone (the index catching up).
    pub requery_pause: Duration,
}

impl Default for DeletionSettings {
    fn default() -> Self {
        DeletionSettings {
            page_size: 250,
            lease_margin: Duration::from_secs(30),
            deletions_per_hour: 0,
            token_lifetime: Duration::from_secs(3600),
            requery_pause: Duration::from_millis(250),
        }
    }
}

/// The queue message that asks the worker to continue a job. It only says which job: the
/// job itself, with its progress, lives in `deletion_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    pub user_id: String,
    pub job_id: String,
    /// Failures in a row before this continuation was queued (its backoff).
    #[serde(default)]
    pub attempt: u32,
}

impl Continuation {
    pub fn of(job: &DeletionJob) -> Continuation {
        Continuation {
            user_id: job.user_id.clone(),
            job_id: job.job_id.clone(),
            attempt: 0,
        }
    }
}

/// The delay of the continuation queued after `attempt` failures in a row: 5 s doubling up to
/// SQS's limit, with jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(5).saturating_mul(1u32 << attempt.min(8));
    (base + Duration::from_millis(fastrand::u64(0..1000))).min(MAX_QUEUE_DELAY)
}

/// The answer of a delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// `200`: everything is done.
    Completed(DeletionJob),
    /// `202`: the job continues (on the queue, or in the runner that holds it).
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

/// What became of one continuation. Every variant means the message may be acknowledged: a
/// continuation that is still needed has been queued again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continued {
    /// The job completed (now or earlier), or its late pass ran.
    Completed,
    /// Out of time; the continuation is queued again.
    Paused,
    /// Another runner holds the job; queued again for when its lease runs out.
    Requeued { delay: Duration },
    /// Nothing to do: no such job, or a late pass not due yet.
    Nothing,
    /// A step failed; queued again after the backoff.
    Failed { retry_in: Duration },
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
    request: policy::Request,
    profile: Option<crate::model::Profile>,
    job: Option<DeletionJob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cascaded {
    Done,
    OutOfTime,
    /// The job moved on under us (another runner took it).
    Lost,
}

enum Run {
    Finished(DeletionJob),
    /// Out of budget (or waiting for a send to end): the lease is released and a continuation
    /// queued, due after the duration.
    Paused(DeletionJob, Duration),
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
        &self, meta: &RequestMeta, target: &UserId, acknowledged: bool, deadline: Instant,
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
        &self, meta: &RequestMeta, target: &UserId, acknowledged: bool, deadline: Instant,
    ) -> Result<DeleteOutcome, DeleteError> {
        let target_id = target.as_str();
        let (caller, profile, job) = futures::try_join!(
            load_caller(&*self.profiles, meta),
            self.profiles.get(target_id),
            self.jobs.get(target_id)
        )?;
        let state = target_state(profile.as_ref(), job.as_ref());
        let last_owner = self.is_last_owner(meta, caller, state, target_id).await?;
        let request = policy::Request {
            action: Action::DeleteUser,
            caller,
            target: state,
            is_self: meta.caller.as_deref() == Some(target_id),
            acknowledged,
            last_owner,
        };
        authorize(&*self.log, &*self.clock, meta, request, target_id)
            .await
            .map_err(DeleteError::Denied)?;
        // The policy refuses a missing target; should it ever not, the answer is the same.
        let Some(profile) = profile else {
            return Err(DeleteError::Denied(Denial::UserNotFound));
        };

        let job = match job {
            Some(job) => job,
            None => self.create_job(meta, &profile).await?,
        };
        if job.is_completed() {
            return Ok(DeleteOutcome::Completed(job));
        }
        match self.run(job, deadline, 0).await? {
            Run::Finished(job) => Ok(DeleteOutcome::Completed(job)),
            Run::Elsewhere(job) | Run::Paused(job, _) => Ok(DeleteOutcome::InProgress(job)),
        }
    }

    /// Whether the target is the only active owner. The owners index is eventually
    /// consistent, so the caller's own fresh read counts too.
    async fn is_last_owner(
        &self, meta: &RequestMeta, caller: Caller, target: Target, target_id: &str,
    ) -> Result<bool, DependencyError> {
        let owner = RoleName::Known(Role::Owner);
        if target != Target::Active(owner) {
            return Ok(false);
        }
        let mut others: BTreeSet<String> = self.profiles.active_owners().await?.into_iter().collect();
        if let (Caller::Active(role), Some(me)) = (caller, meta.caller.as_deref()) {
            if role == owner {
                others.insert(me.to_owned());
            }
        }
        others.remove(target_id);
        Ok(others.is_empty())
    }

    /// Step 1: capture what the routine needs before anything changes, and create the job in
    /// one transaction with the target's deletion mark and the check that the actor is not
    /// being deleted themself.
    async fn create_job(
        &self, meta: &RequestMeta, profile: &crate::model::Profile,
    ) -> Result<DeletionJob, DeleteError> {
        let actor = meta.caller.clone().unwrap_or_default();
        if self.settings.deletions_per_hour > 0 {
            let decision = self
                .limiter
                .take(
                    &format!("deletions#{actor}"),
                    self.settings.deletions_per_hour,
                    Duration::from_secs(3600),
                    self.clock.now(),
                    &meta.request_id,
                )
                .await?;
            if let RateDecision::Limited { retry_after } = decision {
                crate::access::audit_denial(
                    &*self.log,
                    &*self.clock,
                    meta,
                    Action::DeleteUser,
                    &profile.user_id,
                    "rate_limited",
                )
                .await;
                return Err(DeleteError::RateLimited { retry_after });
            }
        }
        let auth_username = match &profile.auth_username {
            Some(username) => Some(username.clone()),
            None => self.auth.find_by_sub(&profile.user_id).await?,
        };
        if auth_username.is_none() {
            tracing::warn!("no Cognito user has this sub: there is no auth record to lock out or delete");
        }
        let now = timestamp(self.clock.now());
        let job_id = uuid::Uuid::new_v4().to_string();
        let new = DeletionJob {
            target_email_sha256: profile
                .email
                .as_deref()
                .and_then(|e| EmailAddress::parse(e).ok())
                .map(|e| e.sha256_hex()),
            auth_username,
            ..DeletionJob::started(&profile.user_id, &job_id, &actor, &profile.role, &now, meta)
        };
        match self.jobs.create(&new).await? {
            Created::Created => {
                tracing::info!(job_id = %new.job_id, "deletion job created");
                Ok(new)
            }
            Created::Exists(existing) => Ok(existing),
            Created::ActorDeleted => {
                let denial = Denial::Unauthenticated;
                crate::access::audit_denial(
                    &*self.log,
                    &*self.clock,
                    meta,
                    Action::DeleteUser,
                    &profile.user_id,
                    denial.code(),
                )
                .await;
                Err(DeleteError::Denied(denial))
            }
        }
    }

    /// The worker's entry: continue the job a queue message names, until `deadline`.
    ///
    /// `Ok` whatever became of the job (a continuation that is still needed was queued
    /// again); `Err` only when that re-queue itself failed, so the message must come back.
    pub async fn continue_job(
        &self, continuation: &Continuation, deadline: Instant,
    ) -> Result<Continued, DependencyError> {
        let span = tracing::info_span!(
            "continue_deletion",
            target = continuation.user_id.as_str(),
            job_id = continuation.job_id.as_str(),
            attempt = continuation.attempt
        );
        async {
            let job = match self.jobs.get(&continuation.user_id).await {
                Ok(job) => job,
                Err(err) => return self.retry_later(continuation, err).await,
            };
            let Some(job) = job else {
                tracing::warn!("no deletion job for this continuation");
                return Ok(Continued::Nothing);
            };
            if job.job_id != continuation.job_id {
                // A user has one job ever; a message naming another id is stale or hand-made.
                // Continuing the user's job is harmless (every step is idempotent).
                tracing::warn!(stored_job_id = %job.job_id, "a continuation names another job id than the user's");
            }
            let now = self.clock.now();
            match job.step {
                Step::Done => return Ok(Continued::Completed),
                Step::LatePass if !late_pass_due(&job, now) => return Ok(Continued::Nothing),
                _ => {}
            }
            if let Some(lease) = job.live_lease(now) {
                let left = lease
                    .until()
                    .map_or(Duration::ZERO, |until| (until - now).to_std().unwrap_or_default());
                let delay = (left + AFTER_LEASE).min(MAX_QUEUE_DELAY);
                self.queue.enqueue(continuation, delay).await?;
                tracing::info!(delay_ms = delay.as_millis() as u64, "another runner holds the job; queued again");
                return Ok(Continued::Requeued { delay });
            }
            match self.run(job, deadline, continuation.attempt).await {
                Ok(Run::Finished(_)) => Ok(Continued::Completed),
                Ok(Run::Paused(..)) => Ok(Continued::Paused),
                // Taken between our read and our lease: its runner queued its own continuation.
                Ok(Run::Elsewhere(_)) => Ok(Continued::Nothing),
                Err(err) => {
                    tracing::error!(error = ?anyhow::Error::from(err), "deletion step failed; continued after a backoff");
                    Ok(Continued::Failed {
                        retry_in: backoff(continuation.attempt),
                    })
                }
            }
        }
        .instrument(span)
        .await
    }

    /// A read failed before any run: queue the continuation again after a backoff.
    async fn retry_later(
        &self, continuation: &Continuation, err: DependencyError,
    ) -> Result<Continued, DependencyError> {
        tracing::error!(error = ?anyhow::Error::from(err), "reading the deletion job failed; continued after a backoff");
        let retry_in = backoff(continuation.attempt);
        let next = Continuation {
            attempt: continuation.attempt.saturating_add(1),
            ..continuation.clone()
        };
        self.queue.enqueue(&next, retry_in).await?;
        Ok(Continued::Failed { retry_in })
    }

    /// `GET /admin/users/{id}/deletion`
    pub async fn status(
        &self, meta: &RequestMeta, target: &UserId,
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
        let last_owner = self.is_last_owner(meta, caller, state, target.as_str()).await?;
        let request = policy::Request {
            action: Action::ViewDeletion,
            caller,
            target: state,
            is_self: meta.caller.as_deref() == Some(target.as_str()),
            acknowledged: false,
            last_owner,
        };
        authorize(&*self.log, &*self.clock, meta, request, target.as_str())
            .await
            .map_err(DeleteError::Denied)?;
        Ok(View {
            request,
            profile,
            job,
        })
    }

    /// `GET /admin/users/{id}/deletion-preview`: counts per table and the policy's answer.
    pub async fn preview(&self, meta: &RequestMeta, target: &UserId) -> Result<Preview, DeleteError> {
        let View { request, profile, .. } = self.view(meta, target).await?;
        let ask = |acknowledged| {
            policy::decide(policy::Request {
                action: Action::DeleteUser,
                acknowledged,
                ..request
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
            policy::Decision::Deny(d) => Some(d.code()),
            policy::Decision::Allow => None,
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

    /// Queue this run's continuation, take the lease and run the remaining steps until done
    /// or out of time. On a failure the lease is released and a continuation queued after a
    /// backoff (both best effort: the first continuation stands anyway).
    async fn run(
        &self, mut job: DeletionJob, deadline: Instant, attempt: u32,
    ) -> Result<Run, DependencyError> {
        let now = self.clock.now();
        if job.live_lease(now).is_some() {
            return Ok(Run::Elsewhere(job));
        }
        let me = uuid::Uuid::new_v4().to_string();
        let lease_for = deadline.saturating_duration_since(Instant::now()) + self.settings.lease_margin;
        // Before anything else: the continuation that finishes the job should this run die
        // at any instruction, due once its lease has run out.
        self.queue
            .enqueue(
                &Continuation::of(&job),
                (lease_for + AFTER_LEASE).min(MAX_QUEUE_DELAY),
            )
            .await?;
        job.lease = Some(Lease {
            owner: me.clone(),
            until: timestamp(now + chrono_duration(lease_for)),
        });
        if !self.save(&mut job).await? {
            let current = self.jobs.get(&job.user_id).await?.unwrap_or(job);
            return Ok(Run::Elsewhere(current));
        }
        let user_id = job.user_id.clone();
        let continuation = Continuation::of(&job);
        let started = job.clone();
        match self.run_steps(job, deadline).await {
            Ok(Run::Paused(job, resume_in)) => {
                // Best effort: without it, the continuation queued above takes over.
                self.try_enqueue(&continuation, resume_in.min(MAX_QUEUE_DELAY))
                    .await;
                Ok(Run::Paused(job, resume_in))
            }
            Ok(other) => Ok(other),
            Err(err) if err.throttled => {
                // DynamoDB asked us to slow down: the job goes on a little later, it does not
                // fail (no 503, no backoff of failures).
                tracing::info!(error = %err, "throttled; the deletion goes on shortly");
                let stored = self.jobs.get(&user_id).await.ok().flatten();
                let job = match stored {
                    Some(stored) if stored.lease.as_ref().is_some_and(|l| l.owner == me) => self
                        .release(stored.clone())
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or(stored),
                    Some(stored) => stored,
                    None => started,
                };
                let resume_in = THROTTLED_PAUSE + Duration::from_millis(fastrand::u64(0..1000));
                self.try_enqueue(&continuation, resume_in).await;
                Ok(Run::Paused(job, resume_in))
            }
            Err(err) => {
                if let Ok(Some(stored)) = self.jobs.get(&user_id).await {
                    if stored.lease.as_ref().is_some_and(|l| l.owner == me) {
                        let _ = self.release(stored).await;
                    }
                }
                let next = Continuation {
                    attempt: attempt.saturating_add(1),
                    ..continuation
                };
                self.try_enqueue(&next, backoff(attempt)).await;
                Err(err)
            }
        }
    }

    async fn try_enqueue(&self, continuation: &Continuation, delay: Duration) {
        if let Err(err) = self.queue.enqueue(continuation, delay).await {
            tracing::warn!(error = ?anyhow::Error::from(err), "could not queue a continuation; the earlier one stands");
        }
    }

    async fn run_steps(&self, mut job: DeletionJob, deadline: Instant) -> Result<Run, DependencyError> {
        loop {
            if job.step == Step::Done {
                return Ok(Run::Finished(job));
            }
            if job.step == Step::LatePass && !late_pass_due(&job, self.clock.now()) {
                // Completed; the late pass is the sweep's to start when it is due.
                return self.finish_run(job).await;
            }
            if Instant::now() >= deadline {
                return self.pause(job, Duration::ZERO).await;
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
                    if !self.lock_out(&mut job).await? {
                        // The username changed: save it, then lock out the right user.
                        if !self.save(&mut job).await? {
                            return Ok(Run::Elsewhere(job));
                        }
                        continue;
                    }
                    job.locked_out_at = Some(timestamp(self.clock.now()));
                    job.step = Step::Anonymise;
                }
                Step::Anonymise => match self.profiles.anonymise(&job.user_id, self.clock.now()).await? {
                    Anonymised::Done | Anonymised::Missing => job.step = Step::Cascade,
                    Anonymised::SendInFlight { until } => {
                        // A message to this user is being sent right now: let it finish first.
                        let wait = (until - self.clock.now()).to_std().unwrap_or_default()
                            + Duration::from_millis(5);
                        if Instant::now() + wait >= deadline {
                            return self.pause(job, wait).await;
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                },
                Step::Cascade => match self.cascade(&mut job, false, deadline).await? {
                    Cascaded::Done => job.step = Step::DeleteAuth,
                    Cascaded::OutOfTime => return self.pause(job, Duration::ZERO).await,
                    Cascaded::Lost => return Ok(Run::Elsewhere(job)),
                },
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
                    let now = self.clock.now();
                    let locked_out = job
                        .locked_out_at
                        .as_deref()
                        .and_then(parse_timestamp)
                        .unwrap_or(now);
                    job.completed_at = Some(timestamp(now));
                    job.late_pass_due_at = Some(timestamp(
                        locked_out + chrono_duration(self.settings.token_lifetime),
                    ));
                    job.auth_username = None;
                    job.step = Step::LatePass;
                    tracing::info!(job_id = %job.job_id, "deletion completed");
                }
                Step::LatePass => {
                    match self.cascade(&mut job, true, deadline).await? {
                        Cascaded::Done => {}
                        Cascaded::OutOfTime => return self.pause(job, Duration::ZERO).await,
                        Cascaded::Lost => return Ok(Run::Elsewhere(job)),
                    }
                    job.late_pass_done_at = Some(timestamp(self.clock.now()));
                    job.lease = None;
                    job.step = Step::Done;
                    let late: u64 = job.late_counts().values().sum();
                    tracing::info!(job_id = %job.job_id, late, "deletion late pass done");
                }
                Step::Done => unreachable!("handled above"),
            }
            if !self.save(&mut job).await? {
                return Ok(Run::Elsewhere(job));
            }
        }
    }

    /// Step 3. `Ok(false)`: the username was stale and has been replaced; run the step again.
    ///
    /// "User not found" is not taken as done: the user is resolved again by `sub`. Only when
    /// no user has this `sub` at all is the auth record taken as already gone (and that is
    /// logged as an error, since something else removed it).
    async fn lock_out(&self, job: &mut DeletionJob) -> Result<bool, DependencyError> {
        let Some(username) = job.auth_username.clone() else {
            return Ok(true);
        };
        if self.auth.lock_out(&username).await? == LockedOut::Done {
            return Ok(true);
        }
        tracing::error!(job_id = %job.job_id, "the Cognito user was not found at lock-out; resolving it again by sub");
        match self.auth.find_by_sub(&job.user_id).await? {
            Some(found) if found != username => {
                job.auth_username = Some(found);
                Ok(false)
            }
            Some(_) => Err(DependencyError::new(
                "cognito",
                true,
                anyhow::anyhow!("the user is listed by sub but not found by username at lock-out"),
            )),
            None => {
                tracing::error!(job_id = %job.job_id, "no Cognito user has this sub: the auth record is already gone");
                job.auth_username = None;
                Ok(true)
            }
        }
    }

    /// Release the lease and stop: a continuation takes over after `resume_in`.
    async fn pause(&self, job: DeletionJob, resume_in: Duration) -> Result<Run, DependencyError> {
        Ok(match self.release(job.clone()).await? {
            Some(job) => Run::Paused(job, resume_in),
            None => Run::Elsewhere(job),
        })
    }

    /// The job is completed and nothing is due now: release the lease.
    async fn finish_run(&self, job: DeletionJob) -> Result<Run, DependencyError> {
        let released = self.release(job.clone()).await?;
        Ok(Run::Finished(released.unwrap_or(job)))
    }

    /// Save the job without a lease; `None` when it moved on under us.
    async fn release(&self, mut job: DeletionJob) -> Result<Option<DeletionJob>, DependencyError> {
        if job.lease.is_none() {
            return Ok(Some(job));
        }
        job.lease = None;
        Ok(self.save(&mut job).await?.then_some(job))
    }

    /// Conditional save; false when the job moved on under us. A throttled save is tried
    /// again a few times (it holds the progress of the page just deleted).
    async fn save(&self, job: &mut DeletionJob) -> Result<bool, DependencyError> {
        job.version += 1;
        job.updated_at = timestamp(self.clock.now());
        let mut pause = Duration::from_millis(50);
        let saved = loop {
            match self.jobs.save(job).await {
                Err(err) if err.throttled && pause <= Duration::from_secs(2) => {
                    tokio::time::sleep(pause + Duration::from_millis(fastrand::u64(0..50))).await;
                    pause *= 2;
                }
                other => break other?,
            }
        };
        match saved {
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
            token_issued_at: None,
        };
        SecurityEvent::new(event_id, kind, &job.user_id, &meta, &timestamp(self.clock.now()))
    }
}

fn late_pass_due(job: &DeletionJob, now: chrono::DateTime<chrono::Utc>) -> bool {
    job.late_pass_due_at
        .as_deref()
        .and_then(parse_timestamp)
        .is_none_or(|due| due <= now)
}

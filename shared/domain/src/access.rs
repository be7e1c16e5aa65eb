//! Reading the caller and the target for the policy, and auditing refusals.
//! The policy crate decides; this only gathers its inputs.

use crate::job::DeletionJob;
use crate::model::{timestamp, EventType, Profile, RequestMeta, SecurityEvent};
use crate::ports::{Clock, Profiles, SecurityLog, StoreResult};
use policy::{Action, Caller, RoleName, Target};

/// The caller's state, read from their own profile on this request.
pub async fn load_caller(profiles: &dyn Profiles, meta: &RequestMeta) -> StoreResult<Caller> {
    let Some(sub) = meta.caller.as_deref() else {
        return Ok(Caller::Missing);
    };
    Ok(caller_state(profiles.get(sub).await?.as_ref()))
}

/// The caller's state from their own profile: a caller whose deletion job exists (running or
/// done) is deleted from the moment the job is created, before the tombstone.
pub fn caller_state(profile: Option<&Profile>) -> Caller {
    match profile {
        None => Caller::Missing,
        Some(p) if p.is_deleted() => Caller::Deleted,
        Some(p) => Caller::Active(RoleName::parse(&p.role)),
    }
}

/// The target's state from its profile and, for tombstones, its deletion job.
/// Without the job (`None`), a profile marked with a deletion job counts as a deletion
/// still running.
pub fn target_state(profile: Option<&Profile>, job: Option<&DeletionJob>) -> Target {
    match profile {
        None => Target::Missing,
        Some(p) if p.is_tombstone() => Target::Deleted {
            role: RoleName::parse(job.map_or(p.role.as_str(), |j| j.target_role.as_str())),
            deletion_finished: job.is_none_or(DeletionJob::is_completed),
        },
        Some(p) if p.deletion_job_id.is_some() => Target::Deleted {
            role: RoleName::parse(job.map_or(p.role.as_str(), |j| j.target_role.as_str())),
            deletion_finished: job.is_some_and(DeletionJob::is_completed),
        },
        Some(p) => match job {
            // A job exists but the profile is not anonymised yet: the deletion is running.
            Some(j) if !j.is_completed() => Target::Deleted {
                role: RoleName::parse(&j.target_role),
                deletion_finished: false,
            },
            _ => Target::Active(RoleName::parse(&p.role)),
        },
    }
}

/// The answer to a request that carries no caller at all (no `sub` claim): the policy's
/// refusal, audited like every other (with no actor id).
pub async fn refuse_anonymous(
    log: &dyn SecurityLog,
    clock: &dyn Clock,
    meta: &RequestMeta,
    action: Action,
    target_id: &str,
) -> policy::Denial {
    let decision = policy::decide(policy::Request {
        action,
        caller: Caller::Missing,
        target: Target::Missing,
        is_self: false,
        acknowledged: false,
        last_owner: false,
    });
    // The policy never lets a missing caller through; should that change, the answer is
    // still a refusal here.
    let denial = match decision {
        policy::Decision::Deny(denial) => denial,
        policy::Decision::Allow => policy::Denial::Unauthenticated,
    };
    audit_denial(log, clock, meta, action, target_id, denial.code()).await;
    denial
}

/// Asks the policy; a refusal is audited (`admin_action_denied`) and returned.
pub async fn authorize(
    log: &dyn SecurityLog,
    clock: &dyn Clock,
    meta: &RequestMeta,
    request: policy::Request,
    target_id: &str,
) -> Result<(), policy::Denial> {
    match policy::decide(request) {
        policy::Decision::Allow => Ok(()),
        policy::Decision::Deny(denial) => {
            audit_denial(log, clock, meta, request.action, target_id, denial.code()).await;
            Err(denial)
        }
    }
}

/// Writes `admin_action_denied`. A refusal changes nothing else.
pub async fn audit_denial(
    log: &dyn SecurityLog,
    clock: &dyn Clock,
    meta: &RequestMeta,
    action: Action,
    target_id: &str,
    reason: &str,
) {
    let event = SecurityEvent::new(
        uuid::Uuid::new_v4().to_string(),
        EventType::AdminActionDenied,
        target_id,
        meta,
        &timestamp(clock.now()),
    )
    .with("action", action.as_str())
    .with("reason", reason);
    if let Err(err) = log.append(&event).await {
        // The refusal stands either way; the missing audit row is reported loudly.
        tracing::error!(error = ?anyhow::Error::from(err), action = action.as_str(), reason, "could not write admin_action_denied");
    }
}

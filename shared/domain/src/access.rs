//! Reading the caller and the target for the policy, and auditing refusals.
//! The policy crate decides; this only gathers its inputs.

use crate::job::DeletionJob;
use crate::model::{timestamp, EventType, Profile, RequestMeta, SecurityEvent};
use crate::ports::{Clock, Profiles, SecurityLog, StoreResult};
use policy::{Action, Caller, RoleName, Target};

/// Refusals of one caller written as rows of their own per minute; beyond, they are only
/// counted in the caller's row of the minute.
pub const REFUSAL_ROWS_PER_MINUTE: u64 = 10;
/// How long refusal rows are kept (deletion and message events are kept for ever).
pub const REFUSAL_RETENTION_DAYS: i64 = 400;

/// The caller's state, read from their own profile on this request.
pub async fn load_caller(profiles: &dyn Profiles, meta: &RequestMeta) -> StoreResult<Caller> {
    let Some(sub) = meta.caller.as_deref() else {
        return Ok(Caller::Missing);
    };
    Ok(caller_state(
        profiles.get(sub).await?.as_ref(),
        meta.token_issued_at,
    ))
}

/// The caller's state from their own profile and their token's `iat`: a caller whose
/// deletion job exists (running or done) is deleted from the moment the job is created,
/// before the tombstone; a token issued before the profile's `tokens_valid_after` (set when
/// Cognito signed the user out or disabled them) is revoked, and so is one without an `iat`
/// once such a revocation exists.
pub fn caller_state(profile: Option<&Profile>, token_issued_at: Option<i64>) -> Caller {
    match profile {
        None => Caller::Missing,
        Some(p) if p.is_deleted() => Caller::Deleted,
        Some(p)
            if p.tokens_valid_after
                .is_some_and(|after| token_issued_at.is_none_or(|iat| iat < after)) =>
        {
            Caller::Revoked
        }
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
    log: &dyn SecurityLog, clock: &dyn Clock, meta: &RequestMeta, action: Action, target_id: &str,
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
    log: &dyn SecurityLog, clock: &dyn Clock, meta: &RequestMeta, request: policy::Request, target_id: &str,
) -> Result<(), policy::Denial> {
    match policy::decide(request) {
        policy::Decision::Allow => Ok(()),
        policy::Decision::Deny(denial) => {
            audit_denial(log, clock, meta, request.action, target_id, denial.code()).await;
            Err(denial)
        }
    }
}

/// [`authorize`] for an action with no single target (the user list, the audit trail): the
/// caller is read, the policy asked, a refusal audited against `*`.
pub async fn authorize_untargeted(
    profiles: &dyn Profiles, log: &dyn SecurityLog, clock: &dyn Clock, meta: &RequestMeta, action: Action,
) -> StoreResult<Result<(), policy::Denial>> {
    let caller = load_caller(profiles, meta).await?;
    let request = policy::Request {
        action,
        caller,
        target: Target::Missing,
        is_self: false,
        acknowledged: false,
        last_owner: false,
    };
    Ok(authorize(log, clock, meta, request, "*").await)
}

/// Records a refusal. A refusal changes nothing else.
///
/// The first refusal of a caller (the `sub`, or the source IP of a request without one) in a
/// minute is written as the `admin_action_denied` row `refusals#<caller>#<minute>`, which also
/// counts every refusal of that caller in that minute (`refusals`); the next ones up to
/// [`REFUSAL_ROWS_PER_MINUTE`] get rows of their own; beyond, they are only counted. So
/// nobody can flood the log: a flood costs one row per caller and minute. Refusal rows expire
/// after [`REFUSAL_RETENTION_DAYS`]; deletion and message events never do.
pub async fn audit_denial(
    log: &dyn SecurityLog, clock: &dyn Clock, meta: &RequestMeta, action: Action, target_id: &str,
    reason: &str,
) {
    let now = clock.now();
    let minute = chrono::DateTime::<chrono::Utc>::from_timestamp(now.timestamp().div_euclid(60) * 60, 0)
        .unwrap_or(now);
    let who = meta
        .caller
        .clone()
        .or_else(|| meta.source_ip.as_ref().map(|ip| format!("ip:{ip}")))
        .unwrap_or_else(|| "anonymous".to_owned());
    let refusal = |event_id: String| {
        let mut event = SecurityEvent::new(
            event_id,
            EventType::AdminActionDenied,
            target_id,
            meta,
            &timestamp(now),
        )
        .with("action", action.as_str())
        .with("reason", reason);
        event.expires_at = Some((now + chrono::Duration::days(REFUSAL_RETENTION_DAYS)).timestamp());
        event
    };
    let first = refusal(format!("refusals#{who}#{}", timestamp(minute)));
    let counted = match log.count_refusal(&first, &meta.request_id).await {
        // The minute's first refusal: its row is the one just written.
        Ok(1) => return,
        Ok(n) => n,
        Err(err) => {
            // The refusal stands either way; write its own row, and report loudly.
            tracing::error!(error = ?anyhow::Error::from(err), action = action.as_str(), reason, "could not count a refusal");
            0
        }
    };
    if counted > REFUSAL_ROWS_PER_MINUTE {
        return;
    }
    if let Err(err) = log.append(&refusal(uuid::Uuid::new_v4().to_string())).await {
        tracing::error!(error = ?anyhow::Error::from(err), action = action.as_str(), reason, "could not write admin_action_denied");
    }
}

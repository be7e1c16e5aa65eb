//! Access ends when Cognito ends it: a sign-out or a disable in the user pool (a CloudTrail
//! event, routed by EventBridge to the token-revocation function) sets the user's
//! `tokens_valid_after`, and every request refuses a token issued before it
//! ([`crate::access::caller_state`]). API Gateway's JWT authorizer cannot see revocations:
//! without this, a signed-out admin keeps full rights until the access token expires.

use crate::ports::{AuthDirectory, Clock, DependencyError, Profiles};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// The Cognito calls that end a user's sessions.
pub const REVOKING_CALLS: &[&str] = &[
    "AdminUserGlobalSignOut",
    "GlobalSignOut",
    "AdminDisableUser",
    "RevokeToken",
    "AdminDeleteUser",
];

/// What CloudTrail writes in place of a value it does not log.
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// The EventBridge envelope of a CloudTrail record ("AWS API Call via CloudTrail").
#[derive(Debug, Deserialize)]
struct Envelope {
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_name: String,
    event_time: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    request_parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    additional_event_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One revoking call, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokingCall {
    pub event_name: String,
    pub at: DateTime<Utc>,
    /// The user's `sub` when CloudTrail names it (`additionalEventData.sub`).
    pub sub: Option<String>,
    /// The username when CloudTrail names it (the admin calls).
    pub username: Option<String>,
    /// The user pool, when CloudTrail names it.
    pub user_pool_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("not a CloudTrail record of a Cognito call: {0}")]
    Malformed(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Tokens of this user issued before `after` (epoch seconds) are refused from now on.
    User { user_id: String, after: i64 },
    /// Nothing to do, and why (a call that failed, another pool, a user we do not know).
    Ignored(&'static str),
}

fn text(map: Option<&serde_json::Map<String, serde_json::Value>>, key: &str) -> Option<String> {
    map.and_then(|m| m.get(key))
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != HIDDEN)
        .map(str::to_owned)
}

/// Parse the JSON EventBridge delivers. `Ok(None)` for a call that does not revoke anything
/// (another call, or one that failed).
pub fn parse_event(json: &str) -> Result<Option<RevokingCall>, RevocationError> {
    let envelope: Envelope =
        serde_json::from_str(json).map_err(|e| RevocationError::Malformed(e.to_string()))?;
    let d = envelope.detail;
    if !REVOKING_CALLS.contains(&d.event_name.as_str()) || d.error_code.is_some_and(|c| !c.is_empty()) {
        return Ok(None);
    }
    let at = DateTime::parse_from_rfc3339(&d.event_time)
        .map_err(|e| RevocationError::Malformed(format!("eventTime: {e}")))?
        .with_timezone(&Utc);
    Ok(Some(RevokingCall {
        event_name: d.event_name,
        at,
        sub: text(d.additional_event_data.as_ref(), "sub"),
        username: text(d.request_parameters.as_ref(), "username"),
        user_pool_id: text(d.request_parameters.as_ref(), "userPoolId"),
    }))
}

#[derive(Clone)]
pub struct Revocation {
    pub profiles: Arc<dyn Profiles>,
    pub auth: Arc<dyn AuthDirectory>,
    pub clock: Arc<dyn Clock>,
    /// `USER_POOL_ID`: events of other pools are ignored.
    pub user_pool_id: String,
}

impl Revocation {
    /// Apply one CloudTrail event. Idempotent (EventBridge delivers at least once): the
    /// cut-off only ever moves forward.
    pub async fn apply(&self, json: &str) -> Result<Revoked, RevocationError> {
        let Some(call) = parse_event(json)? else {
            return Ok(Revoked::Ignored("not a revoking call"));
        };
        if call
            .user_pool_id
            .as_deref()
            .is_some_and(|p| p != self.user_pool_id)
        {
            return Ok(Revoked::Ignored("another user pool"));
        }
        let Some(user_id) = self.user_of(&call).await? else {
            tracing::warn!(event = %call.event_name, "a revoking call names no user this service knows");
            return Ok(Revoked::Ignored("unknown user"));
        };
        // Every token issued up to the end of the call's second: CloudTrail's times have
        // whole seconds, and `iat` too.
        let after = call.at.timestamp() + 1;
        if !self.profiles.revoke_tokens(&user_id, after).await? {
            tracing::warn!(event = %call.event_name, user_id = %user_id, "a revoking call for a user without a profile");
            return Ok(Revoked::Ignored("no profile"));
        }
        tracing::info!(event = %call.event_name, user_id = %user_id, after, "tokens revoked");
        Ok(Revoked::User { user_id, after })
    }

    /// The profile the call is about: the `sub` CloudTrail names, else the username (a profile
    /// whose id it is, else the `sub` Cognito gives for it).
    async fn user_of(&self, call: &RevokingCall) -> Result<Option<String>, DependencyError> {
        if let Some(sub) = &call.sub {
            return Ok(Some(sub.clone()));
        }
        let Some(username) = &call.username else {
            return Ok(None);
        };
        if self.profiles.get(username).await?.is_some() {
            return Ok(Some(username.clone()));
        }
        self.auth.sub_of(username).await
    }
}

//! The EventBridge target of Cognito's CloudTrail events for the user pool
//! (`AdminUserGlobalSignOut`, `GlobalSignOut`, `AdminDisableUser`, `RevokeToken`,
//! `AdminDeleteUser`): sets the user's `tokens_valid_after`, so every request refuses the
//! tokens issued before (within a minute of the call: CloudTrail's delivery to EventBridge).
//! See [`domain::revocation`].
//!
//! A malformed event is logged and dropped (retrying it cannot help); a store failure answers
//! `Err`, so EventBridge retries the invocation (and, after its retries, the event lands in
//! the function's on-failure queue, which an alarm watches).

use domain::revocation::{Revocation, RevocationError, Revoked};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use std::time::Duration;

/// Every AWS call ends this long before the Lambda deadline.
pub const CALL_MARGIN: Duration = Duration::from_secs(1);

pub async fn handle(app: &Revocation, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let deadline = aws_adapters::deadline::before_lambda_deadline(event.context.deadline, CALL_MARGIN);
    let json = event.payload.to_string();
    match aws_adapters::deadline::within_opt(deadline, app.apply(&json)).await {
        Ok(Revoked::User { user_id, after }) => Ok(serde_json::json!({ "revoked": user_id, "after": after })),
        Ok(Revoked::Ignored(why)) => Ok(serde_json::json!({ "ignored": why })),
        Err(RevocationError::Malformed(why)) => {
            tracing::error!(%why, "not a CloudTrail event of a Cognito call; dropped");
            Ok(serde_json::json!({ "ignored": "malformed" }))
        }
        Err(RevocationError::Dependency(err)) => {
            tracing::error!(error = ?anyhow::Error::from(err), "could not record the revocation; EventBridge retries it");
            Err("the revocation could not be recorded".into())
        }
    }
}

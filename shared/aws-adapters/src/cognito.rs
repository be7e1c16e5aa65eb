//! Cognito user pool (`USER_POOL_ID`): lock a user out, delete them. A user already gone is done.

use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use domain::ports::{AuthDirectory, StoreResult};

const DEP: &str = "cognito";

#[derive(Clone, Debug)]
pub struct CognitoAuthDirectory {
    client: Client,
    user_pool_id: String,
}

impl CognitoAuthDirectory {
    pub fn new(client: Client, user_pool_id: impl Into<String>) -> Self {
        CognitoAuthDirectory {
            client,
            user_pool_id: user_pool_id.into(),
        }
    }
}

/// A Cognito call whose "user not found" means the work is already done.
fn gone_is_done<T, E>(result: Result<T, SdkError<E, HttpResponse>>, what: String) -> StoreResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("UserNotFoundException") => Ok(()),
        Err(e) => Err(sdk(DEP, what, e)),
    }
}

#[async_trait]
impl AuthDirectory for CognitoAuthDirectory {
    async fn lock_out(&self, username: &str) -> StoreResult<()> {
        let disabled = self
            .client
            .admin_disable_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await;
        gone_is_done(disabled, format!("AdminDisableUser in {}", self.user_pool_id))?;
        let signed_out = self
            .client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await;
        gone_is_done(
            signed_out,
            format!("AdminUserGlobalSignOut in {}", self.user_pool_id),
        )
    }

    async fn delete(&self, username: &str) -> StoreResult<()> {
        let deleted = self
            .client
            .admin_delete_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await;
        gone_is_done(deleted, format!("AdminDeleteUser in {}", self.user_pool_id))
    }
}

//! Cognito user pool (`USER_POOL_ID`): lock a user out, delete them. A user already gone is done.

use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
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

#[async_trait]
impl AuthDirectory for CognitoAuthDirectory {
    async fn lock_out(&self, username: &str) -> StoreResult<()> {
        match self
            .client
            .admin_disable_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                return Ok(())
            }
            Err(e) => return Err(sdk(DEP, format!("AdminDisableUser in {}", self.user_pool_id), e)),
        }
        match self
            .client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk(
                DEP,
                format!("AdminUserGlobalSignOut in {}", self.user_pool_id),
                e,
            )),
        }
    }

    async fn delete(&self, username: &str) -> StoreResult<()> {
        match self
            .client
            .admin_delete_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk(DEP, format!("AdminDeleteUser in {}", self.user_pool_id), e)),
        }
    }
}

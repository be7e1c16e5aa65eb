//! Cognito user pool (`USER_POOL_ID`): find a user by `sub`, lock them out, delete them.

use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use domain::ports::{AuthDirectory, LockedOut, StoreResult};

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

fn is_user_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("UserNotFoundException")
}

/// A `sub` in a `ListUsers` filter: the value is quoted, so quotes and backslashes are escaped.
fn sub_filter(sub: &str) -> String {
    let escaped = sub.replace('\\', "\\\\").replace('"', "\\\"");
    format!("sub = \"{escaped}\"")
}

#[async_trait]
impl AuthDirectory for CognitoAuthDirectory {
    async fn find_by_sub(&self, sub: &str) -> StoreResult<Option<String>> {
        let out = self
            .client
            .list_users()
            .user_pool_id(&self.user_pool_id)
            .filter(sub_filter(sub))
            .limit(2)
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(DEP, format!("ListUsers (by sub) in {}", self.user_pool_id), e))?;
        Ok(out.users().iter().find_map(|u| u.username().map(str::to_owned)))
    }

    async fn sub_of(&self, username: &str) -> StoreResult<Option<String>> {
        let out = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .within_deadline()
            .await;
        match out {
            Ok(user) => Ok(user
                .user_attributes()
                .iter()
                .find(|a| a.name() == "sub")
                .and_then(|a| a.value())
                .map(str::to_owned)),
            Err(e) if is_user_not_found(&e) => Ok(None),
            Err(e) => Err(sdk(DEP, format!("AdminGetUser in {}", self.user_pool_id), e)),
        }
    }

    async fn lock_out(&self, username: &str) -> StoreResult<LockedOut> {
        let disabled = self
            .client
            .admin_disable_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .within_deadline()
            .await;
        match disabled {
            Ok(_) => {}
            Err(e) if is_user_not_found(&e) => return Ok(LockedOut::NotFound),
            Err(e) => return Err(sdk(DEP, format!("AdminDisableUser in {}", self.user_pool_id), e)),
        }
        let signed_out = self
            .client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .within_deadline()
            .await;
        match signed_out {
            Ok(_) => Ok(LockedOut::Done),
            Err(e) if is_user_not_found(&e) => Ok(LockedOut::NotFound),
            Err(e) => Err(sdk(
                DEP,
                format!("AdminUserGlobalSignOut in {}", self.user_pool_id),
                e,
            )),
        }
    }

    async fn delete(&self, username: &str) -> StoreResult<()> {
        let deleted = self
            .client
            .admin_delete_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .within_deadline()
            .await;
        match deleted {
            // Already gone is done: this is the last step that needs the user.
            Ok(_) => Ok(()),
            Err(e) if is_user_not_found(&e) => Ok(()),
            Err(e) => Err(sdk(DEP, format!("AdminDeleteUser in {}", self.user_pool_id), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_filter_quotes_the_value() {
        assert_eq!(sub_filter("3f1c-9a"), r#"sub = "3f1c-9a""#);
        assert_eq!(sub_filter(r#"a"b\c"#), r#"sub = "a\"b\\c""#);
    }
}

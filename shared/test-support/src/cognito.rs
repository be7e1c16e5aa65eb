//! Cognito user pools and users in the emulator.

use crate::Emulator;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType, UsernameAttributeType};

/// A fresh user pool; returns its id.
pub async fn create_user_pool(emulator: &Emulator) -> String {
    pool(emulator, "pool-", None).await
}

/// A fresh user pool whose users sign in with their email address (`UsernameAttributes:
/// [email]`): a user created with an address as its username gets a generated username
/// (its `sub`), and the address becomes its `email` attribute.
pub async fn create_email_username_pool(emulator: &Emulator) -> String {
    pool(emulator, "email-pool-", Some(UsernameAttributeType::Email)).await
}

async fn pool(emulator: &Emulator, prefix: &str, username: Option<UsernameAttributeType>) -> String {
    let out = emulator
        .cognito()
        .create_user_pool()
        .pool_name(crate::unique(prefix))
        .set_username_attributes(username.map(|u| vec![u]))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create_user_pool: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e)
            )
        });
    out.user_pool()
        .and_then(|p| p.id())
        .expect("a user pool id")
        .to_owned()
}

/// The `Username` and `sub` of the user `login` names (a username, or an alias such as the
/// email address in an email-username pool).
pub async fn username_and_sub(emulator: &Emulator, pool_id: &str, login: &str) -> (String, String) {
    let out = emulator
        .cognito()
        .admin_get_user()
        .user_pool_id(pool_id)
        .username(login)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "admin_get_user: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e)
            )
        });
    let sub = out
        .user_attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .expect("every user has a sub")
        .to_owned();
    (out.username().to_owned(), sub)
}

/// A confirmed user (no invitation mail).
pub async fn create_user(emulator: &Emulator, pool_id: &str, username: &str, email: Option<&str>) {
    let attributes = email.map(|e| {
        vec![AttributeType::builder()
            .name("email")
            .value(e)
            .build()
            .expect("attribute")]
    });
    emulator
        .cognito()
        .admin_create_user()
        .user_pool_id(pool_id)
        .username(username)
        .message_action(MessageActionType::Suppress)
        .set_user_attributes(attributes)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "admin_create_user: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e)
            )
        });
}

/// A user's state: `None` when the user does not exist, else whether it is enabled.
pub async fn user_enabled(emulator: &Emulator, pool_id: &str, username: &str) -> Option<bool> {
    match emulator
        .cognito()
        .admin_get_user()
        .user_pool_id(pool_id)
        .username(username)
        .send()
        .await
    {
        Ok(out) => Some(out.enabled()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_user_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!(
            "admin_get_user: {}",
            aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e)
        ),
    }
}

//! Shared fixtures of the message function's tests: the backend, the events, the answer and
//! state checks.
#![allow(dead_code, unused_imports)]

pub use domain::memory::{InMemoryBackend, MailBehaviour, State};
pub use domain::messaging::{Messaging, MessagingSettings};
pub use domain::model::{EventType, MessageStatus, Profile};
pub use fixtures::{
    assert_only_denial, assert_problem, assert_state_unchanged, assert_state_unchanged_except, body_json,
    profile, sample_requests, tokens, tombstone, AUDIT,
};
pub use http_api::event::ApiEvent;
pub use lambda_http::{Body, Response};
pub use serde_json::{json, Value};
pub use std::sync::Arc;

pub const ROUTE: &str = "/admin/users/{userId}/messages";

pub fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(profile("owner-1", "owner", Some("owner1@example.com")));
    b.put_profile(profile("admin-1", "admin", Some("admin1@example.com")));
    b.put_profile(profile("plain-1", "user", Some("plain1@example.com")));
    b.put_profile(profile("user-1", "user", Some("User1@Example.com")));
    b.put_profile(profile("user-2", "user", None));
    b.put_profile(tombstone("gone-1", "user", "2025-02-01T00:00:00.000Z"));
    b
}

pub fn app(b: &Arc<InMemoryBackend>) -> Messaging {
    b.messaging(MessagingSettings::default())
}

pub fn post(caller: &str, target: &str) -> ApiEvent {
    ApiEvent::new("POST", ROUTE)
        .path_param("userId", target)
        .caller(caller)
}

pub fn get(caller: &str, target: &str) -> ApiEvent {
    ApiEvent::new("GET", ROUTE)
        .path_param("userId", target)
        .caller(caller)
}

pub async fn call(app: &Messaging, event: ApiEvent) -> Response<Body> {
    let app = message_user::MessageApp {
        messaging: app.clone(),
        tokens: tokens(),
    };
    message_user::handle(&app, event.into_request().expect("a valid API Gateway v2 event")).await
}

/// A refusal of a send: only the audit trail changed, by one `admin_action_denied` row.
pub fn assert_only_denial_recorded(before: &State, after: &State, actor: &str, target: &str, reason: &str) {
    assert_only_denial(before, after, Some(actor), target, "send_message", reason);
}

pub fn good_body() -> Value {
    json!({"subject": "About your account", "body": "Hello from Teleperson support."})
}

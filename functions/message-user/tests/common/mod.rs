//! Shared fixtures of the message function's tests: the backend, the events, the answer and
//! state checks.
#![allow(dead_code, unused_imports)]

pub use domain::memory::{InMemoryBackend, MailBehaviour, State};
pub use domain::messaging::{Messaging, MessagingSettings};
pub use domain::model::{EventType, MessageStatus, Profile};
pub use http_api::event::ApiEvent;
pub use lambda_http::{Body, Response};
pub use serde_json::{json, Value};
pub use std::sync::Arc;

pub const ROUTE: &str = "/admin/users/{userId}/messages";

pub fn profile(id: &str, role: &str, email: Option<&str>) -> Profile {
    Profile::active(
        id,
        role,
        email,
        &format!("Name of {id}"),
        "2025-01-01T00:00:00.000Z",
    )
}

pub fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(profile("owner-1", "owner", Some("owner1@example.com")));
    b.put_profile(profile("admin-1", "admin", Some("admin1@example.com")));
    b.put_profile(profile("plain-1", "user", Some("plain1@example.com")));
    b.put_profile(profile("user-1", "user", Some("User1@Example.com")));
    b.put_profile(profile("user-2", "user", None));
    let mut gone = profile("gone-1", "user", None);
    gone.display_name = Profile::TOMBSTONE_NAME.into();
    gone.deleted_at = Some("2025-02-01T00:00:00.000Z".into());
    b.put_profile(gone);
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

pub fn tokens() -> http_api::request::TokenRules {
    http_api::request::TokenRules::new(http_api::event::CLIENT_ID)
}

pub async fn call(app: &Messaging, event: ApiEvent) -> Response<Body> {
    let app = message_user::MessageApp {
        messaging: app.clone(),
        tokens: tokens(),
    };
    message_user::handle(&app, event.into_request().expect("a valid API Gateway v2 event")).await
}

pub fn body_json(r: &Response<Body>) -> Value {
    match r.body() {
        Body::Text(t) => serde_json::from_str(t).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// Asserts a problem+json answer with this status and code; returns the document.
pub fn assert_problem(r: &Response<Body>, status: u16, code: &str) -> Value {
    let doc = body_json(r);
    assert_eq!(
        (r.status().as_u16(), doc["code"].as_str()),
        (status, Some(code)),
        "{doc}"
    );
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(doc["status"], status);
    assert_eq!(doc["type"], format!("https://teleperson.com/problems/{code}"));
    assert!(
        doc["title"].is_string() && doc["detail"].is_string() && doc["request_id"].is_string(),
        "{doc}"
    );
    doc
}

/// Everything but `security_logs` is as it was.
pub fn assert_unchanged_except_logs(before: &State, after: &State) {
    assert_eq!(before.profiles, after.profiles);
    assert_eq!(before.send_leases, after.send_leases);
    assert_eq!(before.messages, after.messages);
    assert_eq!(before.jobs, after.jobs);
    assert_eq!(before.tables, after.tables);
    assert_eq!(before.idempotency, after.idempotency);
    assert_eq!(before.auth_users, after.auth_users);
    assert_eq!(before.sent_mail, after.sent_mail);
    assert_eq!(before.queue, after.queue);
    assert_eq!(before.rate, after.rate);
    assert_eq!(before.suppressed, after.suppressed);
}

/// Nothing at all changed.
pub fn assert_nothing_changed(before: &State, after: &State) {
    assert_unchanged_except_logs(before, after);
    assert_eq!(before.security_logs, after.security_logs);
}

/// A refusal: exactly one new `admin_action_denied` row with this reason, nothing else.
pub fn assert_only_denial_recorded(before: &State, after: &State, actor: &str, target: &str, reason: &str) {
    assert_unchanged_except_logs(before, after);
    let new: Vec<_> = after
        .security_logs
        .values()
        .filter(|e| !before.security_logs.contains_key(&e.event_id))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let e = new[0];
    assert_eq!(e.event_type, EventType::AdminActionDenied);
    assert_eq!(e.actor_id.as_deref(), Some(actor));
    assert_eq!(e.target_id, target);
    assert_eq!(e.fields.get("action").map(String::as_str), Some("send_message"));
    assert_eq!(e.fields.get("reason").map(String::as_str), Some(reason));
    assert_eq!(e.source_ip.as_deref(), Some(http_api::event::SOURCE_IP));
    assert!(
        e.fields.values().all(|v| !v.contains('@')),
        "no email in an audit row"
    );
}

pub fn good_body() -> Value {
    json!({"subject": "About your account", "body": "Hello from Teleperson support."})
}

//! The user list through real API Gateway v2 events, on the in-memory backend.

use domain::memory::InMemoryBackend;
use domain::model::Profile;
use domain::users::Directory;
use fixtures::{assert_only_denial, assert_problem, body_json, profile, sample_requests, tokens, tombstone};
use http_api::event::ApiEvent;
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// A fixture profile with this display name.
fn named(id: &str, role: &str, email: Option<&str>, name: &str) -> Profile {
    Profile {
        display_name: name.into(),
        ..profile(id, role, email)
    }
}

fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(named(
        "admin-1",
        "admin",
        Some("admin1@teleperson.com"),
        "Ada Admin",
    ));
    b.put_profile(named("plain-1", "user", Some("plain1@example.com"), "Pat Plain"));
    b.put_profile(named("user-1", "user", Some("user1@example.com"), "Uma User"));
    b.put_profile(named("user-2", "user", None, "Nora No-Mail"));
    b.put_profile(tombstone("gone-1", "user", "2025-02-01T00:00:00.000Z"));
    b
}

fn list(caller: &str) -> ApiEvent {
    ApiEvent::new("GET", "/admin/users").caller(caller)
}

async fn call(app: &Directory, event: ApiEvent) -> Response<Body> {
    let app = list_users::ListApp {
        directory: app.clone(),
        tokens: tokens(),
    };
    list_users::handle(&app, event.into_request().expect("a valid API Gateway v2 event")).await
}

fn ids(doc: &Value) -> Vec<&str> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_admin_lists_the_users_without_tombstones() {
    let b = backend();
    let r = call(&b.directory(), list("admin-1")).await;
    assert_eq!(r.status(), 200);
    let doc = body_json(&r);
    assert_eq!(ids(&doc), ["admin-1", "plain-1", "user-1", "user-2"]);
    assert_eq!(
        doc["items"][2],
        json!({"user_id": "user-1", "email": "user1@example.com", "display_name": "Uma User", "role": "user",
               "created_at": "2025-01-01T00:00:00.000Z"})
    );
    assert!(doc["items"][3]["email"].is_null());
    assert!(doc["next_cursor"].is_null());
}

#[tokio::test]
async fn the_list_is_searched_and_paged() {
    let b = backend();
    let d = b.directory();
    let doc = body_json(&call(&d, list("admin-1").query("q", "EXAMPLE.com")).await);
    assert_eq!(ids(&doc), ["plain-1", "user-1"]);

    let first = body_json(&call(&d, list("admin-1").query("limit", "2")).await);
    assert_eq!(ids(&first), ["admin-1", "plain-1"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = body_json(&call(&d, list("admin-1").query("limit", "2").query("cursor", cursor)).await);
    assert_eq!(ids(&second), ["user-1", "user-2"]);
}

#[tokio::test]
async fn a_plain_user_is_forbidden_role_and_the_refusal_is_audited() {
    let b = backend();
    let before = b.snapshot();
    assert_problem(
        &call(&b.directory(), list("plain-1")).await,
        403,
        "forbidden_role",
    );
    let after = b.snapshot();
    assert_eq!(after.security_logs.len(), 1);
    assert_only_denial(
        &before,
        &after,
        Some("plain-1"),
        "*",
        "list_users",
        "forbidden_role",
    );
}

#[tokio::test]
async fn a_request_without_claims_is_unauthenticated_and_audited_without_an_actor() {
    let b = backend();
    let before = b.snapshot();
    assert_problem(
        &call(&b.directory(), ApiEvent::new("GET", "/admin/users")).await,
        401,
        "unauthenticated",
    );
    let after = b.snapshot();
    assert_eq!(after.security_logs.len(), 1);
    assert_only_denial(&before, &after, None, "*", "list_users", "unauthenticated");
    assert_problem(
        &call(&b.directory(), list("stranger-1")).await,
        401,
        "unauthenticated",
    );
    assert_eq!(
        b.snapshot().security_logs.len(),
        2,
        "a sub without a profile is audited"
    );
}

#[tokio::test]
async fn bad_query_parameters_are_invalid_body() {
    let b = backend();
    let d = b.directory();
    for event in [
        list("admin-1").query("limit", "0"),
        list("admin-1").query("limit", "many"),
        list("admin-1").query("q", &"q".repeat(201)),
        list("admin-1").query("q", &format!(" {} ", "q".repeat(199))),
        list("admin-1").query("q", "\tana"),
        list("admin-1").query("q", "ana\u{85}"),
        list("admin-1").query("limit", ""),
        list("admin-1").query("limit", " 5"),
    ] {
        assert_problem(&call(&d, event).await, 400, "invalid_body");
    }
}

#[tokio::test]
async fn a_cursor_that_is_not_a_next_cursor_is_invalid_cursor_and_reads_nothing() {
    let b = backend();
    let d = b.directory();
    let before = b.snapshot();
    for bad in [
        "not a cursor",
        "eyJ1c2VyX2lkIjoidXNlci0xIn0=",
        "user-1~user-2",
        "user-1\u{85}",
        &"u".repeat(129),
    ] {
        let r = call(&d, list("admin-1").query("cursor", bad)).await;
        let doc = body_json(&r);
        assert_problem(&r, 400, "invalid_cursor");
        assert_eq!(doc["title"], "Invalid page cursor");
        assert!(doc["detail"].as_str().unwrap().contains("next_cursor"), "{doc}");
    }
    // Refused at the edge: no profile read, no audit row.
    assert_eq!(b.snapshot().security_logs, before.security_logs);
}

#[tokio::test]
async fn a_failing_store_is_dependency_unavailable() {
    let b = backend();
    b.fail_at(1);
    let r = call(&b.directory(), list("admin-1")).await;
    assert_problem(&r, 503, "dependency_unavailable");
    assert_eq!(r.headers()["retry-after"], "1");
}

#[tokio::test]
async fn other_methods_are_method_not_allowed() {
    let b = backend();
    let r = call(
        &b.directory(),
        ApiEvent::new("POST", "/admin/users").caller("admin-1"),
    )
    .await;
    assert_problem(&r, 405, "method_not_allowed");
}

/// The sample events kept beside the function answer as their names say.
#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let expected = [("list-users.json", 200), ("list-users-no-claims.json", 401)];
    let files: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    for ((file, status), req) in expected.into_iter().zip(sample_requests(&dir, &files)) {
        let app = list_users::ListApp {
            directory: backend().directory(),
            tokens: tokens(),
        };
        let r = list_users::handle(&app, req).await;
        assert_eq!(r.status().as_u16(), status, "{file}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "every sample event is checked here"
    );
}

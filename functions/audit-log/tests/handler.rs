//! The audit trail and the erasure lookup through real API Gateway v2 events, on the
//! in-memory backend.

use domain::deletion::{DeleteOutcome, DeletionSettings};
use domain::memory::InMemoryBackend;
use domain::messaging::{MessagingSettings, SendInput};
use domain::model::EventType;
use domain::types::{MessageBody, Subject, UserId};
use fixtures::{assert_problem, body_json, body_text, events_of, meta, profile, tokens};
use http_api::event::ApiEvent;
use lambda_http::{Body, Response};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const STORED_EMAIL: &str = "Target.User@Example.com";

/// An owner, an admin, a plain user and a target; one message sent to user-2 and user-1
/// deleted by the admin (so the log has a send, a deletion and its completion).
async fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(profile("owner-1", "owner", Some("owner@example.com")));
    b.put_profile(profile("admin-1", "admin", Some("admin1@example.com")));
    b.put_profile(profile("plain-1", "user", Some("plain@example.com")));
    b.put_profile(profile("user-1", "user", Some(STORED_EMAIL)));
    b.put_profile(profile("user-2", "user", Some("bystander@example.com")));
    for id in ["owner-1", "admin-1", "plain-1", "user-1", "user-2"] {
        b.put_auth_user(id);
    }
    b.messaging(MessagingSettings::default())
        .send(
            &meta("owner-1"),
            SendInput {
                target: UserId::parse("user-2").unwrap(),
                subject: Subject::parse(None).unwrap(),
                body: MessageBody::parse("Hello").unwrap(),
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let out = b
        .deletion(DeletionSettings::default())
        .delete(
            &meta("admin-1"),
            &UserId::parse("user-1").unwrap(),
            false,
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(matches!(out, DeleteOutcome::Completed(_)), "{out:?}");
    b
}

async fn call(b: &Arc<InMemoryBackend>, event: ApiEvent) -> Response<Body> {
    let app = audit_log::AuditApp {
        audit: b.audit_log(),
        tokens: tokens(),
    };
    audit_log::handle(&app, event.into_request().expect("a valid API Gateway v2 event")).await
}

fn audit(caller: &str) -> ApiEvent {
    ApiEvent::new("GET", "/admin/audit").caller(caller)
}

fn erasures(caller: &str, email: &str) -> ApiEvent {
    ApiEvent::new("GET", "/admin/erasures")
        .caller(caller)
        .query("email", email)
}

/// `created_at`, then `event_id`, descending.
fn is_newest_first(items: &[Value]) -> bool {
    let key = |i: &Value| {
        (
            i["created_at"].as_str().unwrap().to_owned(),
            i["event_id"].as_str().unwrap().to_owned(),
        )
    };
    items.windows(2).all(|w| key(&w[0]) > key(&w[1]))
}

fn types(doc: &Value) -> Vec<&str> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_admin_reads_the_whole_log_newest_first_with_every_field_of_the_rows() {
    let b = backend().await;
    let r = call(&b, audit("admin-1")).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let doc = body_json(&r);
    let mut kinds = types(&doc);
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "admin_deleted_user",
            "admin_deletion_completed",
            "admin_sent_user_message"
        ]
    );
    assert!(doc["next_cursor"].is_null());
    let items = doc["items"].as_array().unwrap();
    assert!(is_newest_first(items), "{doc}");
    let of = |kind: &str| items.iter().find(|i| i["event_type"] == kind).unwrap();
    let completed = of("admin_deletion_completed");
    assert_eq!(completed["actor_id"], "admin-1");
    assert_eq!(completed["target_id"], "user-1");
    assert_eq!(completed["source_ip"], "198.51.100.7");
    assert_eq!(completed["user_agent"], "tests");
    assert!(completed["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req-admin-1"));
    assert!(completed["deleted"].is_object(), "{completed}");
    assert!(
        completed["details"].get("deleted").is_none(),
        "the counts are not repeated"
    );
    let started = of("admin_deleted_user");
    let hash = domain::types::EmailAddress::parse(STORED_EMAIL)
        .unwrap()
        .sha256_hex();
    assert_eq!(started["details"]["target_email_sha256"], hash.as_str());
    assert_eq!(started["details"]["target_role"], "user");
    assert_eq!(started["details"]["job_id"], completed["details"]["job_id"]);
    let sent = of("admin_sent_user_message");
    assert!(sent["details"]["message_id"].is_string());
    // Every field the rows hold, and no other.
    let allowed: BTreeSet<&str> = [
        "event_id",
        "event_type",
        "created_at",
        "actor_id",
        "target_id",
        "request_id",
        "source_ip",
        "user_agent",
        "details",
        "deleted",
    ]
    .into();
    for item in items {
        for key in item.as_object().unwrap().keys() {
            assert!(allowed.contains(key.as_str()), "{key} in {item}");
        }
    }
    assert!(!body_text(&r).to_lowercase().contains("target.user@example.com"));
}

#[tokio::test]
async fn the_filters_narrow_the_log_and_pages_follow_the_cursor() {
    let b = backend().await;
    let doc = body_json(&call(&b, audit("owner-1").query("type", "admin_sent_user_message")).await);
    assert_eq!(types(&doc), ["admin_sent_user_message"]);
    let doc = body_json(&call(&b, audit("owner-1").query("actor", "admin-1")).await);
    let mut kinds = types(&doc);
    kinds.sort_unstable();
    assert_eq!(kinds, ["admin_deleted_user", "admin_deletion_completed"]);
    let doc = body_json(&call(&b, audit("owner-1").query("target", "user-2")).await);
    assert_eq!(types(&doc), ["admin_sent_user_message"]);
    let doc = body_json(
        &call(
            &b,
            audit("owner-1")
                .query("target", "user-1")
                .query("type", "admin_deleted_user"),
        )
        .await,
    );
    assert_eq!(types(&doc), ["admin_deleted_user"]);

    let whole = body_json(&call(&b, audit("owner-1")).await);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut event = audit("owner-1").query("limit", "1");
        if let Some(c) = &cursor {
            event = event.query("cursor", c);
        }
        let r = call(&b, event).await;
        assert_eq!(r.status(), 200, "{}", body_text(&r));
        let doc = body_json(&r);
        seen.extend(types(&doc).into_iter().map(str::to_owned));
        match doc["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        types(&whole),
        "pages of one row give the whole log, in order"
    );
}

#[tokio::test]
async fn bad_filters_and_cursors_are_refused_with_their_codes() {
    let b = backend().await;
    for (name, value, code) in [
        ("type", "admin_did_something", "invalid_body"),
        ("type", "", "invalid_body"),
        ("actor", "a b", "invalid_body"),
        ("actor", "*", "invalid_body"),
        ("target", "", "invalid_body"),
        ("limit", "0", "invalid_body"),
        ("limit", "101", "invalid_body"),
        ("cursor", "not a cursor", "invalid_cursor"),
        ("cursor", "2026~", "invalid_cursor"),
    ] {
        let r = call(&b, audit("admin-1").query(name, value)).await;
        assert_problem(&r, 400, code);
    }
    let r = call(&b, audit("admin-1").query("target", "*")).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
}

#[tokio::test]
async fn only_admins_and_owners_read_the_trail_and_other_methods_and_paths_are_refused() {
    let b = backend().await;
    let before = b.snapshot().security_logs.len();
    assert_problem(&call(&b, audit("plain-1")).await, 403, "forbidden_role");
    assert_problem(
        &call(&b, erasures("plain-1", STORED_EMAIL)).await,
        403,
        "forbidden_role",
    );
    assert_problem(
        &call(&b, ApiEvent::new("GET", "/admin/audit")).await,
        401,
        "unauthenticated",
    );
    let refusals = events_of(&b.snapshot(), EventType::AdminActionDenied).len();
    assert!(
        refusals >= 1 && b.snapshot().security_logs.len() > before,
        "refusals are audited"
    );
    let r = call(&b, ApiEvent::new("POST", "/admin/audit").caller("admin-1")).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.headers()["allow"], "GET");
    assert_problem(
        &call(&b, ApiEvent::new("DELETE", "/admin/erasures").caller("admin-1")).await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        &call(&b, ApiEvent::new("GET", "/admin/elsewhere").caller("admin-1")).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn an_erased_address_is_found_in_any_case_and_never_answered_back() {
    let b = backend().await;
    let r = call(&b, erasures("owner-1", "  TARGET.user@example.COM ")).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    let doc = body_json(&r);
    let hash = domain::types::EmailAddress::parse(STORED_EMAIL)
        .unwrap()
        .sha256_hex();
    assert_eq!(doc["email_sha256"], hash.as_str());
    let found = doc["erasures"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{doc}");
    let e = &found[0];
    let job = b.snapshot().jobs["user-1"].clone();
    assert_eq!(e["job_id"], job.job_id.as_str());
    assert_eq!(e["user_id"], "user-1");
    assert_eq!(e["actor_id"], "admin-1");
    assert_eq!(e["target_role"], "user");
    assert_eq!(e["status"], "completed");
    assert_eq!(e["completed_at"], job.completed_at.as_deref().unwrap());
    assert_eq!(e["late_pass"]["status"], "pending");
    assert_eq!(e["deleted"], serde_json::to_value(job.counts()).unwrap());
    assert!(
        !body_text(&r).to_lowercase().contains("target.user"),
        "the address is echoed"
    );

    let r = call(&b, erasures("owner-1", "nobody@example.com")).await;
    let doc = body_json(&r);
    assert_eq!(doc["erasures"], serde_json::json!([]));

    let lookups = events_of(&b.snapshot(), EventType::AdminLookedUpErasure);
    assert_eq!(lookups.len(), 2);
    let stored = format!("{lookups:?}").to_lowercase();
    assert!(
        !stored.contains("target.user") && !stored.contains("nobody@"),
        "{stored}"
    );
}

#[tokio::test]
async fn an_address_that_is_missing_or_malformed_is_refused_without_echoing_it() {
    let b = backend().await;
    let r = call(&b, ApiEvent::new("GET", "/admin/erasures").caller("admin-1")).await;
    assert_problem(&r, 400, "invalid_body");
    for bad in [
        "",
        "   ",
        "no-at-sign.example.com",
        "two@@example.com",
        "a@b",
        "a b@example.com",
    ] {
        let r = call(&b, erasures("admin-1", bad)).await;
        assert_problem(&r, 400, "invalid_body");
        if !bad.trim().is_empty() {
            assert!(!body_text(&r).contains(bad), "{} echoes {bad}", body_text(&r));
        }
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert_problem(&call(&b, erasures("admin-1", &long)).await, 400, "invalid_body");
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_and_no_lookup_row_claims_an_answer() {
    let b = backend().await;
    b.fail_at(2);
    let r = call(&b, erasures("admin-1", STORED_EMAIL)).await;
    assert_problem(&r, 503, "dependency_unavailable");
    b.fail_at(2);
    let r = call(&b, audit("admin-1")).await;
    assert_problem(&r, 503, "dependency_unavailable");
    assert!(!b
        .snapshot()
        .security_logs
        .values()
        .any(|e| e.event_type == EventType::AdminLookedUpErasure));
}

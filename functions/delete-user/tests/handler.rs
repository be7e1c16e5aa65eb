//! The delete function through real API Gateway v2 events (parsed by `lambda_http`), on the
//! in-memory backend: every refusal of the policy, the cascade, the 202 hand-over to the
//! worker, joining a running job, the status and the preview.

use delete_user::DeleteApp;
use domain::cascade::{self, CASCADE_PLAN};
use domain::deletion::{Continued, DeletionSettings};
use domain::memory::{InMemoryBackend, State};
use domain::model::{AdminMessage, EventType, MessageStatus};
use domain::types::EmailAddress;
use fixtures::{
    assert_only_denial, assert_problem, assert_state_unchanged, body_json, events_of, profile,
    sample_requests, tokens,
};
use http_api::event::ApiEvent;
use lambda_http::{Body, RequestExt, Response};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USER_ROUTE: &str = "/admin/users/{userId}";
const STATUS_ROUTE: &str = "/admin/users/{userId}/deletion";
const PREVIEW_ROUTE: &str = "/admin/users/{userId}/deletion-preview";

fn item(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Owners, admins, a plain user as callers; `user-1` has data in every table of the plan.
fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    for (id, role) in [
        ("owner-1", "owner"),
        ("owner-2", "owner"),
        ("admin-1", "admin"),
        ("admin-2", "admin"),
        ("plain-1", "user"),
        ("user-1", "user"),
        ("user-2", "user"),
    ] {
        b.put_profile(profile(id, role, Some(&format!("{id}@Example.com"))));
        b.put_auth_user(id);
    }
    let t = |name| cascade::table(name).expect("a table of the plan");
    for i in 0..5 {
        b.put_item(
            t("transactions"),
            item(&[("user_id", "user-1"), ("transaction_id", &format!("t{i}"))]),
        );
    }
    for i in 0..2 {
        b.put_item(
            t("followed_companies"),
            item(&[("user_id", "user-1"), ("company_id", &format!("c{i}"))]),
        );
        b.put_item(
            t("sessions"),
            item(&[("session_id", &format!("s{i}")), ("user_id", "user-1")]),
        );
    }
    b.put_item(
        t("billing_records"),
        item(&[("user_id", "user-1"), ("record_id", "b0")]),
    );
    b.put_item(
        t("help_requests"),
        item(&[("request_id", "h0"), ("user_id", "user-1")]),
    );
    // Someone else's data stays.
    b.put_item(
        t("transactions"),
        item(&[("user_id", "user-2"), ("transaction_id", "t9")]),
    );
    b.state().messages.insert(
        "m0".into(),
        AdminMessage {
            message_id: "m0".into(),
            sender_id: "admin-1".into(),
            recipient_id: "user-1".into(),
            subject: "s".into(),
            body: "b".into(),
            status: MessageStatus::Sent,
            ses_message_id: Some("ses-0".into()),
            error_code: None,
            created_at: "2025-01-02T00:00:00.000Z".into(),
            sent_at: Some("2025-01-02T00:00:00.000Z".into()),
            updated_at: None,
            attempt: None,
        },
    );
    b
}

fn app(b: &Arc<InMemoryBackend>, budget: Duration) -> DeleteApp {
    DeleteApp {
        tokens: tokens(),
        deletion: b.deletion(DeletionSettings {
            page_size: 2,
            ..DeletionSettings::default()
        }),
        budget,
    }
}

fn roomy(b: &Arc<InMemoryBackend>) -> DeleteApp {
    app(b, Duration::from_secs(20))
}

fn delete(caller: &str, target: &str) -> ApiEvent {
    ApiEvent::new("DELETE", USER_ROUTE)
        .path_param("userId", target)
        .caller(caller)
}

fn get(route: &str, caller: &str, target: &str) -> ApiEvent {
    ApiEvent::new("GET", route)
        .path_param("userId", target)
        .caller(caller)
}

async fn call(app: &DeleteApp, event: ApiEvent) -> Response<Body> {
    delete_user::handle(app, event.into_request().expect("a valid API Gateway v2 event")).await
}

/// A refusal of a deletion: only the audit trail changed, by one `admin_action_denied` row.
fn assert_only_denial_recorded(before: &State, after: &State, actor: &str, target: &str, reason: &str) {
    assert_only_denial(before, after, Some(actor), target, "delete_user", reason);
}

fn user_items_left(b: &InMemoryBackend, user: &str) -> usize {
    CASCADE_PLAN.iter().map(|t| b.count_user_items(t, user)).sum()
}

#[tokio::test]
async fn an_admin_deletes_a_user_and_everything_is_cascaded_with_counts() {
    let b = backend();
    let r = call(&roomy(&b), delete("admin-1", "user-1").request_id("req-del-1")).await;

    assert_eq!(r.status(), 200, "{:?}", r.body());
    let doc = body_json(&r);
    assert_eq!(doc["status"], "completed");
    let job_id = doc["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        doc["deleted"],
        json!({"transactions": 5, "followed_companies": 2, "billing_records": 1, "sessions": 2,
               "help_requests": 1, "admin_messages": 1})
    );

    let st = b.snapshot();
    let tomb = &st.profiles["user-1"];
    assert!(tomb.is_tombstone());
    assert_eq!(
        (tomb.email.as_deref(), tomb.display_name.as_str()),
        (None, "Deleted User")
    );
    assert!(!st.auth_users.contains_key("user-1"));
    assert_eq!(user_items_left(&b, "user-1"), 0);
    assert_eq!(
        b.count_user_items(cascade::table("transactions").unwrap(), "user-2"),
        1
    );

    let deleted = events_of(&st, EventType::AdminDeletedUser);
    assert_eq!(deleted.len(), 1);
    let e = &deleted[0];
    assert_eq!(e.actor_id.as_deref(), Some("admin-1"));
    assert_eq!(e.target_id, "user-1");
    assert_eq!(e.request_id, "req-del-1");
    assert_eq!(e.fields["target_role"], "user");
    assert_eq!(e.fields["job_id"], job_id);
    let hash = EmailAddress::parse("user-1@example.com").unwrap().sha256_hex();
    assert_eq!(e.fields["target_email_sha256"], hash);
    for event in st.security_logs.values() {
        assert!(
            event.fields.values().all(|v| !v.contains('@')),
            "no email in {event:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_body_or_an_empty_object_is_fine() {
    for event in [
        delete("admin-1", "user-1").body(""),
        delete("admin-1", "user-1").json(&json!({})),
    ] {
        let b = backend();
        assert_eq!(call(&roomy(&b), event).await.status(), 200);
    }
}

#[tokio::test]
async fn nobody_deletes_their_own_account_here() {
    let b = backend();
    let before = b.snapshot();
    let r = call(
        &roomy(&b),
        delete("owner-1", "owner-1").json(&json!({"acknowledge_privileged": true})),
    )
    .await;
    let doc = assert_problem(&r, 403, "self_deletion");
    assert!(doc["detail"].as_str().unwrap().contains("profile"));
    assert_only_denial_recorded(&before, &b.snapshot(), "owner-1", "owner-1", "self_deletion");
}

#[tokio::test]
async fn an_admin_cannot_delete_another_admin_or_an_owner() {
    for target in ["admin-2", "owner-1"] {
        let b = backend();
        let before = b.snapshot();
        let r = call(
            &roomy(&b),
            delete("admin-1", target).json(&json!({"acknowledge_privileged": true})),
        )
        .await;
        assert_problem(&r, 403, "privileged_target");
        assert_only_denial_recorded(&before, &b.snapshot(), "admin-1", target, "privileged_target");
    }
}

#[tokio::test]
async fn an_owner_must_acknowledge_deleting_an_admin_or_owner() {
    for body in [
        None,
        Some(json!({"acknowledge_privileged": false})),
        Some(json!({"acknowledge_privileged": null})),
    ] {
        let b = backend();
        let before = b.snapshot();
        let event = match &body {
            Some(v) => delete("owner-1", "admin-2").json(v),
            None => delete("owner-1", "admin-2"),
        };
        let r = call(&roomy(&b), event).await;
        assert_problem(&r, 422, "acknowledgement_required");
        assert_only_denial_recorded(
            &before,
            &b.snapshot(),
            "owner-1",
            "admin-2",
            "acknowledgement_required",
        );
    }
}

#[tokio::test]
async fn an_owner_deletes_an_admin_with_the_acknowledgement() {
    let b = backend();
    let r = call(
        &roomy(&b),
        delete("owner-1", "admin-2").json(&json!({"acknowledge_privileged": true})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let st = b.snapshot();
    assert!(st.profiles["admin-2"].is_tombstone());
    let e = st
        .security_logs
        .values()
        .find(|e| e.event_type == EventType::AdminDeletedUser)
        .unwrap();
    assert_eq!(e.fields["target_role"], "admin");
}

#[tokio::test]
async fn a_plain_user_is_forbidden_role() {
    let b = backend();
    let before = b.snapshot();
    assert_problem(
        &call(&roomy(&b), delete("plain-1", "user-1")).await,
        403,
        "forbidden_role",
    );
    assert_only_denial_recorded(&before, &b.snapshot(), "plain-1", "user-1", "forbidden_role");
}

#[tokio::test]
async fn an_unknown_target_is_user_not_found() {
    let b = backend();
    let before = b.snapshot();
    assert_problem(
        &call(&roomy(&b), delete("admin-1", "nobody-1")).await,
        404,
        "user_not_found",
    );
    assert_only_denial_recorded(&before, &b.snapshot(), "admin-1", "nobody-1", "user_not_found");
}

#[tokio::test]
async fn a_user_whose_deletion_completed_is_user_deleted() {
    let b = backend();
    let a = roomy(&b);
    assert_eq!(call(&a, delete("admin-1", "user-1")).await.status(), 200);
    let before = b.snapshot();
    assert_problem(&call(&a, delete("admin-2", "user-1")).await, 410, "user_deleted");
    assert_only_denial_recorded(&before, &b.snapshot(), "admin-2", "user-1", "user_deleted");
}

#[tokio::test]
async fn a_request_without_claims_or_from_a_stranger_is_unauthenticated() {
    const ACTION: &str = "delete_user";
    let b = backend();
    let before = b.snapshot();
    let anonymous = ApiEvent::new("DELETE", USER_ROUTE).path_param("userId", "user-1");
    assert_problem(&call(&roomy(&b), anonymous).await, 401, "unauthenticated");
    assert_only_denial(&before, &b.snapshot(), None, "user-1", ACTION, "unauthenticated");
    let before = b.snapshot();
    assert_problem(
        &call(&roomy(&b), delete("stranger-1", "user-1")).await,
        401,
        "unauthenticated",
    );
    assert_only_denial_recorded(&before, &b.snapshot(), "stranger-1", "user-1", "unauthenticated");
}

#[tokio::test]
async fn a_malformed_body_or_user_id_is_refused_before_anything_changes() {
    let b = backend();
    let a = roomy(&b);
    let before = b.snapshot();
    for event in [
        delete("owner-1", "admin-2").json(&json!({"acknowledge_privileged": "true"})),
        delete("owner-1", "admin-2").json(&json!({"acknowledge_privileged": 1})),
        delete("owner-1", "admin-2").json(&json!({"acknowledge": true})),
        delete("owner-1", "admin-2")
            .body(r#"{"acknowledge_privileged":false,"acknowledge_privileged":true}"#),
        delete("owner-1", "admin-2")
            .header("content-type", "text/plain")
            .body("yes"),
    ] {
        assert_problem(&call(&a, event).await, 400, "invalid_body");
    }
    assert_problem(
        &call(&a, delete("owner-1", "a%2Fb")).await,
        400,
        "invalid_user_id",
    );
    let big = json!({"acknowledge_privileged": true, "pad": "x".repeat(65 * 1024)});
    assert_problem(
        &call(&a, delete("owner-1", "admin-2").json(&big)).await,
        413,
        "payload_too_large",
    );
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_tiny_budget_answers_202_and_the_worker_finishes_the_job() {
    let b = backend();
    let a = app(&b, Duration::ZERO);
    let r = call(&a, delete("admin-1", "user-1")).await;

    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["location"], "/admin/users/user-1/deletion");
    let doc = body_json(&r);
    assert_eq!(doc["status"], "in_progress");
    let job_id = doc["job_id"].as_str().unwrap().to_owned();
    // The continuation queued before any step, and the one of the pause.
    let queued: Vec<_> = b
        .snapshot()
        .queue
        .iter()
        .map(|m| m.continuation.clone())
        .collect();
    assert_eq!(queued.len(), 2);
    assert!(queued.iter().all(|c| c.user_id == "user-1" && c.job_id == job_id));
    assert!(user_items_left(&b, "user-1") > 0);

    let status = body_json(&call(&a, get(STATUS_ROUTE, "admin-1", "user-1")).await);
    assert_eq!(status["status"], "in_progress");
    assert_eq!(status["job_id"], job_id.as_str());
    assert!(status.get("completed_at").is_none());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let continuation = queued[0].clone();
    assert_eq!(
        a.deletion.continue_job(&continuation, deadline).await.unwrap(),
        Continued::Completed
    );
    assert_eq!(user_items_left(&b, "user-1"), 0);
    let status = body_json(&call(&a, get(STATUS_ROUTE, "admin-1", "user-1")).await);
    assert_eq!(status["status"], "completed");
    assert_eq!(status["step"], "late_pass");
    assert_eq!(status["deleted"]["transactions"], 5);
    assert!(status["completed_at"].is_string());
    assert_eq!(status["late_pass"]["status"], "pending");
    assert!(status["late_pass"]["due_at"].is_string());
    assert_eq!(status["late_pass"]["late"]["sessions"], 0);
}

#[tokio::test]
async fn the_lambda_deadline_caps_the_budget() {
    let b = backend();
    let a = roomy(&b);
    let mut ctx = lambda_http::Context::default();
    let in_two_seconds = SystemTime::now() + Duration::from_secs(2);
    ctx.deadline = in_two_seconds.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let req = delete("admin-1", "user-1")
        .into_request()
        .unwrap()
        .with_lambda_context(ctx);
    // Two seconds left, minus the three-second margin: no time to run a step here.
    assert_eq!(delete_user::budget(Duration::from_secs(20), &req), Duration::ZERO);
    let r = delete_user::handle(&a, req).await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn a_second_delete_joins_the_paused_job_and_finishes_it() {
    let b = backend();
    let first = call(&app(&b, Duration::ZERO), delete("admin-1", "user-1")).await;
    assert_eq!(first.status(), 202);
    let job_id = body_json(&first)["job_id"].clone();

    let second = call(&roomy(&b), delete("admin-2", "user-1")).await;
    assert_eq!(second.status(), 200);
    assert_eq!(body_json(&second)["job_id"], job_id);
    let st = b.snapshot();
    assert_eq!(st.jobs.len(), 1);
    assert_eq!(events_of(&st, EventType::AdminDeletedUser).len(), 1);
}

#[tokio::test]
async fn a_delete_while_another_runner_holds_the_job_answers_202_with_that_job() {
    let b = backend();
    assert_eq!(
        call(&app(&b, Duration::ZERO), delete("admin-1", "user-1"))
            .await
            .status(),
        202
    );
    let job_id = {
        let mut st = b.state();
        let job = st.jobs.get_mut("user-1").unwrap();
        job.lease = Some(domain::job::Lease {
            owner: "another-runner".into(),
            until: "2999-01-01T00:00:00.000Z".into(),
        });
        job.job_id.clone()
    };
    let r = call(&roomy(&b), delete("admin-1", "user-1")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(body_json(&r)["job_id"], job_id.as_str());
}

#[tokio::test]
async fn the_deletion_status_of_a_user_without_a_job_is_not_started() {
    let b = backend();
    let r = call(&roomy(&b), get(STATUS_ROUTE, "admin-1", "user-2")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(&r),
        json!({"user_id": "user-2", "status": "not_started"})
    );
}

#[tokio::test]
async fn the_deletion_status_after_completion_has_every_job_field() {
    let b = backend();
    let a = roomy(&b);
    let job_id = body_json(&call(&a, delete("admin-1", "user-1")).await)["job_id"].clone();
    let doc = body_json(&call(&a, get(STATUS_ROUTE, "owner-1", "user-1")).await);
    assert_eq!(doc["user_id"], "user-1");
    assert_eq!(doc["job_id"], job_id);
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["step"], "late_pass");
    assert_eq!(doc["deleted"]["sessions"], 2);
    assert!(doc["created_at"].is_string() && doc["completed_at"].is_string());
    assert_eq!(doc["late_pass"]["status"], "pending");
    // Due one token lifetime (the default hour) after the lock-out.
    let due: chrono::DateTime<chrono::Utc> = doc["late_pass"]["due_at"].as_str().unwrap().parse().unwrap();
    let completed: chrono::DateTime<chrono::Utc> = doc["completed_at"].as_str().unwrap().parse().unwrap();
    let gap = (due - completed).num_seconds();
    assert!((3590..=3600).contains(&gap), "{gap}");
    // Once the late pass ran, its counts are part of the receipt.
    {
        let mut st = b.state();
        let job = st.jobs.get_mut("user-1").unwrap();
        job.late_pass_due_at = Some("2000-01-01T00:00:00.000Z".into());
    }
    let sessions = domain::cascade::table("sessions").unwrap();
    b.put_item(
        sessions,
        std::collections::BTreeMap::from([
            ("session_id".to_owned(), "late-1".to_owned()),
            ("user_id".to_owned(), "user-1".to_owned()),
        ]),
    );
    let job = b.snapshot().jobs["user-1"].clone();
    a.deletion
        .continue_job(
            &domain::deletion::Continuation::of(&job),
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    let doc = body_json(&call(&a, get(STATUS_ROUTE, "owner-1", "user-1")).await);
    assert_eq!(doc["step"], "done");
    assert_eq!(doc["late_pass"]["status"], "done");
    assert_eq!(doc["late_pass"]["late"]["sessions"], 1);
    assert_eq!(doc["deleted"]["sessions"], 2);
    assert!(doc["late_pass"]["done_at"].is_string());
}

#[tokio::test]
async fn the_deletion_status_is_refused_to_plain_users_and_for_unknown_users() {
    let b = backend();
    let a = roomy(&b);
    assert_problem(
        &call(&a, get(STATUS_ROUTE, "plain-1", "user-1")).await,
        403,
        "forbidden_role",
    );
    assert_problem(
        &call(&a, get(STATUS_ROUTE, "admin-1", "nobody-1")).await,
        404,
        "user_not_found",
    );
}

#[tokio::test]
async fn the_preview_counts_each_table_and_changes_nothing() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&roomy(&b), get(PREVIEW_ROUTE, "admin-1", "user-1")).await;
    assert_eq!(r.status(), 200);
    let doc = body_json(&r);
    assert_eq!(doc["user_id"], "user-1");
    assert_eq!(doc["role"], "user");
    assert_eq!(doc["tables"]["transactions"], "5");
    assert_eq!(doc["tables"]["admin_messages"], "1");
    assert_eq!(
        (
            doc["allowed"].as_bool(),
            doc["acknowledgement_required"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn the_preview_tells_an_owner_that_an_admin_needs_the_acknowledgement() {
    let b = backend();
    let doc = body_json(&call(&roomy(&b), get(PREVIEW_ROUTE, "owner-1", "admin-2")).await);
    assert_eq!(
        (
            doc["allowed"].as_bool(),
            doc["acknowledgement_required"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let doc = body_json(&call(&roomy(&b), get(PREVIEW_ROUTE, "admin-1", "admin-2")).await);
    assert_eq!(doc["allowed"], false);
    assert_eq!(doc["denied_code"], "privileged_target");
}

#[tokio::test]
async fn too_many_deletions_are_rate_limited() {
    let b = backend();
    let a = DeleteApp {
        deletion: b.deletion(DeletionSettings {
            deletions_per_hour: 1,
            ..DeletionSettings::default()
        }),
        budget: Duration::from_secs(20),
        tokens: tokens(),
    };
    assert_eq!(call(&a, delete("admin-1", "user-1")).await.status(), 200);
    let r = call(&a, delete("admin-1", "user-2")).await;
    assert_problem(&r, 429, "rate_limited");
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(!b.snapshot().profiles["user-2"].is_tombstone());
}

#[tokio::test]
async fn a_failing_store_is_dependency_unavailable_and_opaque() {
    let b = backend();
    let before = b.snapshot();
    b.fail_at(1);
    let r = call(&roomy(&b), delete("admin-1", "user-1")).await;
    let doc = assert_problem(&r, 503, "dependency_unavailable");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(!doc["detail"].as_str().unwrap().contains("injected"));
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_failure_mid_cascade_is_503_and_the_queued_continuation_finishes_the_job() {
    let b = backend();
    let a = roomy(&b);
    // Fail somewhere inside the cascade (after the audit, lock-out and anonymise steps).
    b.fail_at(16);
    let r = call(&a, delete("admin-1", "user-1")).await;
    assert_problem(&r, 503, "dependency_unavailable");
    b.fail_at(0);
    let st = b.snapshot();
    assert!(
        st.profiles["user-1"].is_tombstone(),
        "the failure came after the anonymise step"
    );
    assert!(
        user_items_left(&b, "user-1") > 0,
        "and before the cascade finished"
    );
    assert!(
        st.jobs["user-1"].lease.is_none(),
        "the failed runner let the job go"
    );
    drop(st);
    // Nobody sends the DELETE again: the continuations queued by the request finish it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for continuation in b.drain_queue() {
        a.deletion.continue_job(&continuation, deadline).await.unwrap();
    }
    assert_eq!(user_items_left(&b, "user-1"), 0);
    let job = b.snapshot().jobs["user-1"].clone();
    assert!(job.is_completed());
    assert_eq!(job.counts()["transactions"], 5);
}

#[tokio::test]
async fn wrong_methods_are_method_not_allowed() {
    let b = backend();
    let a = roomy(&b);
    let r = call(&a, get(USER_ROUTE, "admin-1", "user-1")).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.headers()["allow"], "DELETE");
    let r = call(
        &a,
        ApiEvent::new("POST", STATUS_ROUTE)
            .path_param("userId", "user-1")
            .caller("admin-1"),
    )
    .await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.headers()["allow"], "GET");
}

/// The sample events kept beside the function answer as their names say.
#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let expected = [
        ("delete-user.json", 200, None),
        ("delete-privileged-acknowledged.json", 200, None),
        (
            "delete-privileged-without-acknowledgement.json",
            422,
            Some("acknowledgement_required"),
        ),
        ("deletion-status.json", 200, None),
        ("deletion-preview.json", 200, None),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let files: Vec<&str> = expected.iter().map(|(f, ..)| *f).collect();
    for ((file, status, code), req) in expected.into_iter().zip(sample_requests(&dir, &files)) {
        let b = backend();
        let r = delete_user::handle(&roomy(&b), req).await;
        assert_eq!(r.status().as_u16(), status, "{file}: {:?}", r.body());
        if let Some(code) = code {
            assert_problem(&r, status, code);
        }
    }
}

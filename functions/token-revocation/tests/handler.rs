//! The token-revocation function on the recorded CloudTrail samples kept beside it, and what
//! a revocation does to the next request of that user (message-user and list-users).

use domain::memory::InMemoryBackend;
use domain::model::EventType;
use fixtures::{profile, tokens};
use http_api::event::ApiEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::sync::Arc;

const POOL: &str = "eu-west-1_Example";
/// The samples' `eventTime`, 2026-11-25T10:15:30Z, as epoch seconds.
const CALL_AT: i64 = 1_795_601_730;

fn backend() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    for (id, role) in [("admin-1", "admin"), ("owner-1", "owner"), ("user-1", "user")] {
        b.put_profile(profile(id, role, Some(&format!("{id}@example.com"))));
        b.put_auth_user(id);
    }
    b
}

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn apply(b: &Arc<InMemoryBackend>, event: Value) -> Value {
    token_revocation::handle(&b.revocation(POOL), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap()
}

/// A message send by admin-1 with a token issued at `iat`.
async fn send_as_admin(b: &Arc<InMemoryBackend>, iat: i64) -> u16 {
    let app = message_user::MessageApp {
        messaging: b.messaging(Default::default()),
        tokens: tokens(),
    };
    let req = ApiEvent::new("POST", "/admin/users/{userId}/messages")
        .path_param("userId", "user-1")
        .caller("admin-1")
        .claim("iat", &iat.to_string())
        .json(&json!({"body": "hello"}))
        .into_request()
        .unwrap();
    message_user::handle(&app, req).await.status().as_u16()
}

#[tokio::test]
async fn every_sample_answers_as_its_name_says() {
    let expected: &[(&str, Value)] = &[
        (
            "admin-user-global-sign-out.json",
            json!({"revoked": "admin-1", "after": CALL_AT + 1}),
        ),
        (
            "admin-disable-user.json",
            json!({"revoked": "admin-1", "after": CALL_AT + 1}),
        ),
        (
            "admin-delete-user.json",
            json!({"revoked": "admin-1", "after": CALL_AT + 1}),
        ),
        (
            "global-sign-out.json",
            json!({"revoked": "admin-1", "after": CALL_AT + 1}),
        ),
        (
            "revoke-token.json",
            json!({"revoked": "admin-1", "after": CALL_AT + 1}),
        ),
        (
            "admin-disable-user-failed.json",
            json!({"ignored": "not a revoking call"}),
        ),
        ("admin-get-user.json", json!({"ignored": "not a revoking call"})),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut listed: Vec<String> = expected.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "every sample is checked here");
    for (file, answer) in expected {
        let b = backend();
        assert_eq!(&apply(&b, sample(file)).await, answer, "{file}");
    }
}

#[tokio::test]
async fn after_a_sign_out_the_older_tokens_are_refused_and_audited_and_newer_ones_work() {
    let b = backend();
    assert_eq!(send_as_admin(&b, CALL_AT - 60).await, 201, "before the sign-out");
    apply(&b, sample("admin-user-global-sign-out.json")).await;
    assert_eq!(
        b.snapshot().profiles["admin-1"].tokens_valid_after,
        Some(CALL_AT + 1)
    );
    let sent = b.snapshot().sent_mail.len();
    // A token issued before the sign-out (and one issued in its very second) no longer works.
    for iat in [CALL_AT - 60, CALL_AT] {
        assert_eq!(send_as_admin(&b, iat).await, 401, "iat {iat}");
    }
    assert_eq!(b.snapshot().sent_mail.len(), sent, "nothing more sent");
    let refusals = b
        .snapshot()
        .security_logs
        .values()
        .filter(|e| e.event_type == EventType::AdminActionDenied && e.actor_id.as_deref() == Some("admin-1"))
        .count();
    assert_eq!(refusals, 2, "each refusal is audited");
    // A token from a new sign-in works.
    assert_eq!(send_as_admin(&b, CALL_AT + 5).await, 201);
    // So does listing users, with a new token only.
    let list = |iat: i64| {
        let app = list_users::ListApp {
            directory: b.directory(),
            tokens: tokens(),
        };
        async move {
            let req = ApiEvent::new("GET", "/admin/users")
                .caller("admin-1")
                .claim("iat", &iat.to_string())
                .into_request()
                .unwrap();
            list_users::handle(&app, req).await.status().as_u16()
        }
    };
    assert_eq!(list(CALL_AT - 1).await, 401);
    assert_eq!(list(CALL_AT + 5).await, 200);
}

#[tokio::test]
async fn the_cut_off_only_moves_forward_and_a_repeat_changes_nothing() {
    let b = backend();
    apply(&b, sample("global-sign-out.json")).await;
    // An older call delivered late (EventBridge is at least once, in any order).
    let mut older = sample("admin-disable-user.json");
    older["detail"]["eventTime"] = json!("2026-11-25T09:00:00Z");
    apply(&b, older).await;
    apply(&b, sample("global-sign-out.json")).await;
    assert_eq!(
        b.snapshot().profiles["admin-1"].tokens_valid_after,
        Some(CALL_AT + 1)
    );
}

#[tokio::test]
async fn a_username_that_is_not_a_profile_id_is_resolved_through_cognito() {
    let b = backend();
    // The pool's usernames are email addresses: the profile id is the user's sub.
    b.state().auth_users.remove("admin-1");
    b.put_auth_user_with_sub("admin.one@example.com", "admin-1");
    let mut event = sample("admin-disable-user.json");
    event["detail"]["requestParameters"]["username"] = json!("admin.one@example.com");
    assert_eq!(
        apply(&b, event).await,
        json!({"revoked": "admin-1", "after": CALL_AT + 1})
    );
}

#[tokio::test]
async fn events_of_another_pool_unknown_users_and_malformed_events_change_nothing() {
    let b = backend();
    let before = b.snapshot().profiles;
    let mut other_pool = sample("admin-disable-user.json");
    other_pool["detail"]["requestParameters"]["userPoolId"] = json!("eu-west-1_Other");
    assert_eq!(
        apply(&b, other_pool).await,
        json!({"ignored": "another user pool"})
    );
    let mut unknown = sample("admin-disable-user.json");
    unknown["detail"]["requestParameters"]["username"] = json!("ghost");
    assert_eq!(apply(&b, unknown).await, json!({"ignored": "unknown user"}));
    assert_eq!(
        apply(&b, json!({"detail": "nope"})).await,
        json!({"ignored": "malformed"})
    );
    assert_eq!(b.snapshot().profiles, before);
}

#[tokio::test]
async fn a_store_failure_is_an_error_so_eventbridge_retries() {
    let b = backend();
    b.fail_at(1);
    let out = token_revocation::handle(
        &b.revocation(POOL),
        LambdaEvent::new(sample("global-sign-out.json"), Context::default()),
    )
    .await;
    assert!(out.is_err());
}

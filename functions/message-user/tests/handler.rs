//! The message function through real API Gateway v2 events (parsed by `lambda_http`), on the
//! in-memory backend: status, problem code, body and what was stored, for every row of
//! the HTTP contract (`docs/openapi.yaml`) this function can answer.

mod common;

use common::*;

#[tokio::test]
async fn an_owner_sends_a_message_and_it_is_stored_audited_and_mailed() {
    let b = backend();
    let r = call(
        &app(&b),
        post("owner-1", "user-1")
            .request_id("req-send-1")
            .json(&good_body()),
    )
    .await;

    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().get("idempotent-replayed").is_none());
    let doc = body_json(&r);
    assert_eq!(doc["status"], "sent");
    let message_id = doc["message_id"].as_str().unwrap().to_owned();
    assert!(doc["ses_message_id"].as_str().unwrap().starts_with("mem-"));
    assert!(doc["sent_at"].is_string());

    let st = b.snapshot();
    let row = &st.messages.get(&message_id).expect("the message row");
    assert_eq!(
        (row.sender_id.as_str(), row.recipient_id.as_str()),
        ("owner-1", "user-1")
    );
    assert_eq!(row.status, MessageStatus::Sent);
    assert_eq!(
        (row.subject.as_str(), row.body.as_str()),
        ("About your account", "Hello from Teleperson support.")
    );
    assert_eq!(row.ses_message_id.as_deref(), doc["ses_message_id"].as_str());

    let events: Vec<_> = st.security_logs.values().collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::AdminSentUserMessage);
    assert_eq!(events[0].actor_id.as_deref(), Some("owner-1"));
    assert_eq!(events[0].target_id, "user-1");
    assert_eq!(events[0].request_id, "req-send-1");
    assert_eq!(events[0].fields.get("message_id"), Some(&message_id));

    assert_eq!(st.sent_mail.len(), 1);
    let mail = &st.sent_mail[0];
    assert_eq!(mail.to, "User1@Example.com", "delivered to the address as stored");
    assert_eq!(mail.reply_to, "hello@teleperson.com");
    assert_eq!(mail.subject, "About your account");
}

#[tokio::test]
async fn an_admin_may_send_too_and_a_blank_or_missing_subject_is_the_default() {
    let b = backend();
    let a = app(&b);
    for body in [
        json!({"body": "Hi"}),
        json!({"subject": null, "body": "Hi"}),
        json!({"subject": "   ", "body": "Hi"}),
    ] {
        let r = call(&a, post("admin-1", "user-1").json(&body)).await;
        assert_eq!(r.status(), 201, "{body}");
    }
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 3);
    assert!(st
        .sent_mail
        .iter()
        .all(|m| m.subject == "A message from Teleperson"));
}

#[tokio::test]
async fn a_base64_encoded_body_is_accepted() {
    let b = backend();
    let raw = serde_json::to_vec(&json!({"body": "Grüße aus dem Support 👋"})).unwrap();
    let r = call(
        &app(&b),
        post("owner-1", "user-1")
            .header("content-type", "application/json")
            .base64_body(&raw),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(b.snapshot().sent_mail[0].body, "Grüße aus dem Support 👋");
}

#[tokio::test]
async fn a_malformed_body_is_invalid_body_and_changes_nothing() {
    let b = backend();
    let a = app(&b);
    let before = b.snapshot();
    let cases: Vec<(ApiEvent, &str)> = vec![
        (post("owner-1", "user-1").body("{not json"), "not json"),
        (
            post("owner-1", "user-1").body(r#"{"body":"a","body":"b"}"#),
            "duplicate key",
        ),
        (
            post("owner-1", "user-1").body(r#"{"body":"a","bcc":"x@evil.example"}"#),
            "unknown field",
        ),
        (
            post("owner-1", "user-1").body(r#"{"body":42}"#),
            "number for a string",
        ),
        (
            post("owner-1", "user-1").body(r#"{"subject":true,"body":"a"}"#),
            "bool for a string",
        ),
        (post("owner-1", "user-1").body(r#"["a","b"]"#), "not an object"),
        (
            post("owner-1", "user-1")
                .header("content-type", "text/plain")
                .body(r#"{"body":"a"}"#),
            "text/plain",
        ),
        (
            post("owner-1", "user-1").base64_body(b"{\"body\":\"\xc3\x28\"}"),
            "invalid UTF-8",
        ),
    ];
    for (event, why) in cases {
        let r = call(&a, event).await;
        assert_eq!(r.status(), 400, "{why}");
        assert_problem(&r, 400, "invalid_body");
    }
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_invalid_body_and_says_so() {
    let b = backend();
    let a = app(&b);
    let before = b.snapshot();
    for key in ["has space", &"k".repeat(256), "ünïcode"] {
        let r = call(
            &a,
            post("owner-1", "user-1")
                .header("Idempotency-Key", key)
                .json(&good_body()),
        )
        .await;
        let doc = assert_problem(&r, 400, "invalid_body");
        assert!(
            doc["detail"].as_str().unwrap().contains("Idempotency-Key"),
            "{doc}"
        );
    }
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_subject_with_a_line_break_or_over_200_characters_is_subject_invalid() {
    let b = backend();
    let a = app(&b);
    let before = b.snapshot();
    for subject in [
        "Hi\r\nBcc: x@evil.example".to_owned(),
        "a\u{0}b".to_owned(),
        "é".repeat(201),
    ] {
        let r = call(
            &a,
            post("owner-1", "user-1").json(&json!({"subject": subject, "body": "x"})),
        )
        .await;
        assert_problem(&r, 400, "subject_invalid");
    }
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_missing_blank_or_too_long_body_is_body_invalid() {
    let b = backend();
    let a = app(&b);
    let before = b.snapshot();
    let cases = [
        post("owner-1", "user-1"),
        post("owner-1", "user-1").json(&json!({"subject": "Hi"})),
        post("owner-1", "user-1").json(&json!({"body": null})),
        post("owner-1", "user-1").json(&json!({"body": " \n "})),
        post("owner-1", "user-1").json(&json!({"body": "x".repeat(10_001)})),
        post("owner-1", "user-1").json(&json!({"body": "bell\u{7}"})),
    ];
    for event in cases {
        assert_problem(&call(&a, event).await, 400, "body_invalid");
    }
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_body_of_exactly_10000_characters_is_sent() {
    let b = backend();
    let r = call(
        &app(&b),
        post("owner-1", "user-1").json(&json!({"body": "é".repeat(10_000)})),
    )
    .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn a_malformed_user_id_is_invalid_user_id() {
    let b = backend();
    let a = app(&b);
    let before = b.snapshot();
    for id in ["a b", "../etc", &"u".repeat(129)] {
        let r = call(&a, post("owner-1", id).json(&good_body())).await;
        assert_problem(&r, 400, "invalid_user_id");
    }
    let r = call(
        &a,
        ApiEvent::new("POST", "/admin/users")
            .caller("owner-1")
            .json(&good_body()),
    )
    .await;
    assert_problem(&r, 400, "invalid_user_id");
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_request_without_claims_is_unauthenticated_and_only_audited() {
    const ACTION: &str = "send_message";
    let b = backend();
    let before = b.snapshot();
    let event = ApiEvent::new("POST", ROUTE)
        .path_param("userId", "user-1")
        .json(&good_body());
    assert_problem(&call(&app(&b), event).await, 401, "unauthenticated");
    assert_only_denial(&before, &b.snapshot(), None, "user-1", ACTION, "unauthenticated");
}

#[tokio::test]
async fn a_caller_without_a_profile_is_unauthenticated_and_the_refusal_is_audited() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&app(&b), post("stranger-1", "user-1").json(&good_body())).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_only_denial_recorded(&before, &b.snapshot(), "stranger-1", "user-1", "unauthenticated");
}

#[tokio::test]
async fn a_deleted_admin_is_unauthenticated() {
    let b = backend();
    let mut former = profile("former-admin", "admin", None);
    former.deleted_at = Some("2025-03-01T00:00:00.000Z".into());
    b.put_profile(former);
    let before = b.snapshot();
    let r = call(&app(&b), post("former-admin", "user-1").json(&good_body())).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_only_denial_recorded(
        &before,
        &b.snapshot(),
        "former-admin",
        "user-1",
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_plain_user_is_forbidden_role_and_the_refusal_is_audited() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&app(&b), post("plain-1", "user-1").json(&good_body())).await;
    assert_problem(&r, 403, "forbidden_role");
    assert_only_denial_recorded(&before, &b.snapshot(), "plain-1", "user-1", "forbidden_role");
}

#[tokio::test]
async fn an_unknown_target_is_user_not_found() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&app(&b), post("admin-1", "nobody-1").json(&good_body())).await;
    assert_problem(&r, 404, "user_not_found");
    assert_only_denial_recorded(&before, &b.snapshot(), "admin-1", "nobody-1", "user_not_found");
}

#[tokio::test]
async fn a_deleted_target_is_user_deleted() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&app(&b), post("admin-1", "gone-1").json(&good_body())).await;
    assert_problem(&r, 410, "user_deleted");
    assert_only_denial_recorded(&before, &b.snapshot(), "admin-1", "gone-1", "user_deleted");
}

#[tokio::test]
async fn a_body_over_64_kib_is_payload_too_large() {
    let b = backend();
    let before = b.snapshot();
    let big = json!({"body": "x".repeat(65 * 1024)});
    let r = call(&app(&b), post("owner-1", "user-1").json(&big)).await;
    assert_problem(&r, 413, "payload_too_large");
    let raw = serde_json::to_vec(&big).unwrap();
    let r = call(&app(&b), post("owner-1", "user-1").base64_body(&raw)).await;
    assert_problem(&r, 413, "payload_too_large");
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn a_target_without_an_email_address_is_no_email_address() {
    let b = backend();
    let before = b.snapshot();
    let r = call(&app(&b), post("owner-1", "user-2").json(&good_body())).await;
    assert_problem(&r, 422, "no_email_address");
    let after = b.snapshot();
    assert_state_unchanged(&before, &after);
}

#[tokio::test]
async fn the_same_key_and_payload_replays_the_first_answer_and_sends_one_mail() {
    let b = backend();
    let a = app(&b);
    let event = || {
        post("owner-1", "user-1")
            .header("Idempotency-Key", "9b2f-01")
            .json(&good_body())
    };
    let first = call(&a, event()).await;
    let second = call(&a, event()).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (201, 201));
    assert_eq!(body_json(&first), body_json(&second));
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    assert_eq!(st.messages.len(), 1);
    assert_eq!(st.security_logs.len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_send_one_mail() {
    let b = backend();
    let a = app(&b);
    let event = || {
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-concurrent")
            .json(&good_body())
    };
    let (x, y) = tokio::join!(call(&a, event()), call(&a, event()));
    assert_eq!((x.status().as_u16(), y.status().as_u16()), (201, 201));
    assert_eq!(body_json(&x), body_json(&y));
    let replayed = [&x, &y]
        .iter()
        .filter(|r| r.headers().get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 1);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn the_same_key_from_another_admin_is_a_separate_request() {
    let b = backend();
    let a = app(&b);
    let first = call(
        &a,
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-1")
            .json(&good_body()),
    )
    .await;
    let second = call(
        &a,
        post("admin-1", "user-1")
            .header("Idempotency-Key", "k-1")
            .json(&good_body()),
    )
    .await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (201, 201));
    assert!(second.headers().get("idempotent-replayed").is_none());
    assert_eq!(b.snapshot().sent_mail.len(), 2);
}

#[tokio::test]
async fn the_same_key_with_a_different_payload_is_idempotency_key_reused() {
    let b = backend();
    let a = app(&b);
    let first = call(
        &a,
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-2")
            .json(&good_body()),
    )
    .await;
    assert_eq!(first.status(), 201);
    let before = b.snapshot();
    let other = json!({"subject": "About your account", "body": "A different text."});
    let r = call(
        &a,
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-2")
            .json(&other),
    )
    .await;
    assert_problem(&r, 422, "idempotency_key_reused");
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn an_ses_throttle_is_rate_limited_with_retry_after() {
    let b = backend();
    b.set_mail_behaviour(MailBehaviour::Throttle);
    let r = call(&app(&b), post("owner-1", "user-1").json(&good_body())).await;
    assert_problem(&r, 429, "rate_limited");
    assert_eq!(r.headers()["retry-after"], "1");
    let st = b.snapshot();
    assert!(st.sent_mail.is_empty());
    // The attempt is audited (it was handed to SES); its row says SES did not take it.
    let row = st.messages.values().find(|m| m.recipient_id == "user-1").unwrap();
    assert_eq!(row.status, domain::model::MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("TooManyRequestsException"));
}

#[tokio::test]
async fn the_per_admin_limit_is_rate_limited_with_retry_after_and_audited() {
    let b = backend();
    let a = b.messaging(MessagingSettings {
        messages_per_minute: 1,
        ..MessagingSettings::default()
    });
    assert_eq!(
        call(&a, post("admin-1", "user-1").json(&good_body()))
            .await
            .status(),
        201
    );
    let r = call(&a, post("admin-1", "user-1").json(&good_body())).await;
    assert_problem(&r, 429, "rate_limited");
    let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs));
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    assert!(st
        .security_logs
        .values()
        .any(|e| e.event_type == EventType::AdminActionDenied
            && e.fields.get("reason").map(String::as_str) == Some("rate_limited")));
    // Another admin has their own allowance.
    assert_eq!(
        call(&a, post("owner-1", "user-1").json(&good_body()))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_rejected_mail_is_mail_rejected_and_the_row_is_kept_failed() {
    let b = backend();
    b.set_mail_behaviour(MailBehaviour::Reject);
    let r = call(&app(&b), post("owner-1", "user-1").json(&good_body())).await;
    let doc = assert_problem(&r, 502, "mail_rejected");
    let message_id = doc["message_id"]
        .as_str()
        .expect("the failed message's id")
        .to_owned();
    let st = b.snapshot();
    let row = &st.messages.get(&message_id).expect("the message row");
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.error_code.as_deref(), Some("MessageRejected"));
    assert!(st.sent_mail.is_empty());
}

#[tokio::test]
async fn a_rejected_send_frees_its_key_so_a_retry_may_send_it() {
    let b = backend();
    b.set_mail_behaviour(MailBehaviour::Reject);
    let a = app(&b);
    let event = || {
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-rej")
            .json(&good_body())
    };
    let first = call(&a, event()).await;
    assert_problem(&first, 502, "mail_rejected");
    assert!(b.snapshot().sent_mail.is_empty());
    // A definite no sent nothing: the same key tries again (say, once sending is resumed).
    b.set_mail_behaviour(MailBehaviour::Accept);
    let second = call(&a, event()).await;
    assert_eq!(second.status(), 201);
    assert_ne!(body_json(&first)["message_id"], body_json(&second)["message_id"]);
    assert_eq!(b.snapshot().sent_mail.len(), 1);
}

#[tokio::test]
async fn the_same_key_while_the_first_request_is_in_flight_is_request_in_progress() {
    let b = backend();
    let a = app(&b);
    // The first request holds the key (it died before sending: the lease has not run out).
    b.inject(&[(5, domain::memory::Fault::Crash)]);
    let first = post("owner-1", "user-1")
        .header("Idempotency-Key", "k-busy")
        .json(&good_body());
    tokio::select! {
        _ = call(&a, first) => panic!("expected the crash"),
        _ = b.crashed() => {}
    }
    b.inject(&[]);
    let r = call(
        &a,
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-busy")
            .json(&good_body()),
    )
    .await;
    let doc = assert_problem(&r, 409, "request_in_progress");
    assert!(doc["message_id"].is_string());
    let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    assert!(b.snapshot().sent_mail.is_empty());
}

#[tokio::test]
async fn an_unavailable_mail_provider_is_dependency_unavailable() {
    let b = backend();
    b.set_mail_behaviour(MailBehaviour::NotSent);
    let r = call(&app(&b), post("owner-1", "user-1").json(&good_body())).await;
    let doc = assert_problem(&r, 503, "dependency_unavailable");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        !doc["detail"].as_str().unwrap().contains("injected"),
        "5xx bodies are opaque"
    );
}

#[tokio::test]
async fn an_unconfirmed_send_is_202_pending_and_the_same_key_never_sends_again() {
    let b = backend();
    b.set_mail_behaviour(MailBehaviour::Unconfirmed);
    let send = || {
        post("owner-1", "user-1")
            .header("idempotency-key", "lost-1")
            .json(&good_body())
    };
    let first = call(&app(&b), send()).await;
    assert_eq!(first.status(), 202);
    let doc = body_json(&first);
    assert_eq!(doc["status"], "pending");
    let message_id = doc["message_id"].as_str().unwrap().to_owned();
    b.set_mail_behaviour(MailBehaviour::Accept);
    let second = call(&app(&b), send()).await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(body_json(&second), doc);
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    assert_eq!(
        st.messages.get(&message_id).expect("the message row").status,
        domain::model::MessageStatus::Pending
    );
}

#[tokio::test]
async fn a_failing_store_is_dependency_unavailable_and_opaque() {
    let b = backend();
    let before = b.snapshot();
    b.fail_at(1);
    let r = call(&app(&b), post("owner-1", "user-1").json(&good_body())).await;
    let doc = assert_problem(&r, 503, "dependency_unavailable");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(!doc["detail"].as_str().unwrap().contains("injected"));
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn other_methods_are_method_not_allowed() {
    let b = backend();
    for method in ["PUT", "DELETE", "PATCH"] {
        let event = ApiEvent::new(method, ROUTE)
            .path_param("userId", "user-1")
            .caller("owner-1");
        let r = call(&app(&b), event).await;
        assert_problem(&r, 405, "method_not_allowed");
        assert_eq!(r.headers()["allow"], "GET, POST");
    }
}

#[tokio::test]
async fn the_history_lists_messages_newest_first_page_by_page() {
    let b = backend();
    let a = app(&b);
    for i in 0..3 {
        let body = json!({"subject": format!("Note {i}"), "body": format!("Body {i}")});
        assert_eq!(
            call(&a, post("owner-1", "user-1").json(&body)).await.status(),
            201
        );
        tokio::task::yield_now().await;
    }
    let r = call(&a, get("admin-1", "user-1").query("limit", "2")).await;
    assert_eq!(r.status(), 200);
    let page = body_json(&r);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let item = &items[0];
    for field in [
        "message_id",
        "sender_id",
        "subject",
        "body",
        "status",
        "ses_message_id",
        "created_at",
        "sent_at",
        "updated_at",
    ] {
        assert!(item[field].is_string(), "{field} in {item}");
    }
    assert!(item["error_code"].is_null());
    assert_eq!(item["sender_id"], "owner-1");
    assert_eq!(item["status"], "sent");
    assert!(items[0]["created_at"].as_str() >= items[1]["created_at"].as_str());
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();

    let r = call(
        &a,
        get("admin-1", "user-1")
            .query("limit", "2")
            .query("cursor", &cursor),
    )
    .await;
    let page = body_json(&r);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_null());
}

#[tokio::test]
async fn a_history_cursor_that_is_not_a_next_cursor_is_invalid_cursor_and_reads_nothing() {
    let b = backend();
    let a = app(&b);
    assert_eq!(
        call(&a, post("owner-1", "user-1").json(&json!({"body": "hi"})))
            .await
            .status(),
        201
    );
    let before = b.snapshot();
    for bad in [
        "not a cursor",
        "eyJtZXNzYWdlX2lkIjoibS0xIn0",
        "2025-01-01T00:00:00.000Z",
        "a~b~c",
        "2025-01-01T00:00:00.000Z~m 1",
    ] {
        let r = call(&a, get("admin-1", "user-1").query("cursor", bad)).await;
        assert_problem(&r, 400, "invalid_cursor");
    }
    assert_eq!(
        b.snapshot().security_logs,
        before.security_logs,
        "refused at the edge"
    );
}

#[tokio::test]
async fn the_history_cursor_is_the_last_messages_time_and_id_and_any_such_position_works() {
    let b = backend();
    let a = app(&b);
    for i in 0..3 {
        let body = json!({"subject": format!("n{i}"), "body": "x"});
        assert_eq!(
            call(&a, post("owner-1", "user-1").json(&body)).await.status(),
            201
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let page = body_json(&call(&a, get("admin-1", "user-1").query("limit", "1")).await);
    let newest = &page["items"][0];
    assert_eq!(newest["subject"], "n2");
    assert_eq!(
        page["next_cursor"].as_str().unwrap(),
        format!(
            "{}~{}",
            newest["created_at"].as_str().unwrap(),
            newest["message_id"].as_str().unwrap()
        )
    );
    // A position no message has, later than all of them: the whole history follows.
    let all = body_json(
        &call(
            &a,
            get("admin-1", "user-1").query("cursor", "9999-12-31T23:59:59.999Z~z"),
        )
        .await,
    );
    let subjects: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["n2", "n1", "n0"]);
    // Earlier than all of them: an empty last page.
    let none = body_json(
        &call(
            &a,
            get("admin-1", "user-1").query("cursor", "0000-01-01T00:00:00.000Z~a"),
        )
        .await,
    );
    assert_eq!(none["items"], json!([]));
    assert!(none["next_cursor"].is_null());
}

#[tokio::test]
async fn the_history_is_refused_like_a_send() {
    let b = backend();
    let a = app(&b);
    assert_problem(&call(&a, get("plain-1", "user-1")).await, 403, "forbidden_role");
    assert_problem(&call(&a, get("admin-1", "nobody-1")).await, 404, "user_not_found");
    assert_problem(
        &call(&a, ApiEvent::new("GET", ROUTE).path_param("userId", "user-1")).await,
        401,
        "unauthenticated",
    );
    assert_problem(
        &call(&a, get("admin-1", "user-1").query("limit", "1000")).await,
        400,
        "invalid_body",
    );
    b.fail_at(1);
    assert_problem(
        &call(&a, get("admin-1", "user-1")).await,
        503,
        "dependency_unavailable",
    );
}

/// The sample events kept beside the function answer as their names say.
#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let expected = [
        ("send-message.json", 201, None),
        ("send-message-idempotent.json", 201, None),
        ("send-message-base64.json", 201, None),
        ("send-message-subject-invalid.json", 400, Some("subject_invalid")),
        ("send-message-no-claims.json", 401, Some("unauthenticated")),
        ("message-history.json", 200, None),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let files: Vec<&str> = expected.iter().map(|(f, ..)| *f).collect();
    for ((file, status, code), req) in expected.into_iter().zip(sample_requests(&dir, &files)) {
        let b = backend();
        let app = message_user::MessageApp {
            messaging: app(&b),
            tokens: tokens(),
        };
        let r = message_user::handle(&app, req).await;
        assert_eq!(r.status().as_u16(), status, "{file}: {:?}", r.body());
        if let Some(code) = code {
            assert_problem(&r, status, code);
        }
    }
}

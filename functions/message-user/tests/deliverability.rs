//! The message function's deliverability rules through real API Gateway v2 events: the
//! last message's bounce or complaint, the mail provider's suppression list, and "send
//! anyway"; and the delivery status in the history.

mod common;

use common::*;

fn ses_event(name: &str, ses_message_id: &str) -> String {
    let path = format!(
        "{}/../../shared/domain/tests/fixtures/ses/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .replace("SES-MSG-1", ses_message_id)
        .replace(
            r#""message_id":["m-1"]"#,
            &format!(r#""message_id":["{}"]"#, message_of(ses_message_id)),
        )
}

thread_local! {
    /// Provider id → our message id, of the sends these tests made.
    static SENT: std::cell::RefCell<std::collections::HashMap<String, String>> = Default::default();
}

fn message_of(ses_message_id: &str) -> String {
    SENT.with(|m| m.borrow().get(ses_message_id).cloned().unwrap_or_default())
}

/// Sends one message to user-1 and applies this SES event to it; returns its provider id.
async fn send_then(b: &Arc<InMemoryBackend>, event: &str) -> String {
    let r = call(&app(b), post("owner-1", "user-1").json(&good_body())).await;
    assert_eq!(r.status(), 201);
    let ses_id = body_json(&r)["ses_message_id"].as_str().unwrap().to_owned();
    let message_id = body_json(&r)["message_id"].as_str().unwrap().to_owned();
    SENT.with(|m| m.borrow_mut().insert(ses_id.clone(), message_id));
    b.delivery()
        .apply(&ses_event(event, &ses_id))
        .await
        .expect("the SES event applies");
    ses_id
}

#[tokio::test]
async fn after_a_hard_bounce_a_send_is_recipient_undeliverable_until_sent_anyway() {
    let b = backend();
    let a = app(&b);
    send_then(&b, "bounce-permanent").await;
    let before = b.snapshot();

    let r = call(&a, post("admin-1", "user-1").json(&good_body())).await;
    let doc = assert_problem(&r, 422, "recipient_undeliverable");
    assert_eq!(doc["last_status"], "bounced");
    let detail = doc["detail"].as_str().unwrap();
    assert!(
        detail.contains("bounced") && detail.contains("send_anyway"),
        "{detail}"
    );
    assert!(!detail.contains('@'), "no address in the answer: {detail}");
    assert_state_unchanged(&before, &b.snapshot());

    let explicit_false = json!({"subject": "Hi", "body": "Again", "send_anyway": false});
    let r = call(&a, post("admin-1", "user-1").json(&explicit_false)).await;
    assert_problem(&r, 422, "recipient_undeliverable");

    let anyway = json!({"subject": "Hi", "body": "Again", "send_anyway": true});
    let r = call(&a, post("admin-1", "user-1").json(&anyway)).await;
    assert_eq!(r.status(), 201, "{:?}", r.body());
    assert_eq!(body_json(&r)["status"], "sent");
    assert_eq!(b.snapshot().sent_mail.len(), 2);

    // The new message was sent, so the next one goes out without overriding.
    let r = call(&a, post("admin-1", "user-1").json(&good_body())).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn after_a_complaint_a_send_is_recipient_undeliverable_and_a_key_can_be_reused_to_send_anyway() {
    let b = backend();
    let a = app(&b);
    send_then(&b, "complaint").await;
    let with_key = |body: Value| {
        post("owner-1", "user-1")
            .header("Idempotency-Key", "k-undeliverable")
            .json(&body)
    };
    let r = call(&a, with_key(good_body())).await;
    let doc = assert_problem(&r, 422, "recipient_undeliverable");
    assert_eq!(doc["last_status"], "complained");
    assert!(doc["detail"].as_str().unwrap().contains("complaint"));

    let mut anyway = good_body();
    anyway["send_anyway"] = json!(true);
    let r = call(&a, with_key(anyway.clone())).await;
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let r = call(&a, with_key(anyway)).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(b.snapshot().sent_mail.len(), 2);
}

#[tokio::test]
async fn a_delivered_or_softly_bounced_last_message_needs_no_override() {
    for event in ["delivery", "bounce-transient"] {
        let b = backend();
        send_then(&b, event).await;
        let r = call(&app(&b), post("owner-1", "user-1").json(&good_body())).await;
        assert_eq!(r.status(), 201, "{event}");
    }
}

#[tokio::test]
async fn send_anyway_that_is_not_a_boolean_is_invalid_body() {
    let b = backend();
    let before = b.snapshot();
    for value in [json!("yes"), json!(1), json!([true])] {
        let body = json!({"body": "Hi", "send_anyway": value});
        let r = call(&app(&b), post("owner-1", "user-1").json(&body)).await;
        assert_problem(&r, 400, "invalid_body");
    }
    assert_state_unchanged(&before, &b.snapshot());
}

#[tokio::test]
async fn the_history_shows_the_delivery_status_and_when_it_changed() {
    let b = backend();
    let ses_id = send_then(&b, "delivery").await;
    b.delivery()
        .apply(&ses_event("bounce-permanent", &ses_id))
        .await
        .unwrap();
    let r = call(&app(&b), get("admin-1", "user-1")).await;
    assert_eq!(r.status(), 200);
    let page = body_json(&r);
    let item = &page["items"][0];
    assert_eq!(item["status"], "bounced", "{item}");
    assert_eq!(item["ses_message_id"], ses_id.as_str());
    // The bounce fixture's own timestamp, not the time of the send.
    assert_eq!(item["updated_at"], "2026-11-25T10:00:02.000Z");
    assert_ne!(item["updated_at"], item["sent_at"]);
}

fn suppress(b: &InMemoryBackend, reason: domain::ports::SuppressionReason) {
    // Stored as "User1@Example.com"; the list holds the address in lower case.
    b.suppress("user1@example.com", reason, "2026-10-02T09:15:00Z");
}

#[tokio::test]
async fn a_suppressed_address_is_recipient_suppressed_with_the_reason_and_nothing_is_sent_or_stored() {
    use domain::ports::SuppressionReason;
    for (reason, said) in [
        (SuppressionReason::Bounce, "BOUNCE"),
        (SuppressionReason::Complaint, "COMPLAINT"),
    ] {
        let b = backend();
        suppress(&b, reason);
        let before = b.snapshot();
        let r = call(&app(&b), post("admin-1", "user-1").json(&good_body())).await;
        let doc = assert_problem(&r, 422, "recipient_suppressed");
        assert_eq!(doc["reason"], said);
        assert_eq!(doc["last_update_time"], "2026-10-02T09:15:00Z");
        let detail = doc["detail"].as_str().unwrap();
        assert!(detail.contains("send_anyway"), "{detail}");
        assert!(!detail.contains('@'), "no address in the answer: {detail}");
        let after = b.snapshot();
        assert_state_unchanged(&before, &after);
        assert!(after.mail_calls.is_empty(), "the mailer was called");
    }
}

#[tokio::test]
async fn send_anyway_sends_to_a_suppressed_address_and_the_key_of_the_refused_request_may_be_reused() {
    let b = backend();
    suppress(&b, domain::ports::SuppressionReason::Bounce);
    let a = app(&b);
    let r = call(
        &a,
        post("admin-1", "user-1")
            .header("idempotency-key", "k-suppressed-1")
            .json(&good_body()),
    )
    .await;
    assert_problem(&r, 422, "recipient_suppressed");
    let mut anyway = good_body();
    anyway["send_anyway"] = json!(true);
    let r = call(
        &a,
        post("admin-1", "user-1")
            .header("idempotency-key", "k-suppressed-1")
            .json(&anyway),
    )
    .await;
    assert_eq!(r.status(), 201, "{:?}", r.body());
    let st = b.snapshot();
    assert_eq!(st.sent_mail.len(), 1);
    assert_eq!(st.sent_mail[0].to, "User1@Example.com");
}

#[tokio::test]
async fn a_suppression_list_that_cannot_be_asked_is_dependency_unavailable_and_sends_nothing() {
    let b = backend();
    b.set_suppression_list_down(true);
    let before = b.snapshot();
    let r = call(&app(&b), post("admin-1", "user-1").json(&good_body())).await;
    let doc = assert_problem(&r, 503, "dependency_unavailable");
    assert!(r.headers().contains_key("retry-after"), "{doc}");
    let after = b.snapshot();
    assert_state_unchanged(&before, &after);
    assert!(after.mail_calls.is_empty());
    // "Send anyway" does not ask the list at all.
    let mut anyway = good_body();
    anyway["send_anyway"] = json!(true);
    let r = call(&app(&b), post("admin-1", "user-1").json(&anyway)).await;
    assert_eq!(r.status(), 201, "{:?}", r.body());
}

//! Bad input through the message and delete handlers (real API Gateway v2 events, in-memory
//! backend): each is a clear 4xx with its code, and nothing is written - no row, no mail, no
//! event. Valid but unusual encodings (base64 bodies, charset parameters) are accepted.

use domain::memory::InMemoryBackend;
use http_api::event::ApiEvent;
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use std::sync::Arc;

const MAX_BODY: usize = 64 * 1024;

fn seeded() -> Arc<InMemoryBackend> {
    logs::capture();
    logs::forbid([
        "ursula.user@bad-input-example.com",
        "adele.admin@bad-input-example.com",
    ]);
    let b = InMemoryBackend::new();
    b.put_profile(world::profile(
        "owner-1",
        "owner",
        Some("olive.owner@bad-input-example.com"),
    ));
    b.put_profile(world::profile(
        "admin-1",
        "admin",
        Some("adele.admin@bad-input-example.com"),
    ));
    b.put_profile(world::profile(
        "user-1",
        "user",
        Some("ursula.user@bad-input-example.com"),
    ));
    for id in ["owner-1", "admin-1", "user-1"] {
        b.put_auth_user(id);
    }
    world::put_user_data(&b, "admin-1", 2);
    b
}

/// Runs `event` on a fresh backend and asserts the problem and that nothing was written.
async fn assert_refused(function: Function, event: ApiEvent, status: u16, code: &str, what: &str) -> Answer {
    let b = seeded();
    let apps = Apps::in_memory(&b);
    let before = b.snapshot();
    let answer = apps.call(function, event).await;
    assert_eq!(
        (answer.status, answer.code()),
        (status, Some(code)),
        "{what}: {}",
        answer.body
    );
    answer.assert_problem(status, code);
    let after = b.snapshot();
    let changed = world::differences(&before, &after);
    assert!(changed.is_empty(), "{what}: bad input changed {changed:?}");
    assert!(
        world::new_events(&before, &after).is_empty(),
        "{what}: bad input wrote an event"
    );
    answer
}

fn post() -> ApiEvent {
    world::send(Some("admin-1"), "user-1")
}

/// An owner deleting an admin: a body misread as `"acknowledge_privileged": true` would delete.
fn delete_admin() -> ApiEvent {
    world::delete(Some("owner-1"), "admin-1")
}

fn json_ct(e: ApiEvent) -> ApiEvent {
    e.header("content-type", "application/json")
}

#[tokio::test]
async fn a_message_body_over_64_kib_is_413_even_when_base64_encoded() {
    let big = format!(r#"{{"body":"{}"}}"#, "x".repeat(MAX_BODY));
    assert_refused(
        Function::MessageUser,
        json_ct(post()).body(&big),
        413,
        "payload_too_large",
        "text",
    )
    .await;
    assert_refused(
        Function::MessageUser,
        json_ct(post()).base64_body(big.as_bytes()),
        413,
        "payload_too_large",
        "base64",
    )
    .await;
    // 64 KiB of request is fine at the edge; the message body limit (10,000 characters) then applies.
    let edge = format!(r#"{{"body":"{}"}}"#, "x".repeat(MAX_BODY - 11));
    assert_eq!(edge.len(), MAX_BODY);
    assert_refused(
        Function::MessageUser,
        json_ct(post()).body(&edge),
        400,
        "body_invalid",
        "64 KiB",
    )
    .await;
}

#[tokio::test]
async fn a_message_with_a_content_type_that_is_not_json_is_400_invalid_body() {
    for ct in [
        "text/plain",
        "text/html",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "json",
    ] {
        let event = post().header("content-type", ct).body(r#"{"body":"hello"}"#);
        assert_refused(Function::MessageUser, event, 400, "invalid_body", ct).await;
    }
}

#[tokio::test]
async fn a_message_body_that_is_not_valid_utf8_json_or_has_duplicate_keys_is_400_invalid_body() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", b"{\"body\":\"caf\xe9\"}".to_vec()),
        (
            "a lone surrogate byte sequence",
            b"{\"body\":\"\xed\xa0\x80\"}".to_vec(),
        ),
        ("a NUL-truncated document", b"{\"body\":\"a\"\x00}".to_vec()),
        ("duplicate keys", br#"{"body":"first","body":"second"}"#.to_vec()),
        (
            "duplicate subject",
            br#"{"subject":"a","subject":"b","body":"x"}"#.to_vec(),
        ),
        ("a number for the body", br#"{"body":5}"#.to_vec()),
        (
            "a number for the subject",
            br#"{"subject":7,"body":"x"}"#.to_vec(),
        ),
        ("a boolean for the body", br#"{"body":true}"#.to_vec()),
        ("an array for the body", br#"{"body":["x"]}"#.to_vec()),
        (
            "an object for the subject",
            br#"{"subject":{"a":1},"body":"x"}"#.to_vec(),
        ),
        (
            "an unknown field",
            br#"{"body":"x","bcc":"eve@example.com"}"#.to_vec(),
        ),
        (
            "a field the send does not take",
            br#"{"body":"x","acknowledge_privileged":true}"#.to_vec(),
        ),
        ("a top-level array", br#"["subject","body"]"#.to_vec()),
        ("a top-level string", br#""body""#.to_vec()),
        ("null", b"null".to_vec()),
        ("truncated JSON", br#"{"body":"x""#.to_vec()),
        ("trailing garbage", br#"{"body":"x"} {}"#.to_vec()),
        ("a byte-order mark", b"\xef\xbb\xbf{\"body\":\"x\"}".to_vec()),
        (
            "deep nesting",
            format!(r#"{{"body":{}{}}}"#, "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        ),
    ];
    for (what, bytes) in cases {
        // Sent both as API Gateway would: raw text when it is UTF-8, and base64-encoded.
        if let Ok(text) = std::str::from_utf8(&bytes) {
            assert_refused(
                Function::MessageUser,
                json_ct(post()).body(text),
                400,
                "invalid_body",
                what,
            )
            .await;
        }
        assert_refused(
            Function::MessageUser,
            json_ct(post()).base64_body(&bytes),
            400,
            "invalid_body",
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn line_breaks_and_control_characters_in_a_subject_are_400_subject_invalid() {
    for subject in [
        "Hello\r\nBcc: eve@example.com",
        "Hello\nWorld",
        "Hello\rWorld",
        "Trailing newline\n",
        "\r\nLeading",
        "Tab\tinside",
        "NUL\u{0}inside",
        "Escape\u{1b}[31m",
        "Line\u{2028}separator",
        "Paragraph\u{2029}separator",
        "Next\u{85}line",
        &"s".repeat(201),
    ] {
        let event = post().json(&serde_json::json!({ "subject": subject, "body": "hi" }));
        assert_refused(
            Function::MessageUser,
            event,
            400,
            "subject_invalid",
            &format!("{subject:?}"),
        )
        .await;
    }
}

#[tokio::test]
async fn an_empty_or_oversized_message_body_is_400_body_invalid() {
    for body in [
        serde_json::json!({ "body": "" }),
        serde_json::json!({ "body": "   \n\t " }),
        serde_json::json!({ "body": null }),
        serde_json::json!({ "subject": "Only a subject" }),
        serde_json::json!({}),
        serde_json::json!({ "body": "x".repeat(10_001) }),
        serde_json::json!({ "body": "bell\u{7}" }),
    ] {
        assert_refused(
            Function::MessageUser,
            post().json(&body),
            400,
            "body_invalid",
            &body.to_string()[..20.min(body.to_string().len())],
        )
        .await;
    }
    // No body at all is an empty message, too.
    assert_refused(Function::MessageUser, post(), 400, "body_invalid", "no body").await;
}

#[tokio::test]
async fn a_malformed_idempotency_key_or_user_id_is_400_with_its_code() {
    for key in [
        " ".to_owned(),
        "k".repeat(256),
        "key with ümlaut".to_owned(),
        "tab\tkey".to_owned(),
    ] {
        let event = post()
            .header("idempotency-key", &key)
            .json(&serde_json::json!({ "body": "hi" }));
        assert_refused(
            Function::MessageUser,
            event,
            400,
            "invalid_body",
            "idempotency key",
        )
        .await;
    }
    for id in [
        "a b",
        "../etc/passwd",
        "user@example.com",
        "x".repeat(129).as_str(),
        "ümlaut",
        "semi;colon",
    ] {
        let send = world::send(Some("admin-1"), id).json(&serde_json::json!({ "body": "hi" }));
        assert_refused(Function::MessageUser, send, 400, "invalid_user_id", id).await;
        assert_refused(
            Function::DeleteUser,
            world::delete(Some("owner-1"), id),
            400,
            "invalid_user_id",
            id,
        )
        .await;
    }
}

#[tokio::test]
async fn valid_unusual_encodings_of_a_message_are_accepted() {
    let b = seeded();
    let apps = Apps::in_memory(&b);
    let cases = [
        post()
            .header("content-type", "application/json")
            .base64_body(br#"{"body":"base64 hello"}"#),
        post()
            .header("content-type", "Application/JSON; charset=\"UTF-8\"")
            .body(r#"{"body":"charset"}"#),
        post()
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"body":"plus json"}"#),
        post().body(r#"{"body":"no content type"}"#),
        post().json(&serde_json::json!({ "subject": "s".repeat(200), "body": "b".repeat(10_000) })),
        post().json(
            &serde_json::json!({ "subject": "  Unicode ✓ Grüße  ", "body": "Line 1\r\nLine 2\tTabbed" }),
        ),
        post().json(&serde_json::json!({ "subject": null, "body": "a null subject is the default" })),
    ];
    let n = cases.len();
    for (i, event) in cases.into_iter().enumerate() {
        let answer = apps.call(Function::MessageUser, event).await;
        answer.assert_success(201);
        assert_eq!(b.snapshot().sent_mail.len(), i + 1);
    }
    let st = b.snapshot();
    assert_eq!(st.sent_mail[0].body, "base64 hello");
    assert_eq!(st.sent_mail[5].subject, "Unicode ✓ Grüße");
    assert_eq!(st.sent_mail[6].subject, "A message from Teleperson");
    assert_eq!(st.sent_mail.len(), n);
    logs::assert_clean();
}

#[tokio::test]
async fn a_delete_body_that_is_not_exactly_a_boolean_acknowledgement_is_refused_and_deletes_nothing() {
    let big = format!(
        r#"{{"acknowledge_privileged":true,"pad":"{}"}}"#,
        "x".repeat(MAX_BODY)
    );
    assert_refused(
        Function::DeleteUser,
        json_ct(delete_admin()).body(&big),
        413,
        "payload_too_large",
        "big",
    )
    .await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=iso-8859-1",
    ] {
        let event = delete_admin()
            .header("content-type", ct)
            .body(r#"{"acknowledge_privileged":true}"#);
        assert_refused(Function::DeleteUser, event, 400, "invalid_body", ct).await;
    }
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "duplicate keys, last true",
            br#"{"acknowledge_privileged":false,"acknowledge_privileged":true}"#.to_vec(),
        ),
        (
            "duplicate keys, last false",
            br#"{"acknowledge_privileged":true,"acknowledge_privileged":false}"#.to_vec(),
        ),
        ("a string", br#"{"acknowledge_privileged":"true"}"#.to_vec()),
        ("a number", br#"{"acknowledge_privileged":1}"#.to_vec()),
        ("an array", br#"{"acknowledge_privileged":[true]}"#.to_vec()),
        ("another spelling", br#"{"acknowledgePrivileged":true}"#.to_vec()),
        (
            "an unknown field",
            br#"{"acknowledge_privileged":true,"force":true}"#.to_vec(),
        ),
        ("invalid UTF-8", b"{\"acknowledge_privileged\":tru\xe9}".to_vec()),
        ("not JSON", b"acknowledge_privileged=true".to_vec()),
        ("a top-level true", b"true".to_vec()),
    ];
    for (what, bytes) in bodies {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            assert_refused(
                Function::DeleteUser,
                json_ct(delete_admin()).body(text),
                400,
                "invalid_body",
                what,
            )
            .await;
        }
        assert_refused(
            Function::DeleteUser,
            json_ct(delete_admin()).base64_body(&bytes),
            400,
            "invalid_body",
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn a_null_acknowledgement_is_no_acknowledgement_and_a_base64_body_is_read() {
    let b = seeded();
    let apps = Apps::in_memory(&b);
    let answer = apps
        .call(
            Function::DeleteUser,
            json_ct(delete_admin()).body(r#"{"acknowledge_privileged":null}"#),
        )
        .await;
    answer.assert_problem(422, "acknowledgement_required");
    assert!(!b.snapshot().profiles["admin-1"].is_tombstone());
    let answer = apps
        .call(
            Function::DeleteUser,
            json_ct(delete_admin()).base64_body(br#"{"acknowledge_privileged":true}"#),
        )
        .await;
    answer.assert_success(200);
    assert!(b.snapshot().profiles["admin-1"].is_tombstone());
    logs::assert_clean();
}

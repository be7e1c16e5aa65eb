//! The dev server's routes over real HTTP: the user list, messages, deletions, cursors, body
//! limits, the deletion worker and unknown routes.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn an_admin_lists_users_page_by_page_and_can_search() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let first = call(&s, "GET", "/admin/users?limit=10", Some(&admin), None).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let page = first.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    for key in ["user_id", "email", "display_name", "role", "created_at"] {
        assert!(items[0].get(key).is_some(), "missing {key} in {}", items[0]);
    }
    let cursor = page["next_cursor"].as_str().expect("a next cursor");
    let second = call(
        &s,
        "GET",
        &format!("/admin/users?limit=10&cursor={cursor}"),
        Some(&admin),
        None,
    )
    .await
    .json();
    let firsts: Vec<&str> = items.iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert!(second["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| !firsts.contains(&u["user_id"].as_str().unwrap())));

    let found = call(&s, "GET", "/admin/users?q=ana%20lima", Some(&admin), None)
        .await
        .json();
    let names: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ana Lima"]);

    // The tombstone is never listed.
    let all = call(&s, "GET", "/admin/users?limit=100", Some(&admin), None)
        .await
        .json();
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["display_name"] != "Deleted User"));
}

#[tokio::test]
async fn sending_a_message_writes_an_eml_with_the_support_reply_to() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let body =
        json!({"subject": "Über your account ✓", "body": "Hello Ana,\nplease check your billing details."});
    let answer = call(
        &s,
        "POST",
        &format!("/admin/users/{ana}/messages"),
        Some(&admin),
        Some(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let receipt = answer.json();
    assert_eq!(receipt["status"], "sent");
    let message_id = receipt["message_id"].as_str().unwrap().to_owned();
    assert!(receipt["ses_message_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(receipt["sent_at"].as_str().is_some());

    let files = outbox_files(&s);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains(&message_id));
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    let (head, _) = eml.split_once("\r\n\r\n").expect("a header block");
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert!(lines.contains(&"To: ana.lima@example.org"), "{head}");
    assert!(lines.contains(&"From: no-reply@teleperson.com"), "{head}");
    assert!(lines.contains(&"Reply-To: hello@teleperson.com"), "{head}");
    assert!(
        lines.iter().any(|l| l.starts_with("Subject: =?UTF-8?B?")),
        "{head}"
    );
    assert!(
        lines.contains(&"Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );

    // It shows up in the history, newest first.
    let history = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(history.status, 200);
    let items = history.json()["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["message_id"], message_id.as_str());
    assert_eq!(items[0]["status"], "sent");

    let listed = call(&s, "GET", "/dev/outbox", None, None).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn messaging_a_user_without_an_email_address_is_422() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let target = s.app.seeded.no_email.clone();
    let answer = call(
        &s,
        "POST",
        &format!("/admin/users/{target}/messages"),
        Some(&owner),
        Some(br#"{"body":"hi"}"#),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["code"], "no_email_address");
    assert!(outbox_files(&s).is_empty());
}

#[tokio::test]
async fn deleting_a_user_answers_200_with_counts_and_the_user_leaves_the_list() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ben = id_of(&s, "Benjamin Okafor");
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{ben}/deletion-preview"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(preview.status, 200);
    let preview = preview.json();
    assert_eq!(preview["allowed"], true);
    assert_eq!(preview["acknowledgement_required"], false);
    let expected: u64 = preview["tables"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().parse::<u64>().unwrap())
        .sum();

    let answer = call(&s, "DELETE", &format!("/admin/users/{ben}"), Some(&admin), None).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let done = answer.json();
    assert_eq!(done["status"], "completed");
    assert!(done["job_id"].as_str().is_some());
    let deleted = done["deleted"].as_object().unwrap();
    for t in domain::cascade::CASCADE_PLAN {
        assert!(deleted.contains_key(t.name), "no count for {}", t.name);
    }
    assert_eq!(
        deleted.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        expected
    );
    assert!(expected > 0);

    let list = call(&s, "GET", "/admin/users?limit=100", Some(&admin), None)
        .await
        .json();
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["user_id"] != ben.as_str()));
    let status = call(
        &s,
        "GET",
        &format!("/admin/users/{ben}/deletion"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["status"], "completed");
    assert!(!s.app.backend.state().auth_users.contains_key(&ben));
}

#[tokio::test]
async fn an_admin_deleting_an_admin_is_403_and_nothing_changes() {
    let s = start().await;
    let (marcus, priya) = (s.app.seeded.admins[0].clone(), s.app.seeded.admins[1].clone());
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{priya}/deletion-preview"),
        Some(&marcus),
        None,
    )
    .await
    .json();
    assert_eq!(preview["allowed"], false);
    assert_eq!(preview["denied_code"], "privileged_target");

    let answer = call(
        &s,
        "DELETE",
        &format!("/admin/users/{priya}"),
        Some(&marcus),
        Some(br#"{"acknowledge_privileged":true}"#),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    let problem = answer.json();
    assert_eq!(problem["code"], "privileged_target");
    assert_eq!(problem["status"], 403);
    for key in ["type", "title", "detail"] {
        assert!(problem[key].is_string(), "missing {key}: {problem}");
    }
    let st = s.app.backend.state();
    assert!(!st.profiles[&priya].is_tombstone());
    assert!(st.jobs.is_empty());
    assert!(st
        .security_logs
        .values()
        .any(|e| e.event_type == domain::model::EventType::AdminActionDenied));
}

#[tokio::test]
async fn an_owner_deletes_an_admin_only_with_the_acknowledgement() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let priya = s.app.seeded.admins[1].clone();
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{priya}/deletion-preview"),
        Some(&owner),
        None,
    )
    .await
    .json();
    assert_eq!(preview["allowed"], true);
    assert_eq!(preview["acknowledgement_required"], true);

    let refused = call(&s, "DELETE", &format!("/admin/users/{priya}"), Some(&owner), None).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["code"], "acknowledgement_required");

    let done = call(
        &s,
        "DELETE",
        &format!("/admin/users/{priya}"),
        Some(&owner),
        Some(br#"{"acknowledge_privileged":true}"#),
    )
    .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    // The deleted admin loses access at once.
    let after = call(&s, "GET", "/admin/users", Some(&priya), None).await;
    assert_eq!(after.status, 401);
}

#[tokio::test]
async fn a_cursor_that_is_not_a_next_cursor_is_400_invalid_cursor() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    for path in [
        "/admin/users?cursor=not%20a%20cursor".to_owned(),
        "/admin/users?cursor=eyJ1c2VyX2lkIjoidSJ9%3D".to_owned(),
        format!("/admin/users/{ana}/messages?cursor=abc"),
        format!("/admin/users/{ana}/messages?cursor=a~b~c"),
    ] {
        let answer = call(&s, "GET", &path, Some(&admin), None).await;
        assert_eq!(
            answer.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.json()["code"], "invalid_cursor", "{path}");
    }
    // The next_cursor of a page is a cursor, on both lists.
    let page = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages?limit=1"),
        Some(&admin),
        None,
    )
    .await
    .json();
    let cursor = page["next_cursor"].as_str().expect("Ana has two messages");
    let next = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages?limit=1&cursor={cursor}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(next.status, 200);
    assert_ne!(
        next.json()["items"][0]["message_id"],
        page["items"][0]["message_id"]
    );
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_visible_ascii_reaches_the_function_and_is_refused() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let body = br#"{"body":"hi"}"#;
    let mut head = format!(
        "POST /admin/users/{ana}/messages HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        s.addr,
        token_for(&s, &admin),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(b"Idempotency-Key: caf\xc3\xa9\r\n\r\n");
    head.extend_from_slice(body);
    stream.write_all(&head).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let answer = parse(&raw);
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["code"], "invalid_body");
    assert!(outbox_files(&s).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let path = format!("/admin/users/{ana}/messages");
    // Just over the functions' limit: the function itself answers.
    let big = json!({ "body": "x".repeat(70 * 1024) }).to_string();
    let answer = call(&s, "POST", &path, Some(&admin), Some(big.as_bytes())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "payload_too_large");
    // Far over it: the dev server refuses it before the function, with the same answer.
    let huge = json!({ "body": "x".repeat(1024 * 1024) }).to_string();
    let answer = call(&s, "POST", &path, Some(&admin), Some(huge.as_bytes())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "payload_too_large");
    assert!(outbox_files(&s).is_empty());
}

#[tokio::test]
async fn with_a_zero_budget_a_deletion_answers_202_and_the_worker_finishes_it() {
    let s = start_with(|c| {
        c.delete_budget = Duration::ZERO;
        c.worker_interval = Duration::from_millis(20);
    })
    .await;
    let owner = s.app.seeded.owner.clone();
    let heavy = s.app.seeded.heavy.clone();
    let answer = call(&s, "DELETE", &format!("/admin/users/{heavy}"), Some(&owner), None).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let accepted = answer.json();
    assert_eq!(accepted["status"], "in_progress");
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();

    let mut last = Value::Null;
    for _ in 0..2_000 {
        last = call(
            &s,
            "GET",
            &format!("/admin/users/{heavy}/deletion"),
            Some(&owner),
            None,
        )
        .await
        .json();
        if last["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["job_id"], job_id.as_str());
    assert_eq!(last["user_id"], heavy.as_str());
    assert!(
        last["deleted"]["transactions"].as_u64().unwrap() > 10_000,
        "{last}"
    );
}

#[tokio::test]
async fn unknown_api_routes_get_api_gateways_404_and_the_page_is_served() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let answer = call(&s, "GET", "/admin/nope", Some(&admin), None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json(), json!({"message": "Not Found"}));
    // Another method on an API path: the owning function's 405, behind the authorizer.
    let ana = id_of(&s, "Ana Lima");
    for (method, path, allow) in [
        ("PUT", "/admin/users".to_owned(), "GET"),
        ("TRACE", "/admin/users".to_owned(), "GET"),
        ("PATCH", format!("/admin/users/{ana}"), "DELETE"),
        ("DELETE", format!("/admin/users/{ana}/messages"), "GET, POST"),
        ("POST", format!("/admin/users/{ana}/deletion"), "GET"),
        ("PUT", format!("/admin/users/{ana}/deletion-preview"), "GET"),
    ] {
        let answer = call(&s, method, &path, Some(&admin), None).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.json()["code"], "method_not_allowed", "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(
            call(&s, method, &path, None, None).await.status,
            401,
            "{method} {path}"
        );
    }

    let page = call(&s, "GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<title>Users"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let ids = call(&s, "GET", "/dev/identities", None, None).await.json();
    let roles: Vec<&str> = ids["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(&roles[..3], ["owner", "admin", "admin"]);
}

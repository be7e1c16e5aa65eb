//! Delivery over the dev server: simulated SES events (`POST /dev/ses-events`), what a
//! bounce or complaint does to the next send, and simulated delivery.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// `POST /dev/ses-events` with this body.
async fn ses_event(s: &Server, message_id: &str, event: &str) -> Answer {
    let body = json!({ "message_id": message_id, "event": event }).to_string();
    call(s, "POST", "/dev/ses-events", None, Some(body.as_bytes())).await
}

async fn send(s: &Server, as_user: &str, to: &str, body: Value) -> Answer {
    call(
        s,
        "POST",
        &format!("/admin/users/{to}/messages"),
        Some(as_user),
        Some(body.to_string().as_bytes()),
    )
    .await
}

async fn history(s: &Server, as_user: &str, of: &str) -> Vec<Value> {
    let answer = call(
        s,
        "GET",
        &format!("/admin/users/{of}/messages"),
        Some(as_user),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_simulated_hard_bounce_blocks_the_next_send_until_it_is_sent_anyway() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let first = send(&s, &admin, &ana, json!({"subject": "Hello", "body": "First"})).await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let message_id = first.json()["message_id"].as_str().unwrap().to_owned();

    let bounced = ses_event(&s, &message_id, "Bounce").await;
    assert_eq!(bounced.status, 200, "{}", String::from_utf8_lossy(&bounced.body));
    let outcome = bounced.json();
    assert_eq!(outcome["previous_status"], "sent");
    assert_eq!(outcome["status"], "bounced");
    assert_eq!(outcome["changed"], true);
    let ses_id = s
        .app
        .backend
        .state()
        .messages
        .get(&message_id)
        .expect("the message row")
        .ses_message_id
        .clone()
        .unwrap();
    assert_eq!(outcome["ses_message_id"], ses_id.as_str());

    let items = history(&s, &admin, &ana).await;
    assert_eq!(items[0]["message_id"], message_id.as_str());
    assert_eq!(items[0]["status"], "bounced");
    assert_eq!(items[0]["updated_at"], outcome["updated_at"]);
    assert!(items[0]["updated_at"].as_str().is_some_and(|t| !t.is_empty()));

    let refused = send(&s, &admin, &ana, json!({"subject": "Hello", "body": "Second"})).await;
    assert_eq!(refused.status, 422, "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    let problem = refused.json();
    assert_eq!(problem["code"], "recipient_undeliverable");
    assert_eq!(problem["last_status"], "bounced");
    assert_eq!(outbox_files(&s).len(), 1, "nothing was sent");

    let anyway = send(
        &s,
        &admin,
        &ana,
        json!({"subject": "Hello", "body": "Second", "send_anyway": true}),
    )
    .await;
    assert_eq!(anyway.status, 201, "{}", String::from_utf8_lossy(&anyway.body));
    let second = anyway.json()["message_id"].as_str().unwrap().to_owned();
    assert_eq!(outbox_files(&s).len(), 2);
    assert!(outbox_files(&s)
        .iter()
        .any(|f| f.to_string_lossy().contains(&second)));
    let items = history(&s, &admin, &ana).await;
    assert_eq!(items[0]["message_id"], second.as_str());
    assert_eq!(items[0]["status"], "sent");
    assert_eq!(items[1]["status"], "bounced");
}

#[tokio::test]
async fn delivery_and_complaint_events_move_the_status_forward_and_never_back() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let ana = id_of(&s, "Ana Lima");
    let sent = send(&s, &owner, &ana, json!({"body": "Hi"})).await.json();
    let message_id = sent["message_id"].as_str().unwrap().to_owned();

    let delivered = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(delivered["status"], "delivered");
    // SNS delivers at least once: the same event again changes nothing.
    let again = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(again["status"], "delivered");
    assert_eq!(again["changed"], false);
    // A soft bounce changes nothing either.
    let soft = ses_event(&s, &message_id, "SoftBounce").await.json();
    assert_eq!(soft["status"], "delivered");
    assert_eq!(soft["changed"], false);

    let complained = ses_event(&s, &message_id, "Complaint").await.json();
    assert_eq!(complained["previous_status"], "delivered");
    assert_eq!(complained["status"], "complained");
    // A late Delivery does not undo the complaint.
    let late = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(late["status"], "complained");
    assert_eq!(history(&s, &owner, &ana).await[0]["status"], "complained");

    let refused = send(&s, &owner, &ana, json!({"body": "Hi again"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["last_status"], "complained");
}

#[tokio::test]
async fn the_dev_events_route_refuses_what_ses_could_not_report() {
    let s = start().await;
    let unknown = ses_event(&s, "no-such-message", "Bounce").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "message_not_found");

    // The seeded failed message never reached SES.
    let failed = s
        .app
        .backend
        .state()
        .messages
        .values()
        .find(|m| m.status == domain::model::MessageStatus::Failed)
        .map(|m| m.message_id.clone())
        .expect("a seeded failed message");
    let not_sent = ses_event(&s, &failed, "Delivery").await;
    assert_eq!(not_sent.status, 409);
    assert_eq!(not_sent.json()["code"], "message_not_sent");

    let sent = s
        .app
        .backend
        .state()
        .messages
        .values()
        .find(|m| m.status == domain::model::MessageStatus::Sent)
        .map(|m| m.message_id.clone())
        .expect("a seeded sent message");
    for body in [
        json!({"message_id": sent, "event": "Open"}).to_string(),
        json!({"message_id": sent}).to_string(),
        json!({"message_id": sent, "event": "Bounce", "extra": 1}).to_string(),
        "not json".to_owned(),
    ] {
        let answer = call(&s, "POST", "/dev/ses-events", None, Some(body.as_bytes())).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["code"], "invalid_body", "{body}");
    }
    assert_eq!(
        s.app
            .backend
            .state()
            .messages
            .get(&sent)
            .expect("the message row")
            .status,
        domain::model::MessageStatus::Sent
    );
}

#[tokio::test]
async fn with_simulated_delivery_a_sent_message_becomes_delivered() {
    let s = start_with(|c| c.simulate_delivery = Some(Duration::from_millis(10))).await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let sent = send(&s, &admin, &ana, json!({"body": "Hi"})).await;
    assert_eq!(sent.status, 201);
    let message_id = sent.json()["message_id"].as_str().unwrap().to_owned();
    // Wait for the event (no time limit is asserted: only that it comes).
    let mut status = Value::Null;
    for _ in 0..2_000 {
        let items = history(&s, &admin, &ana).await;
        let item = items
            .iter()
            .find(|m| m["message_id"] == message_id.as_str())
            .cloned()
            .unwrap();
        status = item["status"].clone();
        if status == "delivered" {
            assert!(item["updated_at"].as_str().is_some());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "delivered");
}

#[tokio::test]
async fn a_user_whose_seeded_last_message_bounced_can_only_be_sent_to_anyway() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let hannah = id_of(&s, "Hannah Schmidt");
    assert_eq!(history(&s, &owner, &hannah).await[0]["status"], "bounced");
    let refused = send(&s, &owner, &hannah, json!({"body": "Hi"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["code"], "recipient_undeliverable");
    let anyway = send(&s, &owner, &hannah, json!({"body": "Hi", "send_anyway": true})).await;
    assert_eq!(anyway.status, 201);
}

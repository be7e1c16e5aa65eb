//! Black-box mail: the built message-user binary under `lambda-sim`, against the emulator,
//! with every DynamoDB and SESv2 request going through [`FaultProxy`] (no faults here: it
//! isolates `TransactWriteItems` as DynamoDB does, and keeps the `SendEmail` requests as they
//! went out on the wire).
//!
//! - Eight message-user processes (eight execution environments) get one send with one
//!   `Idempotency-Key` at the same moment: one email, one row, one message id.
//! - A stored address with upper-case letters (and spaces around it) goes out exactly as
//!   stored, trimmed.
//!
//! Needs the emulator: `scripts/test.sh`.

use http_api::event::ApiEvent;
use lambda_sim::Function;
use reliability_tests::cloud::{str_attr, Cloud, MAIL_FROM};
use reliability_tests::functions::{assert_logs_clean, invoke, lambda_env, start_with_timeout};
use reliability_tests::logs;
use reliability_tests::proxy::FaultProxy;
use reliability_tests::world;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The template's environment with DynamoDB and SESv2 through the proxy.
fn env(cloud: &Cloud, proxy: &FaultProxy) -> BTreeMap<String, String> {
    let mut env = lambda_env(cloud);
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.endpoint());
    env.insert("AWS_ENDPOINT_URL_SESV2".into(), proxy.endpoint());
    env
}

/// The `message_id` tag of a `SendEmail` request body.
fn tag_of(request: &Value) -> Option<&str> {
    request["EmailTags"]
        .as_array()?
        .iter()
        .find(|t| t["Name"] == "message_id")?["Value"]
        .as_str()
}

#[tokio::test]
async fn eight_processes_sending_with_one_idempotency_key_at_once_send_one_email() {
    logs::capture();
    let cloud = Cloud::new().await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let admin = test_support::unique("admin-");
    cloud.add_user(&admin, "admin", None).await;
    let env = env(&cloud, &proxy);
    let processes: Vec<Function> =
        futures::future::join_all((0..8).map(|_| start_with_timeout("message-user", env.clone(), TIMEOUT)))
            .await;
    let rounds = 5;
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..rounds {
        let target = test_support::unique(&format!("user{round}-"));
        let email = format!("{target}@eight-example.com");
        let body = format!("One key, eight processes {target}");
        logs::forbid([&email, &body]);
        cloud.add_user(&target, "user", Some(&email)).await;
        let send = ApiEvent::new("POST", world::MESSAGES_ROUTE)
            .path_param("userId", &target)
            .caller(&admin)
            .header("idempotency-key", &format!("eight-{round}"))
            .json(&json!({ "body": body }))
            .to_value();
        let answers = futures::future::join_all(processes.iter().map(|p| invoke(p, &send))).await;

        let mut ids = Vec::new();
        for inv in &answers {
            let status = inv.http_status().expect("an API Gateway answer");
            let doc = inv.http_json().expect("a JSON body");
            match status {
                201 => {
                    let replayed = inv.http_header("idempotent-replayed") == Some("true");
                    *tally
                        .entry(if replayed { "201 replayed" } else { "201" }.into())
                        .or_default() += 1;
                }
                409 => {
                    assert_eq!(doc["code"], "request_in_progress", "round {round}: {doc}");
                    assert!(inv.http_header("retry-after").is_some(), "round {round}: {doc}");
                    *tally.entry("409 request_in_progress".into()).or_default() += 1;
                }
                _ => panic!("round {round}: a duplicate answered {}", inv.response),
            }
            ids.push(
                doc["message_id"]
                    .as_str()
                    .expect("every answer names the message")
                    .to_owned(),
            );
        }
        ids.sort();
        ids.dedup();
        let all: Vec<String> = answers.iter().map(|i| i.response.to_string()).collect();
        assert_eq!(
            ids.len(),
            1,
            "round {round}: one message id in every answer: {all:#?}"
        );
        assert!(
            answers.iter().any(|i| i.http_status() == Some(201)),
            "round {round}: one of them sent it"
        );
        assert_eq!(cloud.emails_to(&email).await.len(), 1, "round {round}: one email");
        let on_the_wire: Vec<Value> = proxy
            .sent_emails()
            .into_iter()
            .filter(|r| tag_of(r) == Some(ids[0].as_str()))
            .collect();
        assert_eq!(on_the_wire.len(), 1, "round {round}: one SendEmail request");
        let rows: Vec<_> = cloud
            .scan("ADMIN_MESSAGES_TABLE")
            .await
            .into_iter()
            .filter(|r| str_attr(r, "recipient_id") == Some(target.as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "round {round}: one row");
        assert_eq!(str_attr(&rows[0], "message_id"), Some(ids[0].as_str()));
        assert_eq!(str_attr(&rows[0], "status"), Some("sent"));
        assert_eq!(
            cloud.events_about(&target, "admin_sent_user_message").await.len(),
            1
        );
    }
    println!("8 processes x {rounds} rounds, one key per round: answers {tally:?}; one email per round");
    let named: Vec<(String, &Function)> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("message-user {i}"), p))
        .collect();
    let named: Vec<(&str, &Function)> = named.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    assert_logs_clean(&named);
    cloud
        .assert_security_logs_clean(&["One key, eight processes"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn a_stored_address_with_capitals_goes_out_on_the_wire_exactly_as_stored() {
    logs::capture();
    let cloud = Cloud::new().await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let admin = test_support::unique("admin-");
    let target = test_support::unique("user-");
    let stored = format!("  Mixed.Case+{}@Example-Upper.COM ", target.to_uppercase());
    let address = stored.trim().to_owned();
    logs::forbid([&address]);
    cloud.add_user(&admin, "admin", None).await;
    cloud.add_user(&target, "user", Some(&stored)).await;
    let message = start_with_timeout("message-user", env(&cloud, &proxy), TIMEOUT).await;
    let send = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &target)
        .caller(&admin)
        .json(&json!({ "subject": "Case matters", "body": "The local part is case-sensitive." }))
        .to_value();
    let inv = invoke(&message, &send).await;
    assert_eq!(inv.http_status(), Some(201), "{}", inv.response);

    let requests = proxy.sent_emails();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request["Destination"]["ToAddresses"],
        json!([address]),
        "the address as stored, trimmed, case kept"
    );
    assert_eq!(request["ReplyToAddresses"], json!(["hello@teleperson.com"]));
    assert_eq!(request["FromEmailAddress"], MAIL_FROM);
    let id = inv.http_json().expect("a receipt")["message_id"].clone();
    assert_eq!(tag_of(request), id.as_str(), "the message id tag");
    assert_eq!(
        cloud.emails_to(&address).await.len(),
        1,
        "moto got it for that address"
    );
    assert!(
        cloud.emails_to(&address.to_lowercase()).await.is_empty(),
        "not for a lower-cased address"
    );
    assert_logs_clean(&[("message-user", &message)]);
    logs::assert_clean();
}

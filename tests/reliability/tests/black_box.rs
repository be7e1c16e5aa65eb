//! Black-box: the built debug binaries of the four functions, run by `lambda-sim` (a Lambda
//! Runtime API on loopback) the way the Lambda service runs them, with the environment
//! `infra/template.yaml` gives them, against the emulator. Events in, the exact response
//! documents out; and a missing setting fails the function at init with the variable's name.
//!
//! The binaries are built by `cargo build` from the test itself (a no-op when they are up to
//! date), so a fresh clone needs nothing beforehand. Needs the emulator: `scripts/test.sh`.

use http_api::event::ApiEvent;
use lambda_sim::{cargo, Function, FunctionConfig, Invocation, LogFormat, SimError};
use reliability_tests::cloud::{str_attr, Cloud};
use reliability_tests::logs;
use reliability_tests::world;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use test_support::sqs;

const FUNCTIONS: &[&str] = &["message-user", "delete-user", "list-users", "deletion-worker"];

/// What each function needs (DESIGN.md section 4 and the environment list of the brief),
/// written out here rather than read from the code under test. The deletion functions need
/// IDEMPOTENCY_TABLE only when DELETIONS_PER_HOUR turns the per-admin limit on.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "message-user",
        &[
            "PROFILES_TABLE",
            "ADMIN_MESSAGES_TABLE",
            "SECURITY_LOGS_TABLE",
            "IDEMPOTENCY_TABLE",
            "MAIL_FROM",
        ],
    ),
    (
        "delete-user",
        &[
            "PROFILES_TABLE",
            "SECURITY_LOGS_TABLE",
            "DELETION_JOBS_TABLE",
            "TRANSACTIONS_TABLE",
            "FOLLOWED_COMPANIES_TABLE",
            "BILLING_RECORDS_TABLE",
            "SESSIONS_TABLE",
            "HELP_REQUESTS_TABLE",
            "ADMIN_MESSAGES_TABLE",
            "USER_POOL_ID",
            "DELETION_QUEUE_URL",
        ],
    ),
    ("list-users", &["PROFILES_TABLE", "SECURITY_LOGS_TABLE"]),
    (
        "deletion-worker",
        &[
            "PROFILES_TABLE",
            "SECURITY_LOGS_TABLE",
            "DELETION_JOBS_TABLE",
            "TRANSACTIONS_TABLE",
            "FOLLOWED_COMPANIES_TABLE",
            "BILLING_RECORDS_TABLE",
            "SESSIONS_TABLE",
            "HELP_REQUESTS_TABLE",
            "ADMIN_MESSAGES_TABLE",
            "USER_POOL_ID",
            "DELETION_QUEUE_URL",
        ],
    ),
];

/// Optional numeric settings: an unusable value fails at init with the name, too.
const NUMERIC: &[(&str, &str)] = &[
    ("message-user", "MESSAGES_PER_MINUTE"),
    ("delete-user", "DELETE_BUDGET_MS"),
    ("delete-user", "DELETIONS_PER_HOUR"),
    ("deletion-worker", "WORKER_BUDGET_MS"),
];

/// The four binaries, built once per test binary.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bins: Vec<(&str, &str)> = FUNCTIONS.iter().map(|f| (*f, *f)).collect();
        cargo::build_bins(&bins, cargo::Profile::Debug, false)
            .unwrap_or_else(|e| panic!("building the function binaries failed: {e}"))
    })
}

async fn binary(name: &str) -> PathBuf {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || binaries()[&name].clone())
        .await
        .expect("the build thread does not panic")
}

/// The environment the template gives every function, pointed at the emulator.
fn lambda_env(cloud: &Cloud) -> BTreeMap<String, String> {
    let mut env = cloud.env().0;
    env.insert("AWS_ENDPOINT_URL".into(), cloud.emulator.endpoint().to_owned());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    // Our crates at trace: every line they could write is checked for personal data.
    env.insert("RUST_LOG".into(), logs::FILTER.to_owned());
    env
}

/// Every setting a function could read, with placeholder values (no emulator needed: these
/// runs end at init).
fn placeholder_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (_, vars) in REQUIRED {
        for v in *vars {
            env.insert((*v).to_owned(), format!("placeholder-{}", v.to_lowercase()));
        }
    }
    env.insert("MAIL_FROM".into(), "no-reply@teleperson.com".into());
    env.insert(
        "DELETION_QUEUE_URL".into(),
        "http://127.0.0.1:9/000000000000/q".into(),
    );
    env.insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    env
}

async fn start(name: &str, env: BTreeMap<String, String>) -> Function {
    let config = FunctionConfig::new(binary(name).await)
        .name(name)
        .log_format(LogFormat::Json)
        .timeout(Duration::from_secs(60))
        .envs(env);
    let function = Function::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    function
        .wait_ready(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{name} did not finish init: {e}"));
    function
}

async fn invoke(function: &Function, event: &Value) -> Invocation {
    function
        .invoke(event)
        .await
        .unwrap_or_else(|e| panic!("the invocation failed: {e}"))
}

/// The API Gateway answer as the Lambda service returns it to API Gateway: a JSON document
/// with a numeric `statusCode`, string headers, a string `body` and `isBase64Encoded: false`.
fn assert_proxy_response(inv: &Invocation, status: u16, content_type: &str) -> Value {
    let doc = &inv.response;
    assert_eq!(doc["statusCode"], status, "{doc}");
    assert_eq!(inv.http_header("content-type"), Some(content_type), "{doc}");
    assert_eq!(doc["isBase64Encoded"], false, "{doc}");
    assert!(doc["body"].is_string(), "the body is a string: {doc}");
    for (k, v) in doc["headers"].as_object().expect("headers") {
        assert!(v.is_string(), "header {k} is a string: {doc}");
    }
    inv.http_json()
        .unwrap_or_else(|| panic!("the body is JSON: {doc}"))
}

fn assert_problem_document(inv: &Invocation, status: u16, code: &str) {
    let body = assert_proxy_response(inv, status, "application/problem+json");
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    for k in ["type", "title", "status", "detail", "code", "request_id"] {
        assert!(keys.contains(&k), "the problem has {k}: {body}");
    }
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("https://teleperson.com/problems/{code}"));
}

#[tokio::test]
async fn the_built_functions_answer_events_exactly_as_the_lambda_service_returns_them() {
    logs::capture();
    let cloud = Cloud::new().await;
    let owner = test_support::unique("owner-");
    let target = test_support::unique("user-");
    let second = test_support::unique("user-");
    let user = test_support::unique("plain-");
    let target_email = format!("{target}@black-box-example.com");
    let second_email = format!("{second}@black-box-example.com");
    let subject = format!("Black box subject {target}");
    let body = format!("Black box body {target}");
    logs::forbid([&target_email, &second_email, &subject, &body]);
    cloud.add_user(&owner, "owner", None).await;
    cloud.add_user(&target, "user", Some(&target_email)).await;
    cloud.add_user(&second, "user", Some(&second_email)).await;
    cloud.add_user(&user, "user", None).await;
    cloud.seed_user_data(&target, 4).await;
    cloud.seed_user_data(&second, 4).await;

    let env = lambda_env(&cloud);
    let mut delete_env = env.clone();
    // No time in the request: the deletion goes on in the worker, through SQS.
    delete_env.insert("DELETE_BUDGET_MS".into(), "0".into());
    let (message, delete, delete_now, list, worker) = futures::join!(
        start("message-user", env.clone()),
        start("delete-user", delete_env),
        start("delete-user", env.clone()),
        start("list-users", env.clone()),
        start("deletion-worker", env.clone()),
    );

    // Send.
    let send = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &target)
        .caller(&owner)
        .header("idempotency-key", "black-box-1")
        .json(&json!({ "subject": subject, "body": body }))
        .to_value();
    let inv = invoke(&message, &send).await;
    let receipt = assert_proxy_response(&inv, 201, "application/json");
    assert_eq!(receipt["status"], "sent");
    for k in ["message_id", "ses_message_id", "sent_at"] {
        assert!(receipt[k].is_string(), "{receipt}");
    }
    let mails = cloud.emails_to(&target_email).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, subject);
    // The same key again: the first answer, nothing sent.
    let replay = invoke(&message, &send).await;
    assert_eq!(assert_proxy_response(&replay, 201, "application/json"), receipt);
    assert_eq!(cloud.emails_to(&target_email).await.len(), 1);

    // History.
    let history = ApiEvent::new("GET", world::MESSAGES_ROUTE)
        .path_param("userId", &target)
        .caller(&owner)
        .to_value();
    let page = assert_proxy_response(&invoke(&message, &history).await, 200, "application/json");
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(5),
        "4 seeded + 1 sent: {page}"
    );
    assert_eq!(page["items"][0]["message_id"], receipt["message_id"]);

    // List.
    let listing = ApiEvent::new("GET", world::LIST_ROUTE)
        .caller(&owner)
        .query("limit", "100")
        .to_value();
    let page = assert_proxy_response(&invoke(&list, &listing).await, 200, "application/json");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["user_id"].as_str())
        .collect();
    assert!(
        ids.contains(&target.as_str()) && ids.contains(&owner.as_str()),
        "{page}"
    );

    // Denied: a regular user, a missing claim, a bad body.
    let denied = ApiEvent::new("DELETE", world::USER_ROUTE)
        .path_param("userId", &target)
        .caller(&user)
        .to_value();
    assert_problem_document(&invoke(&delete, &denied).await, 403, "forbidden_role");
    let anonymous = ApiEvent::new("GET", world::LIST_ROUTE).to_value();
    assert_problem_document(&invoke(&list, &anonymous).await, 401, "unauthenticated");
    let bad = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &target)
        .caller(&owner)
        .json(&json!({ "subject": "Hi\r\nBcc: eve@example.com", "body": "x" }))
        .to_value();
    assert_problem_document(&invoke(&message, &bad).await, 400, "subject_invalid");

    // Delete with no time: 202, and the continuation is on the queue.
    let del = ApiEvent::new("DELETE", world::USER_ROUTE)
        .path_param("userId", &target)
        .caller(&owner)
        .to_value();
    let inv = invoke(&delete, &del).await;
    let accepted = assert_proxy_response(&inv, 202, "application/json");
    assert_eq!(accepted["status"], "in_progress");
    assert_eq!(
        inv.http_header("location"),
        Some(format!("/admin/users/{target}/deletion").as_str())
    );
    let bodies = sqs::drain(&cloud.emulator, &cloud.queue).await;
    assert!(!bodies.is_empty(), "the continuation was queued");

    // The SQS continuation through the worker binary.
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "messageId": format!("bb-{i}"),
                "receiptHandle": format!("handle-{i}"),
                "body": b,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764064800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764064800001"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deletions",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let inv = invoke(&worker, &json!({ "Records": records })).await;
    assert_eq!(
        inv.response,
        json!({ "batchItemFailures": [] }),
        "the worker's batch response"
    );

    let status = ApiEvent::new("GET", world::DELETION_ROUTE)
        .path_param("userId", &target)
        .caller(&owner)
        .to_value();
    let job = assert_proxy_response(&invoke(&delete, &status).await, 200, "application/json");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["deleted"]["transactions"], 4, "{job}");
    assert_eq!(job["deleted"]["admin_messages"], 5, "{job}");
    let profile = cloud.profile_row(&target).await.expect("the tombstone");
    assert!(!profile.contains_key("email") && str_attr(&profile, "deleted_at").is_some());

    // A delete inside the budget answers 200 with the counts.
    let del = ApiEvent::new("DELETE", world::USER_ROUTE)
        .path_param("userId", &second)
        .caller(&owner)
        .to_value();
    let done = assert_proxy_response(&invoke(&delete_now, &del).await, 200, "application/json");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["deleted"]["sessions"], 4, "{done}");
    // A message to a deleted user: 410.
    let late = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &second)
        .caller(&owner)
        .json(&json!({ "body": body }))
        .to_value();
    assert_problem_document(&invoke(&message, &late).await, 410, "user_deleted");

    // Every line the functions wrote: JSON, and free of personal data.
    for (name, f) in [
        ("message-user", &message),
        ("delete-user", &delete),
        ("delete-user (budget)", &delete_now),
        ("list-users", &list),
        ("deletion-worker", &worker),
    ] {
        let text = f.log_text();
        assert!(!text.is_empty(), "{name} logged nothing");
        logs::assert_text_clean(&format!("the output of {name}"), &text);
    }
    let lines: usize = [&message, &delete, &delete_now, &list, &worker]
        .iter()
        .map(|f| f.logs().len())
        .sum();
    cloud.assert_security_logs_clean(&[&subject, &body]).await;
    println!("black box: 5 function processes, {lines} log lines checked");
}

/// Starts `name` with `env` and expects it to stop at init naming `variable`.
async fn assert_init_fails_naming(name: &str, env: BTreeMap<String, String>, variable: &str) {
    let config = FunctionConfig::new(binary(name).await)
        .name(name)
        .timeout(Duration::from_secs(10))
        .envs(env);
    let function = Function::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    let outcome = function.wait_ready(Duration::from_secs(20)).await;
    let message = match outcome {
        Ok(_) => panic!("{name} finished init without {variable}"),
        Err(SimError::InitError(e)) => format!("{} {}", e.message.unwrap_or_default(), e.body),
        Err(SimError::Exited { exit, .. }) => {
            assert_ne!(exit.code, Some(0), "{name} without {variable} exited with 0");
            String::new()
        }
        Err(other) => panic!("{name} without {variable}: {other}"),
    };
    let text = format!("{message}\n{}", function.log_text());
    assert!(
        text.contains(variable),
        "{name} failed at init without naming {variable}:\n{text}"
    );
}

#[tokio::test]
async fn a_missing_or_unusable_setting_fails_the_function_at_init_with_its_name() {
    let full = placeholder_env();
    let mut checked = 0;
    for (name, vars) in REQUIRED {
        for var in *vars {
            let mut env = full.clone();
            env.remove(*var);
            assert_init_fails_naming(name, env, var).await;
            // Blank counts as missing.
            let mut env = full.clone();
            env.insert((*var).to_owned(), "   ".into());
            assert_init_fails_naming(name, env, var).await;
            checked += 2;
        }
    }
    for (name, var) in NUMERIC {
        let mut env = full.clone();
        env.insert((*var).to_owned(), "soon".into());
        assert_init_fails_naming(name, env, var).await;
        checked += 1;
    }
    // With the per-admin deletion limit on, its counters' table becomes required.
    for name in ["delete-user", "deletion-worker"] {
        let mut env = full.clone();
        env.insert("DELETIONS_PER_HOUR".into(), "3".into());
        env.remove("IDEMPOTENCY_TABLE");
        assert_init_fails_naming(name, env, "IDEMPOTENCY_TABLE").await;
        checked += 1;
    }
    println!("init failures: {checked} runs, each named its variable");
}

#[tokio::test]
async fn an_event_lambda_http_cannot_convert_is_an_invocation_error_and_the_function_keeps_serving() {
    // lambda_http 1.3.2 panics converting these (request.rs lines 175 and 553); API Gateway
    // does not send them, but the execution environment must survive them.
    let mut bad_path = ApiEvent::new("GET", world::LIST_ROUTE).to_value();
    bad_path["rawPath"] = json!("\"");
    let mut bad_host = ApiEvent::new("GET", world::LIST_ROUTE).to_value();
    bad_host["headers"]["host"] = json!("exa mple..com");
    let function = start("list-users", placeholder_env()).await;
    let good = ApiEvent::new("GET", world::LIST_ROUTE).to_value();
    for (what, event) in [
        ("a raw path with a quote", bad_path),
        ("an invalid host", bad_host),
    ] {
        match function.invoke(&event).await {
            Err(SimError::FunctionError { error, .. }) => {
                println!(
                    "{what}: the runtime reported {} ({:?})",
                    error.error_type, error.message
                );
            }
            Ok(inv) => {
                // Answered instead: then it is an answer like any other.
                assert!(inv.http_status().is_some(), "{what}: {}", inv.response);
            }
            Err(other) => panic!("{what}: the function did not survive: {other}"),
        }
        // The same environment answers the next event.
        let inv = invoke(&function, &good).await;
        assert_problem_document(&inv, 401, "unauthenticated");
    }
}

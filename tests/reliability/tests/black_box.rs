//! Black-box: the built debug binaries of the functions, run by `lambda-sim` (a Lambda
//! Runtime API on loopback) the way the Lambda service runs them, with the environment
//! `infra/template.yaml` gives them, against the emulator. Events in, the exact response
//! documents out; and a missing setting fails the function at init with the variable's name.
//!
//! The binaries are built by one `cargo build` from the test itself
//! (`reliability_tests::functions`), so a fresh clone needs nothing beforehand. Needs the
//! emulator: `scripts/test.sh`.

use http_api::event::ApiEvent;
use lambda_sim::{Function, FunctionConfig, Invocation, SimError};
use reliability_tests::cloud::{str_attr, Cloud};
use reliability_tests::esm::{self, EventSourceMapping};
use reliability_tests::functions::{binary, invoke, lambda_env, start};
use reliability_tests::logs;
use reliability_tests::world;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::settings::USER_DATA_TABLE_VARS;
use test_support::{ses, sqs};

/// What each function needs (the README's configuration table), written out by the tests
/// rather than read from the code under test: the user-data tables' variables come from
/// `test_support::settings`, which its own tests check against the template and the cascade
/// plan. The deletion functions need IDEMPOTENCY_TABLE only when DELETIONS_PER_HOUR turns the
/// per-admin limit on.
fn required() -> Vec<(&'static str, Vec<&'static str>)> {
    // The delete routine's: the tables it keeps, every user-data table, Cognito and the queue.
    let deletion: Vec<&str> = ["PROFILES_TABLE", "SECURITY_LOGS_TABLE", "DELETION_JOBS_TABLE"]
        .into_iter()
        .chain(USER_DATA_TABLE_VARS.iter().copied())
        .chain(["USER_POOL_ID", "DELETION_QUEUE_URL"])
        .collect();
    vec![
        (
            "message-user",
            vec![
                "PROFILES_TABLE",
                "ADMIN_MESSAGES_TABLE",
                "SECURITY_LOGS_TABLE",
                "IDEMPOTENCY_TABLE",
                "MAIL_FROM",
                "APP_CLIENT_ID",
            ],
        ),
        ("delete-user", [&deletion[..], &["APP_CLIENT_ID"]].concat()),
        (
            "list-users",
            vec!["PROFILES_TABLE", "SECURITY_LOGS_TABLE", "APP_CLIENT_ID"],
        ),
        (
            "audit-log",
            vec![
                "PROFILES_TABLE",
                "SECURITY_LOGS_TABLE",
                "DELETION_JOBS_TABLE",
                "APP_CLIENT_ID",
            ],
        ),
        ("deletion-worker", deletion),
        (
            "sweeper",
            vec![
                "DELETION_JOBS_TABLE",
                "ADMIN_MESSAGES_TABLE",
                "DELETION_QUEUE_URL",
                "PROFILES_TABLE",
                "SECURITY_LOGS_TABLE",
            ],
        ),
        ("token-revocation", vec!["PROFILES_TABLE", "USER_POOL_ID"]),
    ]
}

/// Optional numeric settings: an unusable value fails at init with the name, too.
const NUMERIC: &[(&str, &str)] = &[
    ("message-user", "MESSAGES_PER_MINUTE"),
    ("delete-user", "DELETE_BUDGET_MS"),
    ("delete-user", "DELETIONS_PER_HOUR"),
    ("deletion-worker", "WORKER_BUDGET_MS"),
    ("delete-user", "DELETION_LEASE_MARGIN_MS"),
    ("deletion-worker", "DELETION_LEASE_MARGIN_MS"),
    ("delete-user", "ACCESS_TOKEN_LIFETIME_SECONDS"),
    ("deletion-worker", "ACCESS_TOKEN_LIFETIME_SECONDS"),
];

/// Every setting a function could read, with placeholder values (no emulator needed: these
/// runs end at init).
fn placeholder_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (_, vars) in required() {
        for v in vars {
            env.insert(v.to_owned(), format!("placeholder-{}", v.to_lowercase()));
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
    let (message, delete, delete_now, list, worker, sweeper, audit) = futures::join!(
        start("message-user", env.clone()),
        start("delete-user", delete_env),
        start("delete-user", env.clone()),
        start("list-users", env.clone()),
        start("deletion-worker", env.clone()),
        start("sweeper", env.clone()),
        start("audit-log", env.clone()),
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

    // An address on SES's suppression list: refused with the reason unless sent anyway.
    ses::suppress(&cloud.emulator, &second_email, "BOUNCE").await;
    let to_suppressed = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &second)
        .caller(&owner)
        .json(&json!({ "subject": subject, "body": body }));
    let inv = invoke(&message, &to_suppressed.clone().to_value()).await;
    let refused = assert_proxy_response(&inv, 422, "application/problem+json");
    assert_eq!(refused["code"], "recipient_suppressed", "{refused}");
    assert_eq!(refused["reason"], "BOUNCE", "{refused}");
    assert!(refused["last_update_time"].is_string(), "{refused}");
    assert!(
        cloud.emails_to(&second_email).await.is_empty(),
        "nothing was sent"
    );
    let anyway = to_suppressed
        .json(&json!({ "subject": subject, "body": body, "send_anyway": true }))
        .to_value();
    assert_proxy_response(&invoke(&message, &anyway).await, 201, "application/json");
    assert_eq!(cloud.emails_to(&second_email).await.len(), 1);

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
    // Queued before any step ran, delayed past the request's lease.
    let counts = sqs::counts(&cloud.emulator, &cloud.queue).await;
    assert!(
        counts.delayed >= 1,
        "the continuation is queued, delayed: {counts:?}"
    );

    // SQS's event source mapping hands the continuations to the worker binary; the sweep's
    // schedule invokes the sweeper binary.
    let responses = std::sync::Mutex::new(Vec::new());
    let sweeps = std::sync::Mutex::new(Vec::new());
    let mut esm = EventSourceMapping::new(cloud.emulator.sqs(), &cloud.queue);
    esm.run_until(
        Duration::from_secs(60),
        Duration::from_secs(2),
        |event| {
            let (worker, responses) = (&worker, &responses);
            async move {
                let inv = worker.invoke(&event).await.map_err(|e| e.to_string())?;
                responses.lock().unwrap().push(inv.response.clone());
                Ok(inv.response)
            }
        },
        || {
            let (sweeper, sweeps) = (&sweeper, &sweeps);
            async move {
                let answer = invoke(sweeper, &esm::scheduled_event()).await.response;
                sweeps.lock().unwrap().push(answer);
            }
        },
        || async { cloud.job_status(&target).await.as_deref() == Some("completed") },
    )
    .await
    .expect("the worker finishes the deletion");
    let (responses, sweeps) = (responses.into_inner().unwrap(), sweeps.into_inner().unwrap());
    assert!(!responses.is_empty(), "the worker ran");
    for r in &responses {
        assert_eq!(
            r,
            &json!({ "batchItemFailures": [] }),
            "the worker's batch response"
        );
    }
    for doc in &sweeps {
        for k in ["queued", "overdue", "unconfirmed", "failed"] {
            assert!(doc[k].is_array(), "the sweep's summary lists {k}: {doc}");
        }
    }

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

    // Was this address erased? Found by its hash, in any case, with the job's counts.
    let lookup = ApiEvent::new("GET", world::ERASURES_ROUTE)
        .caller(&owner)
        .query("email", &format!("  {} ", target_email.to_uppercase()))
        .to_value();
    let found = assert_proxy_response(&invoke(&audit, &lookup).await, 200, "application/json");
    let erasures = found["erasures"].as_array().expect("erasures");
    assert_eq!(erasures.len(), 1, "{found}");
    assert_eq!(erasures[0]["job_id"], job["job_id"], "{found}");
    assert_eq!(erasures[0]["status"], "completed", "{found}");
    assert_eq!(erasures[0]["deleted"], job["deleted"], "{found}");
    assert!(
        !found
            .to_string()
            .to_lowercase()
            .contains(&target_email.to_lowercase()),
        "the address is never answered back: {found}"
    );
    // The audit trail of the target: the send, the refused delete, the deletion and its
    // completion.
    let trail = ApiEvent::new("GET", world::AUDIT_ROUTE)
        .caller(&owner)
        .query("target", &target)
        .to_value();
    let page = assert_proxy_response(&invoke(&audit, &trail).await, 200, "application/json");
    let kinds: std::collections::BTreeSet<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "admin_action_denied",
            "admin_deleted_user",
            "admin_deletion_completed",
            "admin_sent_user_message"
        ]
        .into(),
        "{page}"
    );
    let denied_audit = ApiEvent::new("GET", world::AUDIT_ROUTE).caller(&user).to_value();
    assert_problem_document(&invoke(&audit, &denied_audit).await, 403, "forbidden_role");

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
        ("sweeper", &sweeper),
        ("audit-log", &audit),
    ] {
        let text = f.log_text();
        assert!(!text.is_empty(), "{name} logged nothing");
        logs::assert_text_clean(&format!("the output of {name}"), &text);
    }
    let lines: usize = [&message, &delete, &delete_now, &list, &worker, &sweeper, &audit]
        .iter()
        .map(|f| f.logs().len())
        .sum();
    cloud.assert_security_logs_clean(&[&subject, &body]).await;
    println!(
        "black box: 7 function processes, {} worker invocations, {} sweeps, {lines} log lines checked",
        responses.len(),
        sweeps.len()
    );
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
    use futures::StreamExt;
    let full = placeholder_env();
    // (function, environment, the variable its failure must name)
    let mut runs: Vec<(&str, BTreeMap<String, String>, &str)> = Vec::new();
    for (name, vars) in required() {
        for var in vars {
            let mut env = full.clone();
            env.remove(var);
            runs.push((name, env, var));
            // Blank counts as missing.
            let mut env = full.clone();
            env.insert(var.to_owned(), "   ".into());
            runs.push((name, env, var));
        }
    }
    for (name, var) in NUMERIC {
        let mut env = full.clone();
        env.insert((*var).to_owned(), "soon".into());
        runs.push((name, env, var));
    }
    // With the per-admin deletion limit on, its counters' table becomes required.
    for name in ["delete-user", "deletion-worker"] {
        let mut env = full.clone();
        env.insert("DELETIONS_PER_HOUR".into(), "3".into());
        env.remove("IDEMPOTENCY_TABLE");
        runs.push((name, env, "IDEMPOTENCY_TABLE"));
    }
    let checked = runs.len();
    // Four processes at a time: each run is a process that stops at init.
    futures::stream::iter(runs)
        .for_each_concurrent(4, |(name, env, var)| assert_init_fails_naming(name, env, var))
        .await;
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

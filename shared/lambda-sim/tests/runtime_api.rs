//! The simulator against two runtime clients: the real `lambda_runtime` (the `bench-hello`
//! baseline function, built through cargo) and a hand-written one that misbehaves on demand
//! (`lambda-sim-fixture`).

use lambda_sim::{cargo, Function, FunctionConfig, LogFormat, SimError, Stream};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const READY: Duration = Duration::from_secs(30);

fn fixture(mode: &str) -> FunctionConfig {
    FunctionConfig::new(env!("CARGO_BIN_EXE_lambda-sim-fixture")).env("FIXTURE_MODE", mode)
}

fn api_gateway_event() -> Value {
    json!({
        "version": "2.0",
        "routeKey": "GET /hello",
        "rawPath": "/hello",
        "rawQueryString": "",
        "headers": { "accept": "application/json", "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": { "method": "GET", "path": "/hello", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "test" },
            "requestId": "req-1",
            "routeKey": "GET /hello",
            "stage": "$default",
            "time": "25/Nov/2025:11:00:00 +0000",
            "timeEpoch": 1_764_068_400_000_u64
        },
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn the_real_lambda_runtime_starts_and_answers_api_gateway_events() {
    let binary =
        tokio::task::spawn_blocking(|| cargo::build_bin("bench-hello", "bench-hello", cargo::Profile::Debug))
            .await
            .unwrap()
            .expect("bench-hello builds");
    let function = Function::spawn(FunctionConfig::new(binary).memory_mb(256))
        .await
        .unwrap();

    let init = function
        .wait_ready(READY)
        .await
        .expect("the runtime asks for work");
    assert_eq!(function.init_duration(), Some(init));

    for _ in 0..3 {
        let answer = function.invoke(&api_gateway_event()).await.expect("an answer");
        assert_eq!(answer.http_status(), Some(200), "{}", answer.response);
        assert_eq!(answer.http_json(), Some(json!({ "message": "hello" })));
        assert_eq!(answer.http_header("Content-Type"), Some("application/json"));
        assert!(answer.duration >= answer.handler_duration);
    }
    assert!(function.peak_rss_kib().is_some_and(|kib| kib > 0));
    assert!(
        function.exit_info().is_none(),
        "still running between invocations"
    );
    let exit = function.shutdown().await.expect("the process ends");
    assert_eq!(exit.signal, Some(9));
}

#[tokio::test]
async fn the_event_and_the_lambda_headers_reach_the_function() {
    let function = Function::spawn(fixture("echo").name("echo-fn").timeout(Duration::from_secs(20)))
        .await
        .unwrap();
    function.wait_ready(READY).await.unwrap();

    let before_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let answer = function.invoke(&json!({ "hello": ["world", 1] })).await.unwrap();
    let doc = &answer.response;
    assert_eq!(doc["event"], json!({ "hello": ["world", 1] }));
    assert_eq!(doc["request_id"], answer.request_id.as_str());
    assert_eq!(
        doc["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:echo-fn"
    );
    assert!(doc["trace_id"].as_str().unwrap().starts_with("Root=1-"), "{doc}");
    let deadline = doc["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline >= before_ms + 19_000 && deadline <= before_ms + 21_000,
        "deadline {deadline}"
    );

    let second = function.invoke(&json!(null)).await.unwrap();
    assert_ne!(
        second.request_id, answer.request_id,
        "every invocation has its own id"
    );
}

#[tokio::test]
async fn the_function_gets_the_lambda_environment_and_nothing_else() {
    let config = fixture("echo")
        .name("env-fn")
        .memory_mb(512)
        .log_format(LogFormat::Json)
        .region("eu-west-1")
        .env("FIXTURE_EXTRA", "extra-value");
    let function = Function::spawn(config).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    let env = function.invoke(&json!({})).await.unwrap().response["env"].clone();
    assert_eq!(
        env,
        json!({
            "AWS_LAMBDA_FUNCTION_NAME": "env-fn",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/env-fn",
            "AWS_REGION": "eu-west-1",
            "FIXTURE_EXTRA": "extra-value"
        }),
        "cargo's CARGO_MANIFEST_DIR of the test process is not passed on"
    );
}

#[tokio::test]
async fn stdout_and_stderr_lines_are_captured_per_stream() {
    let function = Function::spawn(fixture("echo")).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    let answer = function.invoke(&json!({})).await.unwrap();

    let id = answer.request_id.clone();
    let line = function
        .wait_for_log(Duration::from_secs(10), |l| {
            l.stream == Stream::Stderr && l.text.contains(&id)
        })
        .await
        .expect("the stderr line arrives");
    assert_eq!(line.text, format!("fixture: stderr for {id}"));
    function
        .wait_for_log(Duration::from_secs(10), |l| l.stream == Stream::Stdout)
        .await
        .unwrap();
    assert_eq!(
        function.lines(Stream::Stdout),
        vec![format!("fixture: invocation {id}")]
    );
    assert!(function.log_text().contains(&format!("fixture: invocation {id}")));
    assert!(function
        .wait_for_log(Duration::from_millis(50), |l| l.text == "never written")
        .await
        .is_none());
}

#[tokio::test]
async fn an_init_error_the_runtime_reports_is_returned_by_wait_ready_and_invoke() {
    let function = Function::spawn(fixture("init-error")).await.unwrap();
    match function.wait_ready(READY).await {
        Err(SimError::InitError(e)) => {
            assert_eq!(e.error_type, "Runtime.ConfigError");
            assert_eq!(
                e.message.as_deref(),
                Some("missing environment variable PROFILES_TABLE")
            );
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    assert!(function.init_duration().is_none());
    assert!(matches!(
        function.invoke(&json!({})).await,
        Err(SimError::InitError(_))
    ));
}

#[tokio::test]
async fn a_process_that_exits_during_init_is_reported_with_its_exit_code_and_last_lines() {
    let function = Function::spawn(fixture("exit-at-init")).await.unwrap();
    match function.wait_ready(READY).await {
        Err(SimError::Exited { phase, exit, tail }) => {
            assert_eq!(phase, "during init");
            assert_eq!(exit.code, Some(1));
            assert!(
                tail.contains("start-up failed: missing environment variable PROFILES_TABLE"),
                "{tail}"
            );
        }
        other => panic!("expected an exit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_function_error_is_returned_with_its_type_and_message() {
    let function = Function::spawn(fixture("error")).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    match function.invoke(&json!({})).await {
        Err(SimError::FunctionError { error, .. }) => {
            assert_eq!(error.error_type, "Handler.Boom");
            assert_eq!(error.message.as_deref(), Some("boom"));
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    // The environment lives on after a handled error.
    assert!(matches!(
        function.invoke(&json!({})).await,
        Err(SimError::FunctionError { .. })
    ));
}

#[tokio::test]
async fn a_crash_during_an_invocation_fails_it_with_the_exit_code() {
    let function = Function::spawn(fixture("crash")).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    match function.invoke(&json!({})).await {
        Err(SimError::Exited { phase, exit, tail }) => {
            assert_eq!(phase, "during the invocation");
            assert_eq!(exit.code, Some(3));
            assert!(tail.contains("fixture: invocation"), "{tail}");
        }
        other => panic!("expected an exit, got {other:?}"),
    }
    assert!(matches!(
        function.invoke(&json!({})).await,
        Err(SimError::Exited {
            phase: "before the invocation",
            ..
        })
    ));
}

#[tokio::test]
async fn a_function_killed_mid_invocation_ends_that_invocation_with_its_signal() {
    let config = fixture("slow")
        .env("FIXTURE_DELAY_MS", "60000")
        .timeout(Duration::from_secs(30));
    let function = Function::spawn(config).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    let event = json!({});
    let (outcome, exit) = futures::join!(function.invoke(&event), async {
        // Once the event has been handed to the runtime.
        tokio::time::sleep(Duration::from_millis(300)).await;
        function.kill().await
    });
    let exit = exit.expect("the process ended");
    assert_eq!(exit.signal, Some(9));
    match outcome {
        Err(SimError::Exited { phase, exit, .. }) => {
            assert_eq!(phase, "during the invocation");
            assert_eq!(exit.signal, Some(9));
        }
        other => panic!("expected the killed invocation to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invocation_past_its_timeout_fails_and_the_environment_is_stopped() {
    let config = fixture("slow")
        .env("FIXTURE_DELAY_MS", "60000")
        .timeout(Duration::from_millis(300));
    let function = Function::spawn(config).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    assert!(matches!(
        function.invoke(&json!({})).await,
        Err(SimError::Timeout { .. })
    ));
    let mut exit = None;
    for _ in 0..100 {
        exit = function.exit_info();
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(exit.expect("the process was stopped").signal, Some(9));
}

#[tokio::test]
async fn concurrent_invocations_are_queued_and_each_gets_its_own_answer() {
    let function = Function::spawn(fixture("echo")).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    let events: Vec<Value> = (0..5).map(|i| json!({ "n": i })).collect();
    let answers = futures::future::join_all(events.iter().map(|e| function.invoke(e))).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("an answer");
        assert_eq!(answer.response["event"]["n"], i);
        assert_eq!(answer.response["request_id"], answer.request_id.as_str());
    }
}

#[tokio::test]
async fn dropping_the_function_kills_its_process() {
    let function = Function::spawn(fixture("echo")).await.unwrap();
    function.wait_ready(READY).await.unwrap();
    let pid = function.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(function);
    let mut gone = false;
    for _ in 0..200 {
        // A reaped process leaves /proc; a zombie would show state Z.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "process {pid} still runs after the drop");
}

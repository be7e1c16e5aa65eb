//! Fuzzing the handlers with proptest (cargo-fuzz needs a nightly toolchain, which these
//! machines cannot install): whole API Gateway v2 events, valid and mutated, with random
//! methods, routes, path parameters, claims, headers (content type, Idempotency-Key, the
//! base64 flag) and bodies (random bytes, JSON of any shape, wrong types, duplicate keys,
//! huge strings), through `lambda_http`'s own event parsing and the real handlers; and random
//! SQS batches through the deletion worker.
//!
//! Properties: never a panic; every event `lambda_http` accepts gets an answer with a valid
//! status; a 4xx is problem+json with a documented code; no 5xx on a healthy backend; no log
//! line holds the message content.
//!
//! Bounded in CI by `PROPTEST_CASES` (default 2,000 per property). A longer run:
//! `PROPTEST_CASES=200000 cargo test -p reliability-tests --release fuzz_ -- --nocapture`

use aws_lambda_events::sqs::SqsEvent;
use domain::memory::InMemoryBackend;
use http_api::event::ApiEvent;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Put in every generated subject and body: no log line may ever hold it.
const MARKER: &str = "FUZZ-CONTENT-MARKER";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2_000)
}

/// A runner for one property; a failing case is kept in
/// `proptest-regressions/fuzz-<property>.txt` and replayed first on the next run.
fn runner(property: &str) -> TestRunner {
    let file: &'static str = Box::leak(
        format!(
            "{}/proptest-regressions/fuzz-{property}.txt",
            env!("CARGO_MANIFEST_DIR")
        )
        .into_boxed_str(),
    );
    TestRunner::new(Config {
        cases: cases(),
        max_shrink_iters: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..Config::default()
    })
}

fn seeded() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(world::profile(
        "owner-1",
        "owner",
        Some("olga.fuzz-owner@fuzz-example.com"),
    ));
    b.put_profile(world::profile(
        "admin-1",
        "admin",
        Some("ada.fuzz-admin@fuzz-example.com"),
    ));
    b.put_profile(world::profile(
        "admin-2",
        "admin",
        Some("abe.fuzz-admin@fuzz-example.com"),
    ));
    b.put_profile(world::profile(
        "user-1",
        "user",
        Some("ulla.fuzz-user@fuzz-example.com"),
    ));
    b.put_profile(world::profile("user-2", "user", None));
    b.put_profile(world::tombstone("gone-1", "user"));
    for id in ["owner-1", "admin-1", "admin-2", "user-1", "user-2"] {
        b.put_auth_user(id);
    }
    world::put_user_data(&b, "user-1", 2);
    b
}

fn install_log_checks() {
    logs::capture();
    logs::forbid([
        MARKER,
        "olga.fuzz-owner@fuzz-example.com",
        "ada.fuzz-admin@fuzz-example.com",
        "abe.fuzz-admin@fuzz-example.com",
        "ulla.fuzz-user@fuzz-example.com",
    ]);
}

/// Any JSON value, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        Just(Value::String(String::new())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}|subject|body|acknowledge_privileged", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Text of any kind: printable, control characters, separators, long.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,40}",
        2 => "[ -~]{0,40}",
        1 => "[\\x00-\\x1f\\u{2028}\\u{2029}\\u{85}a-z]{0,12}",
        1 => (1usize..300).prop_map(|n| "s".repeat(n)),
        1 => (9_990usize..10_010).prop_map(|n| "b".repeat(n)),
    ]
}

/// A request body.
#[derive(Debug, Clone)]
enum BodyGen {
    None,
    /// A well-shaped message (subject and body carry the marker).
    Message {
        subject: Option<String>,
        body: String,
    },
    /// A well-shaped deletion body.
    Ack(Value),
    Json(Value),
    Text(String),
    Bytes(Vec<u8>),
    DuplicateKeys {
        key: String,
        a: Value,
        b: Value,
    },
    /// A string this long inside a message body (around the 64 KiB limit).
    Huge(usize),
}

fn arb_body() -> impl Strategy<Value = BodyGen> {
    prop_oneof![
        2 => Just(BodyGen::None),
        6 => (prop::option::of(arb_text()), arb_text()).prop_map(|(s, b)| BodyGen::Message {
            subject: s.map(|s| format!("{s}{MARKER}")),
            body: format!("{MARKER}{b}"),
        }),
        2 => prop_oneof![Just(Value::Bool(true)), Just(Value::Bool(false)), Just(Value::Null), arb_json()]
            .prop_map(|v| BodyGen::Ack(json!({ "acknowledge_privileged": v }))),
        4 => arb_json().prop_map(BodyGen::Json),
        2 => "\\PC{0,200}".prop_map(BodyGen::Text),
        3 => prop::collection::vec(any::<u8>(), 0..256).prop_map(BodyGen::Bytes),
        2 => (
            prop_oneof![Just("body".to_owned()), Just("subject".to_owned()), Just("acknowledge_privileged".to_owned())],
            arb_json(),
            arb_json()
        )
            .prop_map(|(key, a, b)| BodyGen::DuplicateKeys { key, a, b }),
        1 => prop_oneof![60_000usize..70_000, 9_000usize..11_000].prop_map(BodyGen::Huge),
    ]
}

impl BodyGen {
    fn bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            BodyGen::None => return None,
            BodyGen::Message { subject, body } => {
                let mut doc = json!({ "body": body });
                if let Some(s) = subject {
                    doc["subject"] = json!(s);
                }
                doc.to_string().into_bytes()
            }
            BodyGen::Ack(v) | BodyGen::Json(v) => v.to_string().into_bytes(),
            BodyGen::Text(t) => t.clone().into_bytes(),
            BodyGen::Bytes(b) => b.clone(),
            BodyGen::DuplicateKeys { key, a, b } => format!(r#"{{"{key}":{a},"{key}":{b}}}"#).into_bytes(),
            BodyGen::Huge(n) => format!(r#"{{"body":"{MARKER}{}"}}"#, "h".repeat(*n)).into_bytes(),
        })
    }
}

/// Everything an event is built from.
#[derive(Debug, Clone)]
struct EventGen {
    method: String,
    route: usize,
    target: Option<String>,
    send_path_params: bool,
    caller: Option<String>,
    content_type: Option<String>,
    idempotency_key: Option<String>,
    extra_header: Option<(String, String)>,
    query: Vec<(String, String)>,
    body: BodyGen,
    base64: bool,
    stage: Option<String>,
    function: usize,
    mutations: Vec<(usize, Mutation)>,
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
}

const ROUTES: &[&str] = &[
    world::MESSAGES_ROUTE,
    world::USER_ROUTE,
    world::DELETION_ROUTE,
    "/admin/users/{userId}/deletion-preview",
    world::LIST_ROUTE,
    "/admin/users/{userId}/unknown",
    "/",
    "/admin",
];

fn arb_event() -> impl Strategy<Value = EventGen> {
    let method = prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "DELETE"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["PUT", "PATCH", "HEAD", "OPTIONS", "post", "TRACE"]).prop_map(str::to_owned),
        1 => "[A-Z]{1,8}",
    ];
    let id = prop_oneof![
        6 => prop::sample::select(vec!["user-1", "user-2", "admin-1", "admin-2", "owner-1", "gone-1", "missing-9"])
            .prop_map(str::to_owned),
        2 => "\\PC{0,20}",
        1 => "[A-Za-z0-9._:-]{100,140}",
        1 => Just(String::new()),
    ];
    let caller = prop_oneof![
        4 => prop::sample::select(vec!["admin-1", "owner-1", "user-1", "gone-1", "ghost-7"]).prop_map(|s| Some(s.to_owned())),
        1 => Just(None),
        1 => "\\PC{0,16}".prop_map(Some),
    ];
    let content_type = prop_oneof![
        3 => Just(Some("application/json".to_owned())),
        2 => Just(None),
        2 => prop::sample::select(vec![
            "text/plain",
            "application/json; charset=utf-8",
            "application/json; charset=latin1",
            "application/problem+json",
            "multipart/form-data",
            "APPLICATION/JSON",
            ""
        ])
        .prop_map(|s| Some(s.to_owned())),
        1 => "[ -~]{0,30}".prop_map(Some),
    ];
    let key = prop_oneof![
        3 => Just(None),
        2 => "[!-~]{1,20}".prop_map(Some),
        1 => "\\PC{0,300}".prop_map(Some),
    ];
    let extra = prop::option::of(("[a-z-]{1,20}", "[ -~]{0,40}"));
    let query = prop::collection::vec(
        (
            prop_oneof![
                Just("limit".to_owned()),
                Just("cursor".to_owned()),
                Just("q".to_owned()),
                "[a-z]{1,6}"
            ],
            "\\PC{0,30}",
        ),
        0..3,
    );
    let mutations = prop::collection::vec(
        (
            any::<usize>(),
            prop_oneof![Just(Mutation::Remove), arb_json().prop_map(Mutation::Replace)],
        ),
        0..3,
    );
    (
        (
            method,
            0..ROUTES.len(),
            prop::option::of(id),
            any::<bool>(),
            caller,
            content_type,
        ),
        (key, extra, query, arb_body(), prop::bool::weighted(0.3)),
        (
            prop::option::of(prop::sample::select(vec!["prod", "$default", "v1"]).prop_map(str::to_owned)),
            0..8usize,
        ),
        prop_oneof![3 => Just(Vec::new()), 1 => mutations],
    )
        .prop_map(
            |(
                (method, route, target, send_path_params, caller, content_type),
                (idempotency_key, extra_header, query, body, base64),
                (stage, function),
                mutations,
            )| EventGen {
                method,
                route,
                target,
                send_path_params: send_path_params || route % 2 == 0,
                caller,
                content_type,
                idempotency_key,
                extra_header,
                query,
                body,
                base64,
                stage,
                function,
                mutations,
            },
        )
}

/// Every JSON pointer in a value.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn mutate(event: &mut Value, mutations: &[(usize, Mutation)]) {
    for (pick, m) in mutations {
        let mut all = Vec::new();
        pointers(event, String::new(), &mut all);
        if all.is_empty() {
            return;
        }
        let pointer = &all[pick % all.len()];
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let last = last.replace("~1", "/").replace("~0", "~");
        match (event.pointer_mut(parent), m) {
            (Some(Value::Object(map)), Mutation::Remove) => {
                map.remove(&last);
            }
            (Some(Value::Object(map)), Mutation::Replace(v)) => {
                map.insert(last, v.clone());
            }
            (Some(Value::Array(a)), Mutation::Remove) => {
                if let Ok(i) = last.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            (Some(Value::Array(a)), Mutation::Replace(v)) => {
                if let Ok(i) = last.parse::<usize>() {
                    if i < a.len() {
                        a[i] = v.clone();
                    }
                }
            }
            _ => {}
        }
    }
}

impl EventGen {
    fn function(&self) -> Function {
        let natural = match ROUTES[self.route] {
            world::MESSAGES_ROUTE => Function::MessageUser,
            world::LIST_ROUTE => Function::ListUsers,
            _ => Function::DeleteUser,
        };
        match self.function {
            0 => Function::MessageUser,
            1 => Function::DeleteUser,
            2 => Function::ListUsers,
            _ => natural,
        }
    }

    fn to_json(&self) -> String {
        let mut e = ApiEvent::new(&self.method, ROUTES[self.route]);
        if let Some(t) = &self.target {
            e = e.path_param("userId", t);
        }
        if !self.send_path_params {
            e = e.without_path_parameters();
        }
        if let Some(c) = &self.caller {
            e = e.caller(c);
        }
        if let Some(ct) = &self.content_type {
            e = e.header("content-type", ct);
        }
        if let Some(k) = &self.idempotency_key {
            e = e.header("idempotency-key", k);
        }
        if let Some((k, v)) = &self.extra_header {
            e = e.header(k, v);
        }
        for (k, v) in &self.query {
            e = e.query(k, v);
        }
        if let Some(s) = &self.stage {
            e = e.stage(s);
        }
        if let Some(bytes) = self.body.bytes() {
            e = match (self.base64, std::str::from_utf8(&bytes)) {
                (false, Ok(text)) => e.body(text),
                _ => e.base64_body(&bytes),
            };
        }
        let mut value = e.to_value();
        mutate(&mut value, &self.mutations);
        value.to_string()
    }
}

/// What the fuzzers saw, for the report.
#[derive(Default)]
struct Tally {
    executions: AtomicU64,
    parsed: AtomicU64,
    by_class: [AtomicU64; 6],
}

impl Tally {
    fn record(&self, answer: Option<&Answer>) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        if let Some(a) = answer {
            self.parsed.fetch_add(1, Ordering::Relaxed);
            let class = (a.status / 100).clamp(1, 5) as usize;
            self.by_class[class].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn summary(&self, name: &str) -> String {
        let c = |i: usize| self.by_class[i].load(Ordering::Relaxed);
        format!(
            "{name}: {} executions, {} events accepted by lambda_http and answered (2xx {}, 4xx {}, \
             5xx {}); lambda_http panicked on {} events so far in this binary",
            self.executions.load(Ordering::Relaxed),
            self.parsed.load(Ordering::Relaxed),
            c(2),
            c(4),
            c(5),
            LAMBDA_HTTP_PANICS.load(Ordering::Relaxed)
        )
    }
}

/// Events on which `lambda_http`'s own conversion panics (before any handler runs).
static LAMBDA_HTTP_PANICS: AtomicU64 = AtomicU64::new(0);

/// One event through `lambda_http`'s parsing and the chosen handler, on a fresh backend.
fn run_event(rt: &tokio::runtime::Runtime, function: Function, json: &str) -> Option<Answer> {
    // An event lambda_http cannot parse never reaches a handler: the runtime reports an
    // invocation error for it, as it does in Lambda. lambda_http 1.3.2 also panics on a few
    // events API Gateway does not send (a `rawPath` with characters a URI cannot hold, a
    // `host` that is not a valid domain: `request.rs` lines 175 and 553); the runtime catches
    // that panic and reports an invocation error too (see black_box.rs). Counted, not failed:
    // it happens before any code of ours runs.
    let parsed = std::panic::catch_unwind(|| lambda_http::request::from_str(json));
    let request = match parsed {
        Ok(result) => result.ok()?,
        Err(_) => {
            LAMBDA_HTTP_PANICS.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let b = seeded();
    let apps = Apps::in_memory(&b);
    let answer = rt.block_on(apps.call_request(function, request));
    Some(answer)
}

fn check(answer: &Answer) -> Result<(), TestCaseError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer.assert_well_formed()));
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        return Err(TestCaseError::fail(format!(
            "{msg}\nanswer: {} {}",
            answer.status, answer.body
        )));
    }
    prop_assert!(
        answer.status < 500,
        "a healthy backend answered {}: {}",
        answer.status,
        answer.body
    );
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn fuzz_api_gateway_events_through_the_handlers_always_get_a_well_formed_answer() {
    install_log_checks();
    let rt = runtime();
    let tally = Tally::default();
    runner("api-gateway-events")
        .run(&arb_event(), |gen| {
            let json = gen.to_json();
            let answer = run_event(&rt, gen.function(), &json);
            tally.record(answer.as_ref());
            match answer {
                Some(a) => check(&a),
                None => Ok(()),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", tally.summary("fuzz_api_gateway_events"));
    let parsed = tally.parsed.load(Ordering::Relaxed);
    assert!(
        parsed * 2 > tally.executions.load(Ordering::Relaxed),
        "most generated events must reach a handler ({parsed})"
    );
    logs::assert_clean();
}

#[test]
fn fuzz_message_bodies_from_an_admin_always_get_a_well_formed_answer() {
    install_log_checks();
    let rt = runtime();
    let tally = Tally::default();
    let strategy = (
        arb_body(),
        prop::bool::weighted(0.3),
        prop::option::of("[!-~]{1,12}"),
        prop::sample::select(vec![
            "user-1",
            "user-2",
            "admin-2",
            "owner-1",
            "gone-1",
            "missing-1",
        ]),
    );
    runner("message-bodies")
        .run(&strategy, |(body, base64, key, target)| {
            let mut e = world::send(Some("admin-1"), target).header("content-type", "application/json");
            if let Some(k) = &key {
                e = e.header("idempotency-key", k);
            }
            if let Some(bytes) = body.bytes() {
                e = match (base64, std::str::from_utf8(&bytes)) {
                    (false, Ok(text)) => e.body(text),
                    _ => e.base64_body(&bytes),
                };
            }
            let answer = run_event(&rt, Function::MessageUser, &e.to_value().to_string());
            tally.record(answer.as_ref());
            let answer = answer.ok_or_else(|| TestCaseError::fail("a built event always parses"))?;
            check(&answer)?;
            if let BodyGen::Message { .. } = body {
                // A well-shaped message is sent, or refused for its content or its target.
                prop_assert!(
                    matches!(answer.status, 201 | 400 | 404 | 410 | 413 | 422),
                    "{}",
                    answer.body
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", tally.summary("fuzz_message_bodies"));
    logs::assert_clean();
}

#[test]
fn fuzz_delete_bodies_from_an_owner_never_delete_without_a_true_acknowledgement() {
    install_log_checks();
    let rt = runtime();
    let tally = Tally::default();
    let strategy = (arb_body(), prop::bool::weighted(0.3));
    runner("delete-bodies")
        .run(&strategy, |(body, base64)| {
            let mut e = world::delete(Some("owner-1"), "admin-2").header("content-type", "application/json");
            let bytes = body.bytes();
            if let Some(bytes) = &bytes {
                e = match (base64, std::str::from_utf8(bytes)) {
                    (false, Ok(text)) => e.body(text),
                    _ => e.base64_body(bytes),
                };
            }
            let answer = run_event(&rt, Function::DeleteUser, &e.to_value().to_string());
            tally.record(answer.as_ref());
            let answer = answer.ok_or_else(|| TestCaseError::fail("a built event always parses"))?;
            check(&answer)?;
            // Only a body that is exactly {"acknowledge_privileged": true} deletes an admin (a
            // key given twice is refused, whatever its last value).
            let exact_true = bytes.as_deref().is_some_and(|b| {
                let once = String::from_utf8_lossy(b)
                    .matches("\"acknowledge_privileged\"")
                    .count()
                    == 1;
                once && serde_json::from_slice::<Value>(b)
                    .is_ok_and(|v| v == json!({ "acknowledge_privileged": true }))
            });
            if answer.status == 200 {
                prop_assert!(exact_true, "deleted an admin on {:?}", body);
            }
            if exact_true {
                prop_assert_eq!(answer.status, 200);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", tally.summary("fuzz_delete_bodies"));
    logs::assert_clean();
}

#[test]
fn fuzz_raw_json_events_never_crash_a_handler() {
    install_log_checks();
    let rt = runtime();
    let tally = Tally::default();
    // Arbitrary JSON around the keys lambda_http looks at.
    let strategy = (
        prop::collection::btree_map(
            prop_oneof![
                Just("version".to_owned()),
                Just("routeKey".to_owned()),
                Just("rawPath".to_owned()),
                Just("rawQueryString".to_owned()),
                Just("headers".to_owned()),
                Just("requestContext".to_owned()),
                Just("body".to_owned()),
                Just("isBase64Encoded".to_owned()),
                Just("pathParameters".to_owned()),
                Just("queryStringParameters".to_owned()),
                Just("cookies".to_owned()),
            ],
            arb_json(),
            0..11,
        ),
        0..3usize,
    );
    runner("raw-json-events")
        .run(&strategy, |(map, f)| {
            let mut event = ApiEvent::new("POST", world::MESSAGES_ROUTE)
                .path_param("userId", "user-1")
                .caller("admin-1")
                .to_value();
            for (k, v) in map {
                event[k] = v;
            }
            let function = [Function::MessageUser, Function::DeleteUser, Function::ListUsers][f];
            let answer = run_event(&rt, function, &event.to_string());
            tally.record(answer.as_ref());
            match answer {
                Some(a) => check(&a),
                None => Ok(()),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", tally.summary("fuzz_raw_json_events"));
    logs::assert_clean();
}

#[test]
fn fuzz_sqs_batches_through_the_deletion_worker_never_crash_it() {
    install_log_checks();
    let rt = runtime();
    let executions = AtomicU64::new(0);
    let record = (
        prop::option::of("[a-z0-9-]{0,12}"),
        prop_oneof![
            3 => (prop::sample::select(vec!["user-1", "admin-1", "missing-1", "gone-1"]), "\\PC{0,12}")
                .prop_map(|(u, j)| Some(json!({ "user_id": u, "job_id": j }).to_string())),
            2 => arb_json().prop_map(|v| Some(v.to_string())),
            1 => "\\PC{0,64}".prop_map(Some),
            1 => Just(None),
        ],
    );
    runner("sqs-batches")
        .run(&prop::collection::vec(record, 0..6), |records| {
            executions.fetch_add(1, Ordering::Relaxed);
            let b = seeded();
            let apps = Apps::in_memory(&b);
            let records: Vec<Value> = records
                .iter()
                .map(|(id, body)| {
                    let mut r = json!({ "eventSource": "aws:sqs" });
                    if let Some(id) = id {
                        r["messageId"] = json!(id);
                    }
                    if let Some(body) = body {
                        r["body"] = json!(body);
                    }
                    r
                })
                .collect();
            let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))
                .map_err(|e| TestCaseError::fail(format!("a built SQS event parses: {e}")))?;
            let ids_missing = records.iter().any(|r| r.get("messageId").is_none());
            let out = rt.block_on(deletion_worker::handle(
                &apps.worker,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            ));
            // Failures are only reported for records that carry an id; a batch fails as a whole
            // only when a record without an id must be retried.
            match out {
                Ok(resp) => prop_assert!(resp
                    .batch_item_failures
                    .iter()
                    .all(|f| !f.item_identifier.is_empty())),
                Err(_) => prop_assert!(ids_missing),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "fuzz_sqs_batches: {} executions",
        executions.load(Ordering::Relaxed)
    );
    logs::assert_clean();
}

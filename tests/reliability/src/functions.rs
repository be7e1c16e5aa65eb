//! The built debug binaries of the functions, run by `lambda-sim` (a Lambda Runtime API on
//! loopback) the way the Lambda service runs them, with the environment
//! `infra/template.yaml` gives them, against the emulator.
//!
//! Every binary is built by one `cargo build` from the test itself (a no-op when they are up
//! to date), once per test binary, so a fresh clone needs nothing beforehand.

use crate::cloud::Cloud;
use crate::logs;
use lambda_sim::{cargo, Function, FunctionConfig, Invocation, LogFormat};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

/// Every function of the template.
pub const FUNCTIONS: &[&str] = &[
    "message-user",
    "delete-user",
    "list-users",
    "audit-log",
    "deletion-worker",
    "sweeper",
    "token-revocation",
];

/// The binaries, built in one cargo run, once per test binary.
pub fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bins: Vec<(&str, &str)> = FUNCTIONS.iter().map(|f| (*f, *f)).collect();
        cargo::build_bins(&bins, cargo::Profile::Debug, false)
            .unwrap_or_else(|e| panic!("building the function binaries failed: {e}"))
    })
}

/// The path of one binary (building them all the first time).
pub async fn binary(name: &str) -> PathBuf {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || binaries()[&name].clone())
        .await
        .expect("the build thread does not panic")
}

/// The environment the template gives every function, pointed at the emulator.
pub fn lambda_env(cloud: &Cloud) -> BTreeMap<String, String> {
    let mut env = cloud.env().0;
    env.insert("AWS_ENDPOINT_URL".into(), cloud.emulator.endpoint().to_owned());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    // Our crates at trace: every line they could write is checked for personal data.
    env.insert("RUST_LOG".into(), logs::FILTER.to_owned());
    env
}

/// Starts `name` with `env` (JSON logs, a 60 s invocation timeout) and waits for its init.
pub async fn start(name: &str, env: BTreeMap<String, String>) -> Function {
    start_with_timeout(name, env, Duration::from_secs(60)).await
}

/// [`start`] with another invocation timeout (`Lambda-Runtime-Deadline-Ms` is now + it).
pub async fn start_with_timeout(name: &str, env: BTreeMap<String, String>, timeout: Duration) -> Function {
    let config = FunctionConfig::new(binary(name).await)
        .name(name)
        .log_format(LogFormat::Json)
        .timeout(timeout)
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

/// Invokes and panics on an invocation error.
pub async fn invoke(function: &Function, event: &serde_json::Value) -> Invocation {
    function
        .invoke(event)
        .await
        .unwrap_or_else(|e| panic!("the invocation failed: {e}"))
}

/// Every line each function wrote is free of the values registered with [`logs::forbid`];
/// the number of lines checked.
pub fn assert_logs_clean(functions: &[(&str, &Function)]) -> usize {
    let mut lines = 0;
    for (name, f) in functions {
        let text = f.log_text();
        logs::assert_text_clean(&format!("the output of {name}"), &text);
        lines += f.logs().len();
    }
    lines
}

/// The worker binary as the invoke of an [`EventSourceMapping`](crate::esm::EventSourceMapping):
/// the event in, the batch response out; a failed invocation (error, timeout, crash) is `Err`.
pub fn worker_invoker<'a>(
    worker: &'a Function,
) -> impl FnMut(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>> + 'a>> + 'a {
    move |event: Value| {
        Box::pin(async move {
            worker
                .invoke(&event)
                .await
                .map(|i| i.response)
                .map_err(|e| e.to_string())
        })
    }
}

/// The sweeper binary as EventBridge's schedule invokes it. A failed sweep is left to the
/// next schedule, as Lambda leaves it.
pub fn sweep_invoker<'a>(
    sweeper: &'a Function,
) -> impl FnMut() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a {
    move || {
        Box::pin(async move {
            let _ = sweeper.invoke(&crate::esm::scheduled_event()).await;
        })
    }
}

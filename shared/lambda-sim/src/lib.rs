//! A minimal AWS Lambda Runtime API on loopback, to run a function binary the way the
//! Lambda service does: cold starts, invocations, function and init errors, log lines.
//!
//! Each [`Function`] gets its own Runtime API on `127.0.0.1:0` (one execution environment)
//! and a process started with `AWS_LAMBDA_RUNTIME_API` pointing at it, plus the variables
//! Lambda sets (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`,
//! `AWS_LAMBDA_FUNCTION_VERSION`, `AWS_LAMBDA_LOG_FORMAT`, ...) and nothing else from this
//! process's environment unless asked ([`FunctionConfig::inherit_env`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), lambda_sim::SimError> {
//! use lambda_sim::{cargo, Function, FunctionConfig};
//! use std::time::Duration;
//! let binary = cargo::build_bin("bench-hello", "bench-hello", cargo::Profile::Debug).expect("built");
//! let function = Function::spawn(FunctionConfig::new(binary).env("RUST_LOG", "info")).await?;
//! let init = function.wait_ready(Duration::from_secs(10)).await?;
//! let answer = function.invoke(&serde_json::json!({"version": "2.0"})).await?;
//! println!("init {init:?}, answered {:?} in {:?}", answer.http_status(), answer.duration);
//! println!("peak RSS {:?} KiB, logs:\n{}", function.peak_rss_kib(), function.log_text());
//! # Ok(()) }
//! ```
//!
//! Set `LAMBDA_SIM_ECHO_LOGS=1` to copy every function's log lines to stderr while debugging.
//!
//! What it does not do: enforce the memory size, freeze the process between invocations,
//! or stream responses (a streamed response is read whole).

pub mod cargo;
mod function;
mod server;

pub use function::{
    spawn_function, ExitInfo, Function, FunctionConfig, Invocation, LogFormat, LogLine, SimError, Stream,
};
pub use server::{ReportedError, MAX_RESPONSE_BYTES};

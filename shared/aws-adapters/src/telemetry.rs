//! Start-up of every function: tracing, and failing fast on a bad configuration.

use std::fmt::Display;
use tracing_subscriber::EnvFilter;

/// JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON` (Lambda's structured logging), compact text
/// otherwise; the filter comes from `RUST_LOG` (default `info`). In Lambda, timestamps and
/// colours are left to CloudWatch. Handlers never log request bodies, subjects, email
/// addresses or tokens; ids are fine.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(!in_lambda);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init()
    } else if in_lambda {
        builder.compact().without_time().try_init()
    } else {
        builder.compact().try_init()
    };
    // A subscriber set already (tests, the dev server) is fine.
    drop(result);
}

/// Ends start-up when the configuration is unusable: prints the error (which names the
/// variable) and exits non-zero, so the Lambda init fails visibly instead of answering 500s.
pub fn startup_failed(err: impl Display) -> ! {
    tracing::error!(error = %err, "start-up failed");
    eprintln!("start-up failed: {err}");
    std::process::exit(1)
}

//! Lambda entry point: the SQS consumer that continues long deletions.

use aws_adapters::env;
use deletion_worker::WorkerApp;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = env::sdk_config().await;
    let app = env::deletion_from_env(&sdk)
        .and_then(|deletion| {
            Ok(WorkerApp {
                deletion,
                budget: env::duration_ms(&env::process_env, "WORKER_BUDGET_MS", 60_000)?,
            })
        })
        .unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        deletion_worker::handle(app, event)
    }))
    .await
}

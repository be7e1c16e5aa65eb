//! Lambda entry point: the SQS consumer that continues long deletions.

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = env::start(|sdk| {
        Ok(deletion_worker::WorkerApp {
            deletion: env::deletion_from_env(sdk)?,
            budget: env::duration_ms(&env::process_env, "WORKER_BUDGET_MS", 60_000)?,
        })
    })
    .await;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        deletion_worker::handle(app, event)
    }))
    .await
}

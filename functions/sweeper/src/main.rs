//! Lambda entry point: the scheduled sweep.

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = env::sdk_config().await;
    let sweeper = env::sweeper_from_env(&sdk).unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let sweeper = &sweeper;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        sweeper::handle(sweeper, event)
    }))
    .await
}

//! Lambda entry point: the SNS subscriber that records SES delivery events.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = aws_adapters::env::sdk_config().await;
    let app =
        aws_adapters::env::delivery_from_env(&sdk).unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        delivery_events::handle(app, event)
    }))
    .await
}

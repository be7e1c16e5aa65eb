//! Lambda entry point: Cognito sign-outs and disables (CloudTrail through EventBridge).

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = env::sdk_config().await;
    let app = env::revocation_from_env(&sdk).unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        token_revocation::handle(app, event)
    }))
    .await
}

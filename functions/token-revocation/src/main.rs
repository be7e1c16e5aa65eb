//! Lambda entry point: Cognito sign-outs and disables (CloudTrail through EventBridge).

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = env::start(env::revocation_from_env).await;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        token_revocation::handle(app, event)
    }))
    .await
}

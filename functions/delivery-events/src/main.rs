//! Lambda entry point: the SNS subscriber that records SES delivery events.

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = env::start(env::delivery_from_env).await;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        delivery_events::handle(app, event)
    }))
    .await
}

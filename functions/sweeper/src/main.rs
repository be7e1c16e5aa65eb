//! Lambda entry point: the scheduled sweep.

use aws_adapters::env;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = env::start(env::sweeper_from_env).await;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        sweeper::handle(app, event)
    }))
    .await
}

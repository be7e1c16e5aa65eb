//! Lambda entry point: `POST` and `GET /admin/users/{userId}/messages`.

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = aws_adapters::env::sdk_config().await;
    let app = aws_adapters::env::messaging_from_env(&sdk)
        .unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(message_user::handle(app, req).await)
    }))
    .await
}

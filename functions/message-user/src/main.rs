//! Lambda entry point: `POST` and `GET /admin/users/{userId}/messages`.

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = aws_adapters::env::sdk_config().await;
    let app = aws_adapters::env::messaging_from_env(&sdk)
        .and_then(|messaging| {
            Ok(message_user::MessageApp {
                messaging,
                tokens: http_api::request::TokenRules::new(aws_adapters::env::required(
                    &aws_adapters::env::process_env,
                    "APP_CLIENT_ID",
                )?),
            })
        })
        .unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(message_user::handle(app, req).await)
    }))
    .await
}

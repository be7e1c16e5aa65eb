//! Lambda entry point: `GET /admin/audit` and `GET /admin/erasures`.

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = aws_adapters::env::sdk_config().await;
    let app = aws_adapters::env::audit_log_from_env(&sdk)
        .and_then(|audit| {
            Ok(audit_log::AuditApp {
                audit,
                tokens: http_api::request::TokenRules::new(aws_adapters::env::required(
                    &aws_adapters::env::process_env,
                    "APP_CLIENT_ID",
                )?),
            })
        })
        .unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(audit_log::handle(app, req).await)
    }))
    .await
}

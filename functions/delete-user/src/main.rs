//! Lambda entry point: `DELETE /admin/users/{userId}`, `GET .../deletion`, `GET .../deletion-preview`.

use aws_adapters::env;
use delete_user::DeleteApp;
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    http_api::telemetry::init();
    let sdk = env::sdk_config().await;
    let app = env::deletion_from_env(&sdk)
        .and_then(|deletion| {
            Ok(DeleteApp {
                deletion,
                budget: env::duration_ms(&env::process_env, "DELETE_BUDGET_MS", 20_000)?,
                tokens: http_api::request::TokenRules::new(env::required(
                    &env::process_env,
                    "APP_CLIENT_ID",
                )?),
            })
        })
        .unwrap_or_else(|e| http_api::telemetry::startup_failed(e));
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(delete_user::handle(app, req).await)
    }))
    .await
}

//! Lambda entry point: `GET /admin/audit` and `GET /admin/erasures`.

use aws_adapters::env;
use http_api::request::TokenRules;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = env::start(|sdk| {
        Ok(audit_log::AuditApp {
            audit: env::audit_log_from_env(sdk)?,
            tokens: TokenRules::new(env::app_client_id()?),
        })
    })
    .await;
    http_api::serve(app, audit_log::handle).await
}

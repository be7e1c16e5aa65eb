//! Lambda entry point: `DELETE /admin/users/{userId}`, `GET .../deletion`, `GET .../deletion-preview`.

use aws_adapters::env;
use http_api::request::TokenRules;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = env::start(|sdk| {
        Ok(delete_user::DeleteApp {
            deletion: env::deletion_from_env(sdk)?,
            budget: env::duration_ms(&env::process_env, "DELETE_BUDGET_MS", 20_000)?,
            tokens: TokenRules::new(env::app_client_id()?),
        })
    })
    .await;
    http_api::serve(app, delete_user::handle).await
}

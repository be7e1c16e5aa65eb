//! Lambda entry point: `GET /admin/users`.

use aws_adapters::env;
use http_api::request::TokenRules;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = env::start(|sdk| {
        Ok(list_users::ListApp {
            directory: env::directory_from_env(sdk)?,
            tokens: TokenRules::new(env::app_client_id()?),
        })
    })
    .await;
    http_api::serve(app, list_users::handle).await
}

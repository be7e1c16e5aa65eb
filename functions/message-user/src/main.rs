//! Lambda entry point: `POST` and `GET /admin/users/{userId}/messages`.

use aws_adapters::env;
use http_api::request::TokenRules;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = env::start(|sdk| {
        Ok(message_user::MessageApp {
            messaging: env::messaging_from_env(sdk)?,
            tokens: TokenRules::new(env::app_client_id()?),
        })
    })
    .await;
    http_api::serve(app, message_user::handle).await
}

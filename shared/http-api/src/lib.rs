//! The HTTP edge shared by the Lambda handlers (API Gateway HTTP API, payload format 2.0).
//!
//! A handler does four things, and this crate gives it the pieces for each:
//! - read the request: [`request::meta`] (caller from the JWT claims, request id, source IP,
//!   user agent), [`request::user_id`], [`request::page`] and [`body::read_json`] (size,
//!   content type, UTF-8, duplicate keys, unknown fields, wrong types);
//! - parse into domain types (the domain's parsers; [`errors::parse_error`] for their errors);
//! - call the use case;
//! - answer: [`response::json`] for success, and one mapping function per use-case error in
//!   [`errors`] turning it into a [`Problem`] (RFC 9457 `application/problem+json`, with the
//!   stable `code` listed in `docs/DESIGN.md`, "Errors").
//!
//! Every expected failure is an answer, never an `Err` and never a panic. 5xx answers are
//! opaque (the request id only) and their cause chain is logged once, here, at the boundary.
//! No email address, subject, body or token is ever logged.
//!
//! [`event::ApiEvent`] builds real payload 2.0 events for tests and the local dev server.

pub mod body;
pub mod errors;
pub mod event;
pub mod problem;
pub mod request;
pub mod response;

pub use problem::{code, Problem, ALL_CODES};

/// Runs an HTTP function in the Lambda runtime until the process ends: every request goes to
/// `handle`, which always answers (every failure is a problem+json answer, never an `Err`).
/// `app` is built once at init and lives as long as the process.
pub async fn serve<A, H, F>(app: A, handle: H) -> Result<(), lambda_http::Error>
where
    A: Send + Sync + 'static,
    H: Fn(&'static A, lambda_http::Request) -> F,
    F: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    let app: &'static A = Box::leak(Box::new(app));
    lambda_http::run(lambda_http::service_fn(move |req| {
        let answer = handle(app, req);
        async move { Ok::<_, lambda_http::Error>(answer.await) }
    }))
    .await
}

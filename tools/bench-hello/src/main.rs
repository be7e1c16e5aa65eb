//! The cold-start baseline: the smallest `lambda_http` function (no tracing set-up, no AWS
//! SDK). It answers every request with `200 {"message":"hello"}`. The benchmarks compare
//! each real function's start-up, memory and size against this binary, built in the same
//! run with the same release profile.

use lambda_http::{service_fn, Body, Error, Request, Response};

async fn hello(_req: Request) -> Result<Response<Body>, Error> {
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"message":"hello"}"#))?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}

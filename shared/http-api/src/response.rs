//! Success answers.

use crate::problem::Problem;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

/// A JSON answer (`application/json`, `Cache-Control: no-store`: these are admin data).
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T, request_id: &str) -> Response<Body> {
    let body = match serde_json::to_string(value) {
        Ok(body) => body,
        Err(e) => {
            return Problem::internal(&anyhow::Error::from(e).context("serialising the answer"))
                .respond(request_id)
        }
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds a header to an answer (ignored if the value is not a valid header value).
pub fn with_header(mut response: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_answer_has_its_status_type_and_body() {
        let r = json(StatusCode::CREATED, &serde_json::json!({"a": 1}), "r");
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.body(), &Body::Text(r#"{"a":1}"#.into()));
        let r = with_header(r, "location", "/x");
        assert_eq!(r.headers()["location"], "/x");
    }
}

//! A handler's response, read the way API Gateway and a client would read it.

use lambda_http::http::HeaderMap;
use lambda_http::{Body, Response};
use serde_json::Value;

/// Every `code` of the HTTP contract (`docs/openapi.yaml`): the policy's and the use cases'
/// codes, the edge's own (`method_not_allowed`, `not_found`, `internal_error`) and
/// `recipient_undeliverable` (the last message bounced or drew a complaint). Written out
/// here, not taken from `http_api::code::ALL`.
pub const KNOWN_CODES: &[(u16, &str)] = &[
    (400, "invalid_body"),
    (400, "subject_invalid"),
    (400, "body_invalid"),
    (400, "invalid_user_id"),
    (400, "invalid_cursor"),
    (401, "unauthenticated"),
    (403, "forbidden_role"),
    (403, "self_deletion"),
    (403, "privileged_target"),
    (404, "user_not_found"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (409, "request_in_progress"),
    (409, "last_owner"),
    (410, "user_deleted"),
    (413, "payload_too_large"),
    (422, "acknowledgement_required"),
    (422, "no_email_address"),
    (422, "recipient_undeliverable"),
    (422, "recipient_suppressed"),
    (422, "idempotency_key_reused"),
    (429, "rate_limited"),
    (500, "internal_error"),
    (502, "mail_rejected"),
    (503, "dependency_unavailable"),
];

/// A response: status, headers, the body as text and (when it parses) as JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub json: Option<Value>,
}

impl Answer {
    pub fn from_response(response: Response<Body>) -> Answer {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => String::new(),
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        };
        Answer::new(status, parts.headers, body)
    }

    pub fn new(status: u16, headers: HeaderMap, body: String) -> Answer {
        let json = serde_json::from_str(&body).ok();
        Answer {
            status,
            headers,
            body,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem document's `code`, if this is one.
    pub fn code(&self) -> Option<&str> {
        self.json.as_ref().and_then(|j| j["code"].as_str())
    }

    /// `status code` for messages: `201` or `404 user_not_found`.
    pub fn summary(&self) -> String {
        match self.code() {
            Some(code) if self.status >= 400 => format!("{} {code}", self.status),
            _ => self.status.to_string(),
        }
    }

    /// The JSON body; panics with the raw body when it is not JSON.
    pub fn json(&self) -> &Value {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("expected a JSON body, got {:?}", self.body))
    }

    /// Asserts an `application/problem+json` answer (RFC 9457) with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "unexpected answer: {}",
            self.body
        );
        self.assert_well_formed();
        self.json()
    }

    /// Asserts a `2xx` JSON answer with this status.
    pub fn assert_success(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.body
        );
        self.json()
    }

    /// What every answer must be, whatever the request: a status a client understands; a
    /// success is JSON; a failure is a problem+json document with a known code matching its
    /// status, and a 5xx says nothing about its cause.
    pub fn assert_well_formed(&self) {
        assert!(
            (200..=599).contains(&self.status),
            "status {} is not a valid answer",
            self.status
        );
        if self.status < 400 {
            assert_eq!(
                self.header("content-type"),
                Some("application/json"),
                "a success is JSON: {}",
                self.body
            );
            assert!(self.json.is_some(), "a success has a JSON body: {:?}", self.body);
            return;
        }
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "a failure is problem+json: {}",
            self.body
        );
        let doc = self.json();
        let code = doc["code"]
            .as_str()
            .unwrap_or_else(|| panic!("a problem has a code: {doc}"));
        assert!(
            KNOWN_CODES.contains(&(self.status, code)),
            "{} {code} is not a documented status and code",
            self.status
        );
        assert_eq!(doc["status"], self.status, "{doc}");
        assert_eq!(
            doc["type"],
            format!("https://teleperson.com/problems/{code}"),
            "{doc}"
        );
        for member in ["title", "detail", "request_id"] {
            assert!(doc[member].is_string(), "a problem has a {member}: {doc}");
        }
        if self.status >= 500 {
            let detail = doc["detail"].as_str().unwrap_or_default();
            for word in [
                "Error", "error:", "panicked", "dynamodb", "DynamoDB", "SES", "Cognito", "table", "at src/",
            ] {
                assert!(!detail.contains(word), "a 5xx detail is opaque, got {detail:?}");
            }
        }
        if self.status == 429 || self.status == 503 || code == "request_in_progress" {
            assert!(
                self.header("retry-after").is_some(),
                "{} carries Retry-After: {}",
                self.status,
                self.body
            );
        }
    }
}

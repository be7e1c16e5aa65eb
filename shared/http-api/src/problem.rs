//! `application/problem+json` answers (RFC 9457).

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The stable machine codes of the HTTP contract (`docs/openapi.yaml`), the edge's own included.
pub mod code {
    pub const INVALID_BODY: &str = "invalid_body";
    pub const SUBJECT_INVALID: &str = "subject_invalid";
    pub const BODY_INVALID: &str = "body_invalid";
    pub const INVALID_USER_ID: &str = "invalid_user_id";
    /// 400: the `cursor` query parameter is not a `next_cursor` this API returns.
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    pub const FORBIDDEN_ROLE: &str = "forbidden_role";
    pub const SELF_DELETION: &str = "self_deletion";
    pub const PRIVILEGED_TARGET: &str = "privileged_target";
    pub const USER_NOT_FOUND: &str = "user_not_found";
    /// 422: the same `Idempotency-Key` came with a different payload.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// 409: the first request with this `Idempotency-Key` is still in flight.
    pub const REQUEST_IN_PROGRESS: &str = "request_in_progress";
    /// 409: the last active owner cannot be deleted.
    pub const LAST_OWNER: &str = "last_owner";
    pub const USER_DELETED: &str = "user_deleted";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const ACKNOWLEDGEMENT_REQUIRED: &str = "acknowledgement_required";
    pub const NO_EMAIL_ADDRESS: &str = "no_email_address";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const MAIL_REJECTED: &str = "mail_rejected";
    pub const DEPENDENCY_UNAVAILABLE: &str = "dependency_unavailable";
    /// 500: an unexpected failure (opaque body).
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// 405: the route exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 404: no route of this function matches the path (only on a misrouted event).
    pub const NOT_FOUND: &str = "not_found";
    /// 422: the user's last message bounced hard or drew a complaint; the request may be
    /// repeated with `"send_anyway": true`.
    pub const RECIPIENT_UNDELIVERABLE: &str = "recipient_undeliverable";
    /// 422: the address is on the mail provider's account-level suppression list; the
    /// request may be repeated with `"send_anyway": true`.
    pub const RECIPIENT_SUPPRESSED: &str = "recipient_suppressed";

    /// Every code an answer of this crate can carry, with its one HTTP status: the codes
    /// above and the policy's denial codes (which are the same strings). `docs/openapi.yaml`
    /// is checked against this list.
    pub const ALL: &[(&str, u16)] = &[
        (INVALID_BODY, 400),
        (SUBJECT_INVALID, 400),
        (BODY_INVALID, 400),
        (INVALID_USER_ID, 400),
        (INVALID_CURSOR, 400),
        (UNAUTHENTICATED, 401),
        (FORBIDDEN_ROLE, 403),
        (SELF_DELETION, 403),
        (PRIVILEGED_TARGET, 403),
        (USER_NOT_FOUND, 404),
        (NOT_FOUND, 404),
        (METHOD_NOT_ALLOWED, 405),
        (REQUEST_IN_PROGRESS, 409),
        (LAST_OWNER, 409),
        (USER_DELETED, 410),
        (PAYLOAD_TOO_LARGE, 413),
        (ACKNOWLEDGEMENT_REQUIRED, 422),
        (NO_EMAIL_ADDRESS, 422),
        (RECIPIENT_UNDELIVERABLE, 422),
        (RECIPIENT_SUPPRESSED, 422),
        (IDEMPOTENCY_KEY_REUSED, 422),
        (RATE_LIMITED, 429),
        (INTERNAL_ERROR, 500),
        (MAIL_REJECTED, 502),
        (DEPENDENCY_UNAVAILABLE, 503),
    ];

    /// The HTTP status that goes with `code` (`None` for a string that is not a code).
    pub fn status(code: &str) -> Option<u16> {
        ALL.iter().find(|(c, _)| *c == code).map(|(_, s)| *s)
    }
}

/// The code strings of [`code::ALL`].
pub const ALL_CODES: &[&str] = &{
    let mut out = [""; code::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = code::ALL[i].0;
        i += 1;
    }
    out
};

/// The base of every problem `type` URI: `https://teleperson.com/problems/<code>`.
pub const TYPE_BASE: &str = "https://teleperson.com/problems/";

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A short human title per code (constant for a code, as RFC 9457 asks).
pub fn title(code: &str) -> &'static str {
    match code {
        code::INVALID_BODY => "Invalid request body",
        code::SUBJECT_INVALID => "Invalid subject",
        code::BODY_INVALID => "Invalid message body",
        code::INVALID_USER_ID => "Invalid user id",
        code::INVALID_CURSOR => "Invalid page cursor",
        code::UNAUTHENTICATED => "Not authenticated",
        code::FORBIDDEN_ROLE => "Not allowed for this role",
        code::SELF_DELETION => "Cannot delete your own account here",
        code::PRIVILEGED_TARGET => "Only an owner can delete an admin or owner",
        code::USER_NOT_FOUND => "User not found",
        code::IDEMPOTENCY_KEY_REUSED => "Idempotency key reused",
        code::REQUEST_IN_PROGRESS => "Request in progress",
        code::LAST_OWNER => "Last owner",
        code::USER_DELETED => "User deleted",
        code::PAYLOAD_TOO_LARGE => "Payload too large",
        code::ACKNOWLEDGEMENT_REQUIRED => "Acknowledgement required",
        code::NO_EMAIL_ADDRESS => "No email address",
        code::RATE_LIMITED => "Too many requests",
        code::MAIL_REJECTED => "Mail rejected",
        code::DEPENDENCY_UNAVAILABLE => "Service temporarily unavailable",
        code::METHOD_NOT_ALLOWED => "Method not allowed",
        code::NOT_FOUND => "Not found",
        code::RECIPIENT_UNDELIVERABLE => "Recipient undeliverable",
        code::RECIPIENT_SUPPRESSED => "Recipient suppressed",
        code::INTERNAL_ERROR => "Internal error",
        _ => "Internal error",
    }
}

/// One failure answer. Build it with [`Problem::new`] (or the mapping functions in
/// [`crate::errors`]) and turn it into a response with [`Problem::respond`].
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Cow<'static, str>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// Methods for the `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// RFC 9457 extension members (for example `message_id` of a rejected message).
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<Cow<'static, str>>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            allow: None,
            extensions: Map::new(),
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Problem {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// `400 invalid_body` with this detail.
    pub fn invalid_body(detail: impl Into<Cow<'static, str>>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code::INVALID_BODY, detail)
    }

    /// `401 unauthenticated`: the request carries no `sub` claim.
    pub fn unauthenticated() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            code::UNAUTHENTICATED,
            domain::policy::Denial::Unauthenticated.explain(),
        )
    }

    /// `405 method_not_allowed` with an `Allow` header.
    pub fn method_not_allowed(allow: &'static str) -> Problem {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            format!("This resource answers {allow} only."),
        );
        p.allow = Some(allow);
        p
    }

    /// `404 not_found`: the path is not one of this function's routes.
    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            "There is no such resource.",
        )
    }

    /// `500 internal_error`, opaque. Logs `cause` with its chain: use it where the cause is
    /// known and not logged elsewhere.
    pub fn internal(cause: &anyhow::Error) -> Problem {
        tracing::error!(error = ?cause, status = 500, code = code::INTERNAL_ERROR, "request failed");
        Problem::opaque_internal()
    }

    /// `500 internal_error` without logging (the caller logged the cause).
    pub(crate) fn opaque_internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_ERROR,
            "An unexpected error occurred. Quote the request id when reporting it.",
        )
    }

    /// The problem document as JSON.
    pub fn to_json(&self, request_id: &str) -> Value {
        let mut doc = Map::new();
        for (k, v) in &self.extensions {
            doc.insert(k.clone(), v.clone());
        }
        doc.insert("type".into(), Value::from(format!("{TYPE_BASE}{}", self.code)));
        doc.insert("title".into(), Value::from(title(self.code)));
        doc.insert("status".into(), Value::from(self.status.as_u16()));
        doc.insert("detail".into(), Value::from(self.detail.as_ref()));
        doc.insert("code".into(), Value::from(self.code));
        doc.insert("request_id".into(), Value::from(request_id));
        Value::Object(doc)
    }

    /// The response. Client errors are logged here (status and code only, at info level);
    /// server errors were logged with their cause where they were mapped.
    pub fn respond(self, request_id: &str) -> Response<Body> {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, "request refused");
        }
        let body = self.to_json(request_id).to_string();
        let mut response = Response::new(Body::Text(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_has_every_rfc_9457_member_and_the_code() {
        let p = Problem::new(StatusCode::CONFLICT, code::REQUEST_IN_PROGRESS, "in flight");
        let doc = p.to_json("req-1");
        assert_eq!(doc["type"], "https://teleperson.com/problems/request_in_progress");
        assert_eq!(doc["title"], "Request in progress");
        assert_eq!(doc["status"], 409);
        assert_eq!(doc["detail"], "in flight");
        assert_eq!(doc["code"], "request_in_progress");
        assert_eq!(doc["request_id"], "req-1");
    }

    #[test]
    fn extensions_never_override_the_standard_members() {
        let p = Problem::invalid_body("x")
            .with_extension("code", "spoofed")
            .with_extension("message_id", "m-1");
        let doc = p.to_json("r");
        assert_eq!(doc["code"], "invalid_body");
        assert_eq!(doc["message_id"], "m-1");
    }

    #[test]
    fn a_problem_response_carries_its_headers() {
        let r = Problem::new(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, "slow down")
            .with_retry_after(0)
            .respond("r");
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.headers()["retry-after"], "1");
        let r = Problem::method_not_allowed("GET, POST").respond("r");
        assert_eq!(r.headers()["allow"], "GET, POST");
    }

    #[test]
    fn every_code_has_a_title_of_its_own() {
        for c in ALL_CODES.iter().filter(|c| **c != code::INTERNAL_ERROR) {
            assert_ne!(title(c), "Internal error", "{c}");
        }
        let titles: std::collections::BTreeSet<_> = ALL_CODES.iter().map(|c| title(c)).collect();
        assert_eq!(titles.len(), ALL_CODES.len(), "one title per code");
    }

    #[test]
    fn every_code_constant_is_listed_once_in_all() {
        let source = include_str!("problem.rs");
        let start = source.find("pub mod code {").unwrap();
        let end = source.find("pub const ALL: &[(&str, u16)]").unwrap();
        let declared: std::collections::BTreeSet<&str> = source[start..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .filter_map(|l| l.split_once(": &str = \"").map(|(_, rest)| rest))
            .filter_map(|rest| rest.strip_suffix("\";"))
            .collect();
        let listed: std::collections::BTreeSet<&str> = ALL_CODES.iter().copied().collect();
        assert_eq!(listed.len(), ALL_CODES.len(), "no code listed twice");
        assert_eq!(declared, listed);
    }

    #[test]
    fn every_policy_denial_is_a_listed_code_with_the_policys_status() {
        use domain::policy::Denial;
        // A new denial fails to compile here until it is added to the list below.
        let _exhaustive = |d: Denial| match d {
            Denial::Unauthenticated
            | Denial::ForbiddenRole
            | Denial::SelfDeletion
            | Denial::PrivilegedTarget
            | Denial::UserNotFound
            | Denial::UserDeleted
            | Denial::AcknowledgementRequired
            | Denial::LastOwner => (),
        };
        for d in [
            Denial::Unauthenticated,
            Denial::ForbiddenRole,
            Denial::SelfDeletion,
            Denial::PrivilegedTarget,
            Denial::LastOwner,
            Denial::UserNotFound,
            Denial::UserDeleted,
            Denial::AcknowledgementRequired,
        ] {
            assert_eq!(code::status(d.code()), Some(d.status()), "{}", d.code());
        }
        assert_eq!(code::status("teapot"), None);
    }
}

//! One mapping per use-case error to status + code (`docs/DESIGN.md`, "Errors").
//!
//! This is the boundary: every 5xx is logged here, once, with its full cause chain
//! (`error = ?anyhow::Error`), and answered with an opaque body. Client errors carry a
//! helpful `detail`; nothing in any of them echoes a stored email, subject or body.

use crate::problem::{code, Problem};
use domain::audit::AuditError;
use domain::deletion::DeleteError;
use domain::messaging::{HistoryError, SendError};
use domain::model::MessageStatus;
use domain::policy::Denial;
use domain::ports::SuppressionReason;
use domain::types::ParseError;
use domain::users::ListError;
use lambda_http::http::StatusCode;
use std::time::Duration;

/// A policy refusal: the policy's own status, code and explanation.
pub fn denied(denial: Denial) -> Problem {
    let status = StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::FORBIDDEN);
    Problem::new(status, denial.code(), denial.explain())
}

/// A value that did not parse: `400 <code>` with `"<what> <rule>"` as the detail, for example
/// `subject must be at most 200 characters (got 201)`.
pub fn parse_error(code: &'static str, what: &str, err: &ParseError) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, format!("{what} {err}."))
}

/// `POST /admin/users/{id}/messages`
pub fn send_error(err: SendError) -> Problem {
    match &err {
        SendError::Denied(d) => denied(*d),
        SendError::RecipientUndeliverable { last_status } => {
            let what = match last_status {
                MessageStatus::Complained => "drew a spam complaint",
                _ => "bounced",
            };
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::RECIPIENT_UNDELIVERABLE,
                format!(
                    "The last message to this user {what}, so nothing was sent. To send anyway, \
                     repeat the request with \"send_anyway\": true."
                ),
            )
            .with_extension("last_status", last_status.as_str())
        }
        SendError::RecipientSuppressed { suppression } => {
            let what = match suppression.reason {
                SuppressionReason::Complaint => "a spam complaint",
                SuppressionReason::Bounce => "a hard bounce",
            };
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::RECIPIENT_SUPPRESSED,
                format!(
                    "The mail provider keeps this address on its suppression list after {what}: \
                     a message would be accepted and not delivered, so nothing was sent. To send \
                     anyway, repeat the request with \"send_anyway\": true."
                ),
            )
            .with_extension("reason", suppression.reason.as_str())
            .with_extension("last_update_time", suppression.since.clone())
        }
        SendError::NoEmailAddress => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::NO_EMAIL_ADDRESS,
            "This user has no usable email address, so no message can be sent.",
        ),
        SendError::IdempotencyKeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used with a different request.",
        ),
        SendError::RequestInProgress {
            message_id,
            retry_after,
        } => Problem::new(
            StatusCode::CONFLICT,
            code::REQUEST_IN_PROGRESS,
            "A request with this Idempotency-Key is still in progress. Retry after a moment for its answer.",
        )
        .with_extension("message_id", message_id.as_str())
        .with_retry_after(retry_after_seconds(*retry_after)),
        SendError::RateLimited { retry_after } => rate_limited(
            "Too many messages from this account. Try again later.",
            Some(*retry_after),
        ),
        SendError::MailThrottled { retry_after } => rate_limited(
            "The mail provider is throttling sends. Try again shortly.",
            *retry_after,
        ),
        SendError::MailRejected {
            message_id,
            code: provider_code,
        } => {
            tracing::warn!(
                status = 502,
                code = code::MAIL_REJECTED,
                message_id = message_id.as_str(),
                provider_code = provider_code.as_str(),
                "the mail provider rejected the message"
            );
            Problem::new(
                StatusCode::BAD_GATEWAY,
                code::MAIL_REJECTED,
                format!(
                    "The mail provider refused this message ({provider_code}). It is recorded as failed."
                ),
            )
            .with_extension("message_id", message_id.as_str())
        }
        // Nothing was sent: a retry (with the same key, too) may send it.
        SendError::MailNotSent { .. } => unavailable(anyhow::Error::from(err)),
        SendError::Dependency(e) => {
            let retryable = e.retryable;
            dependency(retryable, anyhow::Error::from(err))
        }
    }
}

/// `GET /admin/users/{id}/messages`
pub fn history_error(err: HistoryError) -> Problem {
    match &err {
        HistoryError::Denied(d) => denied(*d),
        HistoryError::Dependency(e) => {
            let retryable = e.retryable;
            dependency(retryable, anyhow::Error::from(err))
        }
    }
}

/// `DELETE /admin/users/{id}`, its status and its preview.
pub fn delete_error(err: DeleteError) -> Problem {
    match &err {
        DeleteError::Denied(d) => denied(*d),
        DeleteError::RateLimited { retry_after } => rate_limited(
            "Too many deletions from this account. Try again later.",
            Some(*retry_after),
        ),
        DeleteError::Dependency(e) => {
            let retryable = e.retryable;
            dependency(retryable, anyhow::Error::from(err))
        }
    }
}

/// `GET /admin/users`
pub fn list_error(err: ListError) -> Problem {
    match &err {
        ListError::Denied(d) => denied(*d),
        ListError::Dependency(e) => {
            let retryable = e.retryable;
            dependency(retryable, anyhow::Error::from(err))
        }
    }
}

/// `GET /admin/audit`, `GET /admin/erasures`
pub fn audit_error(err: AuditError) -> Problem {
    match &err {
        AuditError::Denied(d) => denied(*d),
        AuditError::Dependency(e) => {
            let retryable = e.retryable;
            dependency(retryable, anyhow::Error::from(err))
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up, at least 1.
pub fn retry_after_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

fn rate_limited(detail: &'static str, retry_after: Option<Duration>) -> Problem {
    let seconds = retry_after.map_or(1, retry_after_seconds);
    Problem::new(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, detail).with_retry_after(seconds)
}

/// Retryable: `503 dependency_unavailable` + `Retry-After: 1`; otherwise an opaque 500.
fn dependency(retryable: bool, err: anyhow::Error) -> Problem {
    if retryable {
        unavailable(err)
    } else {
        tracing::error!(error = ?err, status = 500, code = code::INTERNAL_ERROR, "request failed");
        Problem::opaque_internal()
    }
}

fn unavailable(err: anyhow::Error) -> Problem {
    tracing::error!(error = ?err, status = 503, code = code::DEPENDENCY_UNAVAILABLE, "request failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::DEPENDENCY_UNAVAILABLE,
        "A service this request depends on is unavailable. Try again shortly.",
    )
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::DependencyError;

    fn dep(retryable: bool) -> DependencyError {
        DependencyError::new("profiles", retryable, anyhow::anyhow!("socket closed"))
    }

    /// Every row of the error table (`docs/DESIGN.md`, "Errors") that a send error can produce.
    #[test]
    fn each_send_error_maps_to_its_status_and_code() {
        let rows: Vec<(SendError, u16, &str)> = vec![
            (SendError::Denied(Denial::Unauthenticated), 401, "unauthenticated"),
            (SendError::Denied(Denial::ForbiddenRole), 403, "forbidden_role"),
            (SendError::Denied(Denial::UserNotFound), 404, "user_not_found"),
            (SendError::Denied(Denial::UserDeleted), 410, "user_deleted"),
            (SendError::NoEmailAddress, 422, "no_email_address"),
            (
                SendError::RecipientUndeliverable {
                    last_status: MessageStatus::Bounced,
                },
                422,
                "recipient_undeliverable",
            ),
            (SendError::IdempotencyKeyReused, 422, "idempotency_key_reused"),
            (
                SendError::RequestInProgress {
                    message_id: "m".into(),
                    retry_after: Duration::from_millis(2500),
                },
                409,
                "request_in_progress",
            ),
            (
                SendError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
                "rate_limited",
            ),
            (
                SendError::MailThrottled { retry_after: None },
                429,
                "rate_limited",
            ),
            (
                SendError::MailRejected {
                    message_id: "m".into(),
                    code: "MessageRejected".into(),
                },
                502,
                "mail_rejected",
            ),
            (
                SendError::MailNotSent {
                    code: "ConnectFailure".into(),
                    source: anyhow::anyhow!("down"),
                },
                503,
                "dependency_unavailable",
            ),
            (SendError::Dependency(dep(true)), 503, "dependency_unavailable"),
            (SendError::Dependency(dep(false)), 500, "internal_error"),
        ];
        for (err, status, code) in rows {
            let p = send_error(err);
            assert_eq!((p.status.as_u16(), p.code), (status, code));
        }
    }

    #[test]
    fn an_undeliverable_recipient_says_what_happened_and_how_to_send_anyway() {
        for (status, said) in [
            (MessageStatus::Bounced, "bounced"),
            (MessageStatus::Complained, "complaint"),
        ] {
            let p = send_error(SendError::RecipientUndeliverable { last_status: status });
            assert!(p.detail.contains(said), "{}", p.detail);
            assert!(p.detail.contains(r#""send_anyway": true"#), "{}", p.detail);
            assert_eq!(p.extensions["last_status"], status.as_str());
        }
    }

    #[test]
    fn a_suppressed_recipient_is_told_with_the_reason_and_date() {
        for (reason, said) in [
            (SuppressionReason::Bounce, "hard bounce"),
            (SuppressionReason::Complaint, "spam complaint"),
        ] {
            let p = send_error(SendError::RecipientSuppressed {
                suppression: domain::ports::Suppression {
                    reason,
                    since: "2026-10-02T09:15:00Z".into(),
                },
            });
            assert_eq!(p.status.as_u16(), 422);
            assert_eq!(p.code, "recipient_suppressed");
            assert!(p.detail.contains(said), "{}", p.detail);
            assert!(p.detail.contains(r#""send_anyway": true"#), "{}", p.detail);
            assert_eq!(p.extensions["reason"], reason.as_str());
            assert_eq!(p.extensions["last_update_time"], "2026-10-02T09:15:00Z");
        }
    }

    #[test]
    fn every_mapped_code_is_listed_with_its_status() {
        let problems = [
            send_error(SendError::RecipientUndeliverable {
                last_status: MessageStatus::Complained,
            }),
            send_error(SendError::NoEmailAddress),
            send_error(SendError::RecipientSuppressed {
                suppression: domain::ports::Suppression {
                    reason: SuppressionReason::Bounce,
                    since: "2026-10-02T09:15:00Z".into(),
                },
            }),
            audit_error(AuditError::Denied(Denial::ForbiddenRole)),
            send_error(SendError::RequestInProgress {
                message_id: "m".into(),
                retry_after: Duration::ZERO,
            }),
            send_error(SendError::IdempotencyKeyReused),
            delete_error(DeleteError::Denied(Denial::LastOwner)),
            send_error(SendError::MailThrottled { retry_after: None }),
            send_error(SendError::MailRejected {
                message_id: "m".into(),
                code: "X".into(),
            }),
            send_error(SendError::Dependency(dep(false))),
            delete_error(DeleteError::RateLimited {
                retry_after: Duration::from_secs(3),
            }),
            Problem::unauthenticated(),
            Problem::not_found(),
            Problem::method_not_allowed("GET"),
            Problem::invalid_body("x"),
        ];
        for p in problems {
            assert_eq!(code::status(p.code), Some(p.status.as_u16()), "{}", p.code);
        }
    }

    #[test]
    fn rate_limits_round_retry_after_up_to_whole_seconds() {
        let p = send_error(SendError::RateLimited {
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(p.retry_after, Some(2));
        let p = send_error(SendError::MailThrottled { retry_after: None });
        assert_eq!(p.retry_after, Some(1));
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(59)), 59);
    }

    #[test]
    fn a_retryable_dependency_failure_asks_to_retry_after_one_second() {
        let p = delete_error(DeleteError::Dependency(dep(true)));
        assert_eq!((p.status.as_u16(), p.retry_after), (503, Some(1)));
        let p = list_error(ListError::Dependency(dep(false)));
        assert_eq!((p.status.as_u16(), p.retry_after), (500, None));
    }

    #[test]
    fn server_error_details_are_opaque() {
        for p in [
            send_error(SendError::Dependency(dep(false))),
            history_error(HistoryError::Dependency(dep(true))),
            list_error(ListError::Dependency(dep(true))),
        ] {
            assert!(!p.detail.contains("socket"), "{}", p.detail);
            assert!(!p.detail.contains("profiles"), "{}", p.detail);
        }
    }

    #[test]
    fn every_denial_keeps_the_policys_status_and_code() {
        for d in [
            Denial::Unauthenticated,
            Denial::ForbiddenRole,
            Denial::SelfDeletion,
            Denial::PrivilegedTarget,
            Denial::UserNotFound,
            Denial::UserDeleted,
            Denial::AcknowledgementRequired,
            Denial::LastOwner,
        ] {
            let p = delete_error(DeleteError::Denied(d));
            assert_eq!((p.status.as_u16(), p.code), (d.status(), d.code()));
            assert_eq!(p.detail, d.explain());
        }
    }

    #[test]
    fn a_parse_error_names_the_field_and_the_rule() {
        let p = parse_error(
            code::SUBJECT_INVALID,
            "subject",
            &ParseError::TooLong { max: 200, len: 201 },
        );
        assert_eq!(p.status, 400);
        assert_eq!(p.detail, "subject must be at most 200 characters (got 201).");
    }
}

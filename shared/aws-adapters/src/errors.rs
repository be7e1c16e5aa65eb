//! SDK errors → [`DependencyError`]: retryable for throttling, 5xx, timeouts and dispatch
//! failures; not retryable otherwise. The message names the operation and table only.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use domain::ports::DependencyError;

/// Error codes that mean "try again" whatever the HTTP status, on top of the "slow down"
/// ones ([`THROTTLING_CODES`]).
const RETRYABLE_CODES: &[&str] = &[
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "KMSThrottlingException",
];

pub(crate) fn is_retryable_code(code: Option<&str>) -> bool {
    is_throttling_code(code) || code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

/// Whether repeating the call may succeed.
pub(crate) fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status >= 500 || status == 429 || is_retryable_code(se.err().code())
        }
        _ => true,
    }
}

/// The error code of a service error (`None` for timeouts, dispatch failures, ...).
pub(crate) fn service_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Wrap an SDK error, with `what` (operation and table) as context.
pub(crate) fn sdk<E>(
    dependency: &'static str, what: impl Into<String>, err: SdkError<E, HttpResponse>,
) -> DependencyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = is_retryable(&err);
    let throttled = is_throttling_code(service_code(&err));
    let source = anyhow::Error::new(err).context(what.into());
    if throttled {
        DependencyError::throttled(dependency, source)
    } else {
        DependencyError::new(dependency, retryable, source)
    }
}

/// Codes that mean "slow down": the request was refused before it applied.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

pub(crate) fn is_throttling_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| THROTTLING_CODES.contains(&c))
}

/// A request that could not even be built (a bug, not an outage).
pub(crate) fn build(
    dependency: &'static str, what: impl Into<String>, err: impl std::error::Error + Send + Sync + 'static,
) -> DependencyError {
    DependencyError::new(dependency, false, anyhow::Error::new(err).context(what.into()))
}

/// A stored row that does not have the expected shape.
pub(crate) fn malformed(dependency: &'static str, what: impl Into<String>) -> DependencyError {
    DependencyError::new(dependency, false, anyhow::anyhow!("{}", what.into()))
}

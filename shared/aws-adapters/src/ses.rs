//! SESv2 `SendEmail`: plain-text mail with the support Reply-To; and the account-level
//! suppression list, asked before a send.

use crate::deadline::WithinDeadline;
use async_trait::async_trait;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent, Message, MessageTag, SuppressionListReason,
};
use aws_sdk_sesv2::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use domain::ports::{
    MailError, Mailer, OutgoingEmail, StoreResult, Suppression, SuppressionList, SuppressionReason,
};
use domain::types::EmailAddress;
use std::time::Duration;

/// The whole `SendEmail` call, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time left in the invocation for a `SendEmail` to start.
pub const MIN_TIME_TO_SEND: Duration = Duration::from_secs(2);

/// Codes that mean "SES refused this message for good": nothing was sent.
const REJECTED: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
    "ValidationException",
    "InvalidParameterValue",
    "AccessDeniedException",
];

/// Codes that mean "not accepted, try later": nothing was sent.
const THROTTLED: &[&str] = &[
    "TooManyRequestsException",
    "LimitExceededException",
    "Throttling",
    "ThrottlingException",
];

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// The client configuration every `SesMailer` uses: a 10 s operation timeout, and no
    /// automatic retries (`SendEmail` is not idempotent: a retried timeout could mail twice;
    /// the caller's idempotency key makes a client retry safe instead).
    pub fn client_config(sdk: &aws_config::SdkConfig) -> aws_sdk_sesv2::config::Builder {
        aws_sdk_sesv2::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(SEND_TIMEOUT)
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(1))
    }

    pub fn new(sdk: &aws_config::SdkConfig, configuration_set: Option<String>) -> Self {
        Self::with_client(
            Client::from_conf(Self::client_config(sdk).build()),
            configuration_set,
        )
    }

    /// With a client built elsewhere (tests add an interceptor to [`Self::client_config`]).
    pub fn with_client(client: Client, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            configuration_set: configuration_set.filter(|c| !c.trim().is_empty()),
        }
    }
}

fn text(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|_| MailError::Rejected {
            code: "InvalidContent".into(),
        })
}

/// The provider's answer → [`MailError`]. SESv2 has no idempotency token: only a definite
/// yes or no settles a send. A definite no (a rejection, a throttle answered with its code,
/// a request that could not even be built, a connection that was never made) means nothing
/// was sent; everything else (a timeout, any 5xx, a connection dropped after the request
/// was written, an error this code does not know) may have been accepted: `Unconfirmed`.
/// A service error's message text is never kept (it can name the address); its code and
/// status are.
pub(crate) fn classify(err: SdkError<SendEmailError, HttpResponse>) -> MailError {
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let status = se.raw().status().as_u16();
            if REJECTED.contains(&code.as_str()) {
                return MailError::Rejected { code };
            }
            if THROTTLED.contains(&code.as_str()) || status == 429 {
                return MailError::Throttled {
                    code,
                    retry_after: Some(Duration::from_secs(1)),
                };
            }
            MailError::Unconfirmed {
                source: anyhow::anyhow!("SESv2 SendEmail answered {code} (HTTP {status})"),
                code,
            }
        }
        SdkError::ConstructionFailure(_) => MailError::Rejected {
            code: "ConstructionFailure".into(),
        },
        SdkError::DispatchFailure(_) if never_connected(&err) => MailError::NotSent {
            code: "ConnectFailure".into(),
            source: anyhow::Error::new(err).context("SESv2 SendEmail (no connection)"),
        },
        SdkError::TimeoutError(_) => MailError::Unconfirmed {
            code: "Timeout".into(),
            source: anyhow::Error::new(err).context("SESv2 SendEmail (no answer)"),
        },
        SdkError::DispatchFailure(_) => MailError::Unconfirmed {
            code: "DispatchFailure".into(),
            source: anyhow::Error::new(err).context("SESv2 SendEmail (connection lost)"),
        },
        _ => MailError::Unconfirmed {
            code: "ResponseError".into(),
            source: anyhow::Error::new(err).context("SESv2 SendEmail (unreadable answer)"),
        },
    }
}

/// Whether the connection to SES was never made (so no byte of the request was written):
/// the HTTP client's own "connect" error somewhere in the cause chain.
fn never_connected(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            return client.is_connect();
        }
        cause = e.source();
    }
    false
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(text(email.subject.as_str())?)
            .body(Body::builder().text(text(email.body.as_str())?).build())
            .build();
        let tag = MessageTag::builder()
            .name("message_id")
            .value(&email.message_id)
            .build()
            .map_err(|_| MailError::Rejected {
                code: "InvalidTag".into(),
            })?;
        // Too close to the invocation's deadline for SES to answer: not sent at all rather
        // than cut off half-way (which would leave the mail unconfirmed).
        if crate::deadline::left().is_some_and(|left| left < MIN_TIME_TO_SEND) {
            return Err(MailError::NotSent {
                code: "NoTimeLeft".into(),
                source: anyhow::anyhow!("less than {MIN_TIME_TO_SEND:?} left before the deadline"),
            });
        }
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(email.to.as_str()).build())
            .reply_to_addresses(&email.reply_to)
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .email_tags(tag)
            .send()
            .within_deadline()
            .await
            .map_err(|e| {
                let err = classify(e);
                let message_id = &email.message_id;
                tracing::warn!(%message_id, code = mail_code(&err), "SESv2 SendEmail failed");
                err
            })?;
        // A 200 without a message id is not a definite yes: SES may or may not send it.
        out.message_id()
            .map(str::to_owned)
            .ok_or_else(|| MailError::Unconfirmed {
                code: "NoMessageId".into(),
                source: anyhow::anyhow!("SESv2 SendEmail answered without a MessageId"),
            })
    }
}

fn mail_code(err: &MailError) -> &str {
    match err {
        MailError::Rejected { code }
        | MailError::Throttled { code, .. }
        | MailError::NotSent { code, .. }
        | MailError::Unconfirmed { code, .. } => code,
    }
}

/// SESv2 `GetSuppressedDestination`: whether the account-level suppression list holds an
/// address (mail to it is accepted and then not delivered). A read: its client retries
/// (the SDK's standard mode) within a short timeout.
#[derive(Clone, Debug)]
pub struct SesSuppressionList {
    client: Client,
}

impl SesSuppressionList {
    /// The client configuration: the SDK's standard retries (a read is safe to repeat) within
    /// the timeouts every other client of the functions has: 3 s an attempt, 8 s in all. A
    /// shorter attempt gave up on answers that were merely slow under load, and a send that
    /// cannot ask the list is refused (503), never sent unchecked.
    pub fn client_config(sdk: &aws_config::SdkConfig) -> aws_sdk_sesv2::config::Builder {
        aws_sdk_sesv2::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(8))
                    .build(),
            )
            .retry_config(RetryConfig::standard())
    }

    /// With a client built elsewhere (from [`Self::client_config`]).
    pub fn with_client(client: Client) -> Self {
        SesSuppressionList { client }
    }
}

#[async_trait]
impl SuppressionList for SesSuppressionList {
    async fn check(&self, to: &EmailAddress) -> StoreResult<Option<Suppression>> {
        let result = self
            .client
            .get_suppressed_destination()
            .email_address(to.as_str())
            .send()
            .within_deadline()
            .await;
        let out = match result {
            Ok(out) => out,
            // "Not on the list" is how SES answers an address that is not suppressed.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(crate::errors::sdk("ses", "SESv2 GetSuppressedDestination", e)),
        };
        let Some(found) = out.suppressed_destination() else {
            return Ok(None);
        };
        let reason = match found.reason() {
            SuppressionListReason::Bounce => SuppressionReason::Bounce,
            SuppressionListReason::Complaint => SuppressionReason::Complaint,
            // A reason this version does not know: suppressed all the same, and a bounce is
            // the closer reading of "will not be delivered".
            _ => SuppressionReason::Bounce,
        };
        let since = found
            .last_update_time()
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default();
        Ok(Some(Suppression { reason, since }))
    }
}

//! SESv2 `SendEmail`: plain-text mail with the support Reply-To.

use async_trait::async_trait;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use aws_sdk_sesv2::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use domain::ports::{MailError, Mailer, OutgoingEmail};
use std::time::Duration;

/// The whole `SendEmail` call, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Codes that mean "this message will never be accepted as it is".
const REJECTED: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
    "ValidationException",
    "InvalidParameterValue",
];

/// Codes that mean "slow down".
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

/// The provider's answer → [`MailError`]. A service error's message text is never kept (it
/// can name the address); its code and status are.
fn classify(err: SdkError<SendEmailError, HttpResponse>) -> MailError {
    let (code, status) = match &err {
        SdkError::ServiceError(se) => (
            se.err().code().unwrap_or("Unknown").to_owned(),
            Some(se.raw().status().as_u16()),
        ),
        SdkError::ConstructionFailure(_) => {
            return MailError::Rejected {
                code: "ConstructionFailure".into(),
            }
        }
        // The request may have reached SES: no answer is not a "no".
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            let code = if matches!(err, SdkError::TimeoutError(_)) {
                "Timeout"
            } else {
                "ResponseError"
            };
            return MailError::Unconfirmed {
                code: code.to_owned(),
                source: anyhow::Error::new(err).context("SESv2 SendEmail (no answer)"),
            };
        }
        SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), None),
        _ => ("Unknown".to_owned(), None),
    };
    if REJECTED.contains(&code.as_str()) {
        return MailError::Rejected { code };
    }
    if THROTTLED.contains(&code.as_str()) || status == Some(429) {
        return MailError::Throttled {
            code,
            retry_after: Some(Duration::from_secs(1)),
        };
    }
    // 5xx, dispatch failures (no connection), and the rest (access denied, unknown 4xx): the
    // message was not accepted and may be tried again once the cause is gone.
    let source = match status {
        Some(status) => anyhow::anyhow!("SESv2 SendEmail answered {code} (HTTP {status})"),
        None => anyhow::Error::new(err).context("SESv2 SendEmail"),
    };
    MailError::Unavailable { code, source }
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
            .await
            .map_err(|e| {
                let err = classify(e);
                let message_id = &email.message_id;
                tracing::warn!(%message_id, code = mail_code(&err), "SESv2 SendEmail failed");
                err
            })?;
        out.message_id()
            .map(str::to_owned)
            .ok_or_else(|| MailError::Unavailable {
                code: "NoMessageId".into(),
                source: anyhow::anyhow!("SESv2 SendEmail answered without a MessageId"),
            })
    }
}

fn mail_code(err: &MailError) -> &str {
    match err {
        MailError::Rejected { code }
        | MailError::Throttled { code, .. }
        | MailError::Unavailable { code, .. }
        | MailError::Unconfirmed { code, .. } => code,
    }
}

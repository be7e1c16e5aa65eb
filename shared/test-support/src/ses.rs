//! SESv2 in the emulator: verified senders, the mail moto recorded, and the `SendEmail`
//! request exactly as it went on the wire (moto drops `ReplyToAddresses`, so Reply-To is
//! checked there).

use crate::Emulator;
use aws_adapters::SesMailer;
use aws_sdk_sesv2::config::{Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Make the emulator accept mail from `identity` (an address or a domain).
pub async fn verify_sender(emulator: &Emulator, identity: &str) {
    let result = emulator
        .sesv2()
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await;
    if let Err(e) = result {
        // Verified by an earlier test: fine.
        if !e
            .as_service_error()
            .is_some_and(|e| e.is_already_exists_exception())
        {
            panic!(
                "create_email_identity: {}",
                aws_sdk_sesv2::error::DisplayErrorContext(e)
            );
        }
    }
}

/// A mail as moto recorded it (an entry of `/moto-api/emulator/ses-messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEmail {
    pub id: String,
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Where the emulator (scripts/emulator.py) lists the mail SES accepted: moto's own records,
/// read alone. `/moto-api/data.json` holds them too, but builds a document of everything moto
/// holds, which takes seconds late in a run and stalls every other request meanwhile.
pub const SES_MESSAGES_PATH: &str = "/moto-api/emulator/ses-messages";

/// Every mail the emulator has accepted so far (all tests; filter by recipient or id).
pub async fn sent_emails(emulator: &Emulator) -> Vec<RecordedEmail> {
    recorded_emails(&emulator.get_text(SES_MESSAGES_PATH).await)
}

/// The mail in the text of the emulator's [`SES_MESSAGES_PATH`] answer.
pub fn recorded_emails(data: &str) -> Vec<RecordedEmail> {
    let data: Value = serde_json::from_str(data)
        .unwrap_or_else(|e| panic!("{SES_MESSAGES_PATH} answered something other than JSON: {e}"));
    let messages = data
        .as_array()
        .unwrap_or_else(|| panic!("{SES_MESSAGES_PATH} answered something other than a list"));
    messages
        .iter()
        .map(|m| RecordedEmail {
            id: m["id"].as_str().unwrap_or_default().to_owned(),
            source: m["source"].as_str().unwrap_or_default().to_owned(),
            to: m["destinations"]["ToAddresses"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            subject: m["subject"].as_str().unwrap_or_default().to_owned(),
            body: m["body"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// Mail the emulator accepted for `address`.
pub async fn emails_to(emulator: &Emulator, address: &str) -> Vec<RecordedEmail> {
    sent_emails(emulator)
        .await
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .collect()
}

/// Records the JSON body of every SESv2 request a client sends (an SDK interceptor, read
/// just before the request leaves).
#[derive(Clone, Debug, Default)]
pub struct SesCapture {
    requests: Arc<Mutex<Vec<Value>>>,
}

impl SesCapture {
    /// Every request body so far (for `SendEmail`: `FromEmailAddress`, `Destination`,
    /// `ReplyToAddresses`, `Content`, `EmailTags`, ...).
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Intercept for SesCapture {
    fn name(&self) -> &'static str {
        "SesCapture"
    }

    fn read_before_transmit(
        &self, context: &BeforeTransmitInterceptorContextRef<'_>, _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok());
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(body.unwrap_or(Value::Null));
        Ok(())
    }
}

/// A [`SesMailer`] configured like production (`SesMailer::client_config`) whose requests
/// are captured.
pub fn capturing_mailer(emulator: &Emulator, configuration_set: Option<String>) -> (SesMailer, SesCapture) {
    let capture = SesCapture::default();
    let config = SesMailer::client_config(emulator.sdk())
        .interceptor(capture.clone())
        .build();
    (
        SesMailer::with_client(aws_sdk_sesv2::Client::from_conf(config), configuration_set),
        capture,
    )
}

/// [`capturing_mailer`] with one more interceptor after the capture (for example
/// [`crate::faults::ReplaceAnswers`] on `SendEmail`).
pub fn capturing_mailer_with(
    emulator: &Emulator, configuration_set: Option<String>, extra: impl Intercept + 'static,
) -> (SesMailer, SesCapture) {
    let capture = SesCapture::default();
    let config = SesMailer::client_config(emulator.sdk())
        .interceptor(capture.clone())
        .interceptor(extra)
        .build();
    (
        SesMailer::with_client(aws_sdk_sesv2::Client::from_conf(config), configuration_set),
        capture,
    )
}

/// Puts `address` on the emulator's account-level suppression list (`BOUNCE` or `COMPLAINT`);
/// `scripts/emulator.py` adds the call to moto.
pub async fn suppress(emulator: &Emulator, address: &str, reason: &str) {
    aws_sdk_sesv2::Client::new(emulator.sdk())
        .put_suppressed_destination()
        .email_address(address)
        .reason(aws_sdk_sesv2::types::SuppressionListReason::from(reason))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutSuppressedDestination on the emulator (scripts/emulator.py): {e:?}"));
}

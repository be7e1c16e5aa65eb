//! The SNS subscriber of the SES configuration set's event destination: SES publishes a
//! Delivery, Bounce, Complaint or Reject event per message to the topic, and each SNS
//! record's `Message` is that event's JSON. Every record goes to
//! [`Delivery::apply`], which moves the message row with that `ses_message_id` forward
//! (idempotent, order-insensitive: SNS delivers at least once, in any order).
//!
//! - A record that is not an SES event (bad JSON, no `mail.messageId`, ...) is logged and
//!   skipped: it never will parse, so retrying it only delays the others.
//! - A failing store fails the invocation, so that it is retried (SNS invokes the function
//!   asynchronously: Lambda retries a failed invocation, then hands it to the function's
//!   on-failure destination or dead-letter queue if one is configured). Applying the records
//!   that did succeed again is harmless.
//!
//! SES events carry recipient addresses, subjects and headers: nothing of a record's
//! `Message` is ever logged, nor a parser's error text (which may quote it). Log lines carry
//! the SNS message id, and the domain logs the SES message id.

use aws_lambda_events::sns::{SnsEvent, SnsRecord};
use domain::delivery::{Delivery, DeliveryError};
use domain::ports::Recorded;
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Applied (or already applied, or about no message of ours).
    Applied(Recorded),
    /// Not an SES event notification: logged and dropped.
    Skipped,
    /// A dependency failed: the invocation fails so that it is retried.
    Failed,
}

/// The handler: applies every record; `Err` when any record hit a failing dependency.
pub async fn handle(app: &Delivery, event: LambdaEvent<SnsEvent>) -> Result<(), lambda_runtime::Error> {
    let mut failed = 0usize;
    for record in &event.payload.records {
        if handle_record(app, record).await == Handled::Failed {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} delivery event(s) could not be recorded; the invocation is retried",
            event.payload.records.len()
        )
        .into());
    }
    Ok(())
}

/// Applies one record (see the module documentation).
pub async fn handle_record(app: &Delivery, record: &SnsRecord) -> Handled {
    let sns = &record.sns;
    let span = tracing::info_span!("delivery_event", sns_message_id = sns.message_id.as_str());
    async {
        if sns.sns_message_type != "Notification" {
            tracing::warn!(
                sns_type = sns.sns_message_type.as_str(),
                "not an SNS notification; skipped"
            );
            return Handled::Skipped;
        }
        match app.apply(&sns.message).await {
            Ok(recorded) => {
                if recorded == Recorded::UnknownMessage {
                    // Mail sent through the configuration set by something else, or a message
                    // erased with its recipient: nothing to update.
                    tracing::info!("no admin message has this provider id; ignored");
                }
                Handled::Applied(recorded)
            }
            // The parser's text is not logged: it may quote the event (addresses).
            Err(DeliveryError::Malformed(_)) => {
                tracing::error!("malformed SES event notification; skipped");
                Handled::Skipped
            }
            Err(DeliveryError::Dependency(err)) => {
                tracing::error!(error = ?anyhow::Error::from(err), "could not record the delivery event");
                Handled::Failed
            }
        }
    }
    .instrument(span)
    .await
}

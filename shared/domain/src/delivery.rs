//! Delivery status from SES events: the configuration set publishes Send, Delivery, Bounce,
//! Complaint and Reject events to SNS; the delivery-events function hands each one here.
//! Every message is sent with a `message_id` tag, so an event finds its row directly.

use crate::model::timestamp;
use crate::ports::{Clock, DeliveryLog, DeliveryRecord, DeliveryUpdate, DependencyError, Recorded};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The SES message tag that carries our message id.
pub const MESSAGE_ID_TAG: &str = "message_id";

/// An SES event notification (the documented shape, fields we use only).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesEvent {
    #[serde(alias = "notificationType")]
    event_type: String,
    mail: SesMail,
    #[serde(default)]
    bounce: Option<SesBounce>,
    #[serde(default)]
    delivery: Option<SesTimestamp>,
    #[serde(default)]
    complaint: Option<SesTimestamp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesMail {
    message_id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesBounce {
    bounce_type: String,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct SesTimestamp {
    #[serde(default)]
    timestamp: Option<String>,
}

/// One event, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    /// Our message id, from the `message_id` tag.
    pub message_id: Option<String>,
    pub ses_message_id: String,
    /// `None`: an event that changes nothing (a transient bounce, an open, a click, ...).
    pub update: Option<DeliveryUpdate>,
    pub at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("not an SES event notification: {0}")]
    Malformed(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// Parse the JSON of an SES event (the SNS record's `Message`).
pub fn parse_ses_event(json: &str) -> Result<DeliveryEvent, DeliveryError> {
    let ev: SesEvent = serde_json::from_str(json).map_err(|e| DeliveryError::Malformed(e.to_string()))?;
    let (update, at) = match ev.event_type.as_str() {
        "Send" => (Some(DeliveryUpdate::Sent), None),
        "Delivery" => (
            Some(DeliveryUpdate::Delivered),
            ev.delivery.and_then(|d| d.timestamp),
        ),
        "Bounce" => {
            let bounce = ev
                .bounce
                .ok_or_else(|| DeliveryError::Malformed("Bounce without bounce".into()))?;
            let hard = bounce.bounce_type == "Permanent";
            (hard.then_some(DeliveryUpdate::Bounced), bounce.timestamp)
        }
        "Complaint" => (
            Some(DeliveryUpdate::Complained),
            ev.complaint.and_then(|c| c.timestamp),
        ),
        "Reject" => (Some(DeliveryUpdate::Rejected), None),
        _ => (None, None),
    };
    let message_id = ev
        .mail
        .tags
        .get(MESSAGE_ID_TAG)
        .and_then(|v| v.first())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    Ok(DeliveryEvent {
        message_id,
        ses_message_id: ev.mail.message_id,
        update,
        at: at.or(ev.mail.timestamp),
    })
}

#[derive(Clone)]
pub struct Delivery {
    pub log: Arc<dyn DeliveryLog>,
    pub clock: Arc<dyn Clock>,
}

impl Delivery {
    /// Apply one SES event (JSON). Idempotent: SES delivers events at least once, in any order.
    pub async fn apply(&self, json: &str) -> Result<Recorded, DeliveryError> {
        let event = parse_ses_event(json)?;
        let Some(update) = event.update else {
            return Ok(Recorded::Unchanged);
        };
        let record = DeliveryRecord {
            message_id: event.message_id,
            ses_message_id: event.ses_message_id,
            update,
            at: event.at.unwrap_or_else(|| timestamp(self.clock.now())),
        };
        let recorded = self.log.record_delivery(&record).await?;
        tracing::info!(
            message_id = record.message_id.as_deref(),
            ses_message_id = %record.ses_message_id,
            status = update.status().as_str(),
            ?recorded,
            "delivery event"
        );
        Ok(recorded)
    }
}

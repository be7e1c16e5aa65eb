//! Delivery status from SES events: the configuration set publishes Delivery, Bounce,
//! Complaint and Reject events to SNS; the delivery-events function hands each one here.

use crate::model::timestamp;
use crate::ports::{Clock, DeliveryLog, DeliveryUpdate, DependencyError, Recorded};
use serde::Deserialize;
use std::sync::Arc;

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
    pub ses_message_id: String,
    /// `None`: an event that changes nothing (a transient bounce, a send, an open, ...).
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
    Ok(DeliveryEvent {
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
        let at = event.at.unwrap_or_else(|| timestamp(self.clock.now()));
        let recorded = self
            .log
            .record_delivery(&event.ses_message_id, update, &at)
            .await?;
        tracing::info!(ses_message_id = %event.ses_message_id, status = update.status().as_str(), ?recorded, "delivery event");
        Ok(recorded)
    }
}

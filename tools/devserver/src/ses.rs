//! Simulated SES delivery events (dev only). In AWS the configuration set publishes a
//! Delivery, Bounce or Complaint event per message to an SNS topic, and the delivery-events
//! function records it. Here the dev server builds the same documented event JSON for one of
//! our messages, wraps it in the SNS event Lambda would receive, parses that JSON exactly as
//! the Lambda runtime does, and hands it to the function's own
//! [`delivery_events::handle`]: the same code path, minus SES and SNS.
//!
//! The events carry the recipient's address and the subject, as SES's do; like the
//! function, nothing here logs them.

use aws_lambda_events::sns::SnsEvent;
use chrono::{DateTime, Utc};
use domain::delivery::Delivery;
use domain::memory::InMemoryBackend;
use domain::model::{timestamp, MessageStatus};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::time::Duration;

/// The account, region and names the simulated events claim to come from.
const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:000000000000:devserver-MessageEventsTopic";
const CONFIGURATION_SET: &str = "devserver-messages";

/// Which SES event to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SesEventKind {
    Delivery,
    /// A permanent (hard) bounce.
    Bounce,
    /// A transient (soft) bounce: SES keeps trying, and the status does not change.
    SoftBounce,
    Complaint,
}

impl SesEventKind {
    /// The names `POST /dev/ses-events` accepts.
    pub const NAMES: [&'static str; 4] = ["Delivery", "Bounce", "SoftBounce", "Complaint"];

    pub fn parse(name: &str) -> Option<SesEventKind> {
        Some(match name {
            "Delivery" => SesEventKind::Delivery,
            "Bounce" => SesEventKind::Bounce,
            "SoftBounce" => SesEventKind::SoftBounce,
            "Complaint" => SesEventKind::Complaint,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SesEventKind::Delivery => "Delivery",
            SesEventKind::Bounce => "Bounce",
            SesEventKind::SoftBounce => "SoftBounce",
            SesEventKind::Complaint => "Complaint",
        }
    }
}

/// What the message looked like to SES: what the event's `mail` object describes.
#[derive(Debug, Clone)]
pub struct MailFacts {
    pub ses_message_id: String,
    pub from: String,
    pub reply_to: String,
    pub to: String,
    pub subject: String,
    /// When SES accepted it (`sent_at`).
    pub sent_at: String,
}

/// The SES event-publishing JSON (the SNS record's `Message`) for `kind`, happening at `at`.
/// The shape is SES's documented one, as in `functions/delivery-events/events/*.json`.
pub fn ses_event(kind: SesEventKind, mail: &MailFacts, at: DateTime<Utc>) -> Value {
    let at_s = timestamp(at);
    let feedback_id = format!("{}-devserver-000000", uuid::Uuid::new_v4());
    let mut event = json!({
        "eventType": match kind {
            SesEventKind::Delivery => "Delivery",
            SesEventKind::Bounce | SesEventKind::SoftBounce => "Bounce",
            SesEventKind::Complaint => "Complaint",
        },
        "mail": {
            "timestamp": mail.sent_at,
            "source": mail.from,
            "sourceArn": format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/{}", domain_of(&mail.from)),
            "sendingAccountId": ACCOUNT,
            "messageId": mail.ses_message_id,
            "destination": [mail.to],
            "headersTruncated": false,
            "headers": [
                { "name": "From", "value": mail.from },
                { "name": "Reply-To", "value": mail.reply_to },
                { "name": "To", "value": mail.to },
                { "name": "Subject", "value": mail.subject },
                { "name": "MIME-Version", "value": "1.0" },
                { "name": "Content-Type", "value": "text/plain; charset=UTF-8" },
            ],
            "commonHeaders": {
                "from": [mail.from],
                "replyTo": [mail.reply_to],
                "to": [mail.to],
                "messageId": mail.ses_message_id,
                "subject": mail.subject,
            },
            "tags": {
                "ses:operation": ["SendEmail"],
                "ses:configuration-set": [CONFIGURATION_SET],
                "ses:source-ip": ["127.0.0.1"],
                "ses:from-domain": [domain_of(&mail.from)],
                "ses:caller-identity": ["devserver-message-user"],
            },
        },
    });
    match kind {
        SesEventKind::Delivery => {
            let processing = parse_ms(&mail.sent_at).map_or(0, |sent| (at - sent).num_milliseconds().max(0));
            event["delivery"] = json!({
                "timestamp": at_s,
                "processingTimeMillis": processing,
                "recipients": [mail.to],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "devserver.smtp-out.amazonses.invalid",
            });
        }
        SesEventKind::Bounce | SesEventKind::SoftBounce => {
            let hard = kind == SesEventKind::Bounce;
            event["bounce"] = json!({
                "feedbackId": feedback_id,
                "bounceType": if hard { "Permanent" } else { "Transient" },
                "bounceSubType": if hard { "General" } else { "MailboxFull" },
                "bouncedRecipients": [{
                    "emailAddress": mail.to,
                    "action": "failed",
                    "status": if hard { "5.1.1" } else { "4.2.2" },
                    "diagnosticCode": if hard {
                        "smtp; 550 5.1.1 user unknown"
                    } else {
                        "smtp; 452 4.2.2 mailbox full"
                    },
                }],
                "timestamp": at_s,
                "reportingMTA": "dsn; devserver.smtp-out.amazonses.invalid",
            });
        }
        SesEventKind::Complaint => {
            event["complaint"] = json!({
                "feedbackId": feedback_id,
                "complaintSubType": null,
                "complainedRecipients": [{ "emailAddress": mail.to }],
                "timestamp": at_s,
                "userAgent": "devserver-feedback-loop/1.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": at_s,
            });
        }
    }
    event
}

/// The Lambda SNS event (one record) whose `Message` is `message`, as SNS delivers it.
pub fn sns_event(message: &Value, at: DateTime<Utc>) -> Value {
    let subscription = format!("{TOPIC_ARN}:{}", uuid::Uuid::new_v4());
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription,
            "Sns": {
                "Type": "Notification",
                "MessageId": uuid::Uuid::new_v4().to_string(),
                "TopicArn": TOPIC_ARN,
                "Subject": null,
                "Message": message.to_string(),
                "Timestamp": timestamp(at),
                "SignatureVersion": "1",
                "Signature": "DEVSERVER",
                "SigningCertUrl": format!("https://sns.{REGION}.amazonaws.com/devserver.pem"),
                "UnsubscribeUrl": format!(
                    "https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription}"
                ),
                "MessageAttributes": {},
            }
        }]
    })
}

/// What a simulated event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub message_id: String,
    pub ses_message_id: String,
    pub previous_status: MessageStatus,
    pub status: MessageStatus,
    pub updated_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("no message has this id")]
    UnknownMessage,
    /// The message never reached SES (pending or failed): SES has nothing to report about it.
    #[error("the message was not sent (status {0})")]
    NotSent(&'static str),
    /// The function failed (in AWS the invocation would be retried).
    #[error("the delivery-events function failed")]
    Function,
}

/// Publishes a simulated `kind` event about our message `message_id` through the
/// delivery-events function, and reports the message's status before and after.
pub async fn publish(
    backend: &InMemoryBackend, delivery: &Delivery, message_id: &str, kind: SesEventKind, from: &str,
    reply_to: &str,
) -> Result<Outcome, SimulateError> {
    // Read what the event needs; the lock is released before anything awaits.
    let (mail, previous_status) = {
        let st = backend.state();
        let m = st.messages.get(message_id).ok_or(SimulateError::UnknownMessage)?;
        let Some(ses_message_id) = m.ses_message_id.clone() else {
            return Err(SimulateError::NotSent(m.status.as_str()));
        };
        let to = st
            .profiles
            .get(&m.recipient_id)
            .and_then(|p| p.email.clone())
            .unwrap_or_else(|| "erased@example.invalid".to_owned());
        let mail = MailFacts {
            ses_message_id,
            from: from.to_owned(),
            reply_to: reply_to.to_owned(),
            to,
            subject: m.subject.clone(),
            sent_at: m.sent_at.clone().unwrap_or_else(|| m.created_at.clone()),
        };
        (mail, m.status)
    };
    let now = Utc::now();
    let json = sns_event(&ses_event(kind, &mail, now), now).to_string();
    // Parsed from JSON like the Lambda runtime does, so the event must match the real shape.
    let payload: SnsEvent = serde_json::from_str(&json).map_err(|err| {
        tracing::error!(error = %err, "the simulated SNS event does not parse");
        SimulateError::Function
    })?;
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.invoked_function_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:delivery-events");
    context.deadline = u64::try_from(now.timestamp_millis()).unwrap_or_default() + 30_000;
    if let Err(err) = delivery_events::handle(delivery, LambdaEvent::new(payload, context)).await {
        tracing::error!(%message_id, error = %err, "delivery-events failed on a simulated event");
        return Err(SimulateError::Function);
    }
    let st = backend.state();
    let m = st.messages.get(message_id).ok_or(SimulateError::UnknownMessage)?;
    tracing::info!(
        %message_id,
        event = kind.as_str(),
        from = previous_status.as_str(),
        to = m.status.as_str(),
        "simulated SES event"
    );
    Ok(Outcome {
        message_id: message_id.to_owned(),
        ses_message_id: mail.ses_message_id,
        previous_status,
        status: m.status,
        updated_at: m.updated_at.clone(),
    })
}

/// After `delay`, a Delivery event for `message_id` (once the send has recorded the provider
/// id; a message that ends up failed gets none). Runs on the current Tokio runtime; does
/// nothing outside one.
pub fn deliver_later(
    backend: std::sync::Weak<InMemoryBackend>, message_id: String, delay: Duration, from: String,
    reply_to: String,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        // The hook runs inside the send, before the row is marked sent: wait for that.
        for _ in 0..100 {
            let Some(backend) = backend.upgrade() else { return };
            let ready = match backend.state().messages.get(&message_id) {
                Some(m) if m.ses_message_id.is_some() => true,
                Some(m) if m.status == MessageStatus::Failed => return,
                _ => false,
            };
            if ready {
                let delivery = backend.delivery();
                let _ = publish(
                    &backend,
                    &delivery,
                    &message_id,
                    SesEventKind::Delivery,
                    &from,
                    &reply_to,
                )
                .await;
                return;
            }
            drop(backend);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

fn parse_ms(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::delivery::parse_ses_event;
    use domain::ports::DeliveryUpdate;

    fn facts() -> MailFacts {
        MailFacts {
            ses_message_id: "mem-123".into(),
            from: "no-reply@teleperson.com".into(),
            reply_to: "hello@teleperson.com".into(),
            to: "ana.lima@example.org".into(),
            subject: "Hi".into(),
            sent_at: "2026-01-01T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn each_simulated_event_parses_as_the_update_it_stands_for() {
        let at = Utc::now();
        for (kind, update) in [
            (SesEventKind::Delivery, Some(DeliveryUpdate::Delivered)),
            (SesEventKind::Bounce, Some(DeliveryUpdate::Bounced)),
            (SesEventKind::SoftBounce, None),
            (SesEventKind::Complaint, Some(DeliveryUpdate::Complained)),
        ] {
            let parsed = parse_ses_event(&ses_event(kind, &facts(), at).to_string()).unwrap();
            assert_eq!(parsed.ses_message_id, "mem-123");
            assert_eq!(parsed.update, update, "{kind:?}");
            assert_eq!(parsed.at.as_deref(), Some(timestamp(at).as_str()));
        }
    }

    #[test]
    fn the_simulated_sns_event_has_the_shape_of_the_sample_events() {
        let sample_path =
            crate::workspace_root().join("functions/delivery-events/events/sns-ses-bounce.json");
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(sample_path).unwrap()).unwrap();
        let ours = sns_event(&ses_event(SesEventKind::Bounce, &facts(), Utc::now()), Utc::now());
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let (s, o) = (&sample["Records"][0], &ours["Records"][0]);
        assert_eq!(keys(s), keys(o));
        assert_eq!(keys(&s["Sns"]), keys(&o["Sns"]));
        let parse =
            |v: &Value| -> Value { serde_json::from_str(v["Sns"]["Message"].as_str().unwrap()).unwrap() };
        let (sm, om) = (parse(s), parse(o));
        assert_eq!(keys(&sm), keys(&om));
        assert_eq!(keys(&sm["mail"]), keys(&om["mail"]));
        assert_eq!(keys(&sm["bounce"]), keys(&om["bounce"]));
        serde_json::from_value::<SnsEvent>(ours).unwrap();
    }
}

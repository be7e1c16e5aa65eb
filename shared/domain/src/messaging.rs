//! Message a user: the use case behind `POST /admin/users/{id}/messages` and the history.

use crate::access::{authorize, load_caller, target_state};
use crate::model::{
    chrono_duration, timestamp, AdminMessage, EventType, MessageStatus, Page, RequestMeta, SecurityEvent,
};
use crate::ports::*;
use crate::types::{sha256_hex, EmailAddress, IdempotencyKey, MessageBody, Subject, UserId};
use chrono::Duration as ChronoDuration;
use policy::{Action, Denial};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Settings of the messaging use cases (from the environment in Lambda).
#[derive(Debug, Clone)]
pub struct MessagingSettings {
    /// `MAIL_FROM`
    pub mail_from: String,
    /// `SUPPORT_REPLY_TO`, default `hello@teleperson.com`.
    pub reply_to: String,
    /// How long a send holds its lease on the recipient (and on its idempotency key).
    pub send_lease: Duration,
    /// Per-admin limit: messages per minute (0 = no limit).
    pub messages_per_minute: u32,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        MessagingSettings {
            mail_from: "no-reply@teleperson.com".into(),
            reply_to: DEFAULT_REPLY_TO.into(),
            send_lease: Duration::from_secs(30),
            messages_per_minute: 0,
        }
    }
}

pub const DEFAULT_REPLY_TO: &str = "hello@teleperson.com";
const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// The parsed request.
#[derive(Debug, Clone)]
pub struct SendInput {
    pub target: UserId,
    pub subject: Subject,
    pub body: MessageBody,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The `201` answer: SES accepted the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    pub message_id: String,
    pub status: String,
    pub ses_message_id: String,
    pub sent_at: String,
}

/// What a send came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// `201`: SES accepted the message.
    Sent(SendReceipt),
    /// `202 {message_id, status: "pending"}`: SES's answer is not known, so the mail may have
    /// gone. It is never sent again; an SES event, or the sweep, settles the row.
    Pending { message_id: String },
}

impl Outcome {
    pub fn message_id(&self) -> &str {
        match self {
            Outcome::Sent(r) => &r.message_id,
            Outcome::Pending { message_id } => message_id,
        }
    }
}

/// The answer, and whether it is the first one or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub replayed: bool,
}

/// Options of a send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Send even though the user's last message bounced hard or drew a complaint.
    pub send_anyway: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the recipient's last message {}: send anyway to override", .last_status.as_str())]
    RecipientUndeliverable { last_status: MessageStatus },
    /// The address is on the mail provider's account-level suppression list: a send would be
    /// accepted and then silently not delivered.
    #[error("the recipient's address is on the suppression list ({}): send anyway to override", .suppression.reason.as_str())]
    RecipientSuppressed { suppression: Suppression },
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error("the recipient has no usable email address")]
    NoEmailAddress,
    /// `422 idempotency_key_reused`
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// `409 request_in_progress`
    #[error("a request with this idempotency key is still in progress")]
    RequestInProgress {
        message_id: String,
        retry_after: Duration,
    },
    #[error("too many messages from this admin")]
    RateLimited { retry_after: Duration },
    /// SES refused this message for good. Nothing was sent; the row is `failed`.
    #[error("the mail provider rejected the message ({code})")]
    MailRejected { message_id: String, code: String },
    /// SES asked to slow down. Nothing was sent; the row is `failed`.
    #[error("the mail provider is throttling")]
    MailThrottled { retry_after: Option<Duration> },
    /// SES could not be reached. Nothing was sent; the row is `failed`.
    #[error("the mail provider could not be reached ({code})")]
    MailNotSent {
        code: String,
        #[source]
        source: anyhow::Error,
    },
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// The messaging use cases and the ports they need.
#[derive(Clone)]
pub struct Messaging {
    pub profiles: Arc<dyn Profiles>,
    pub outbox: Arc<dyn MessageOutbox>,
    pub log: Arc<dyn SecurityLog>,
    pub mailer: Arc<dyn Mailer>,
    pub suppressions: Arc<dyn SuppressionList>,
    pub idempotency: Arc<dyn Idempotency>,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub settings: MessagingSettings,
}

/// The idempotency key this request holds.
struct HeldKey {
    key: IdempotencyKey,
    owner: String,
}

impl Messaging {
    /// A request without a caller (no `sub` claim): refused by the policy and audited.
    pub async fn refuse_anonymous(&self, meta: &RequestMeta, action: Action, target_id: &str) -> Denial {
        crate::access::refuse_anonymous(&*self.log, &*self.clock, meta, action, target_id).await
    }

    /// Send one message: at most one email per message row, whatever fails.
    pub async fn send(&self, meta: &RequestMeta, input: SendInput) -> Result<Answer, SendError> {
        self.send_with(meta, input, SendOptions::default()).await
    }

    /// [`send`](Self::send) with options.
    pub async fn send_with(
        &self, meta: &RequestMeta, input: SendInput, options: SendOptions,
    ) -> Result<Answer, SendError> {
        let span = tracing::info_span!(
            "send_message",
            actor = meta.caller.as_deref(),
            target = input.target.as_str()
        );
        self.send_inner(meta, input, options).instrument(span).await
    }

    async fn send_inner(
        &self, meta: &RequestMeta, input: SendInput, options: SendOptions,
    ) -> Result<Answer, SendError> {
        let target_id = input.target.as_str();
        let (caller, target) =
            futures::try_join!(load_caller(&*self.profiles, meta), self.profiles.get(target_id))?;
        let request = policy::Request {
            action: Action::SendMessage,
            caller,
            target: target_state(target.as_ref(), None),
            is_self: meta.caller.as_deref() == Some(target_id),
            acknowledged: false,
            last_owner: false,
        };
        authorize(&*self.log, &*self.clock, meta, request, target_id)
            .await
            .map_err(SendError::Denied)?;
        let actor = meta.caller.clone().unwrap_or_default();
        // The policy refuses a missing target; should it ever not, the answer is the same.
        let Some(target) = target else {
            return Err(SendError::Denied(Denial::UserNotFound));
        };
        let to = target
            .email
            .as_deref()
            .and_then(|e| EmailAddress::parse(e).ok())
            .ok_or(SendError::NoEmailAddress)?;
        if !options.send_anyway {
            // A hard bounce or a complaint on the last message, or the address on the mail
            // provider's own suppression list (mail to it is accepted and never delivered):
            // sending again hurts the sender's reputation, so it takes an explicit "send
            // anyway", and the admin hears of it before anything is sent.
            let (last, suppression) = futures::try_join!(
                self.outbox.history(target_id, 1, None),
                self.suppressions.check(&to)
            )?;
            if let Some(status) = last.items.first().map(|m| m.status) {
                if matches!(status, MessageStatus::Bounced | MessageStatus::Complained) {
                    return Err(SendError::RecipientUndeliverable { last_status: status });
                }
            }
            if let Some(suppression) = suppression {
                return Err(SendError::RecipientSuppressed { suppression });
            }
        }

        // This request's own token: its claim, its rate-limit use and its key's outcome.
        let owner = uuid::Uuid::new_v4().to_string();
        let mut message_id = uuid::Uuid::new_v4().to_string();
        let held = match &input.idempotency_key {
            None => None,
            Some(key) => match self
                .claim(&actor, key, &fingerprint(&input), &message_id, &owner)
                .await?
            {
                Ok(id) => {
                    message_id = id;
                    Some(HeldKey {
                        key: key.clone(),
                        owner: owner.clone(),
                    })
                }
                Err(answer) => return answer,
            },
        };

        // Replays above cost nothing; a new send counts against the admin's limit.
        if let Err(limited) = self.take_rate(meta, &actor, target_id, &owner).await {
            if let Some(held) = &held {
                self.release_key(&actor, held).await;
            }
            return Err(limited);
        }

        let result = self.deliver(meta, &actor, &message_id, to, &input).await;
        if let Some(held) = &held {
            self.remember(&actor, held, &result).await;
        }
        result.map(|outcome| Answer {
            outcome,
            replayed: false,
        })
    }

    async fn take_rate(
        &self, meta: &RequestMeta, actor: &str, target_id: &str, use_id: &str,
    ) -> Result<(), SendError> {
        if self.settings.messages_per_minute == 0 {
            return Ok(());
        }
        let decision = self
            .limiter
            .take(
                &format!("messages#{actor}"),
                self.settings.messages_per_minute,
                Duration::from_secs(60),
                self.clock.now(),
                use_id,
            )
            .await?;
        if let RateDecision::Limited { retry_after } = decision {
            crate::access::audit_denial(
                &*self.log,
                &*self.clock,
                meta,
                Action::SendMessage,
                target_id,
                "rate_limited",
            )
            .await;
            return Err(SendError::RateLimited { retry_after });
        }
        Ok(())
    }

    /// Take the idempotency key (`Ok(message id to send with)`), or the answer it already
    /// gives (`Err`).
    async fn claim(
        &self, actor: &str, key: &IdempotencyKey, fingerprint: &str, message_id: &str, owner: &str,
    ) -> Result<Result<String, Result<Answer, SendError>>, SendError> {
        let now = self.clock.now();
        let claim = ClaimRequest {
            scope: actor,
            key: key.as_str(),
            fingerprint,
            message_id,
            owner,
            now,
            lease_until: now + chrono_duration(self.settings.send_lease),
            expires_at: now + ChronoDuration::hours(IDEMPOTENCY_TTL_HOURS),
        };
        let record = match self.idempotency.claim(&claim).await? {
            Claim::Claimed { message_id } => return Ok(Ok(message_id)),
            Claim::Taken(record) => record,
        };
        Ok(Err(match record {
            IdempotencyRecord::Done {
                fingerprint: f,
                response,
                ..
            } if f == fingerprint => replay(&response),
            IdempotencyRecord::InFlight {
                fingerprint: f,
                message_id,
                lease_until,
            } if f == fingerprint => Err(SendError::RequestInProgress {
                message_id,
                retry_after: (lease_until - now).to_std().unwrap_or_default(),
            }),
            _ => Err(SendError::IdempotencyKeyReused),
        }))
    }

    /// Record the outcome under the key: a send that may have reached SES (sent or pending)
    /// is the key's answer for 24 hours; anything else sent nothing, so the key is released
    /// and the client may retry with it.
    async fn remember(&self, actor: &str, held: &HeldKey, result: &Result<Outcome, SendError>) {
        let Ok(outcome) = result else {
            self.release_key(actor, held).await;
            return;
        };
        let status = match outcome {
            Outcome::Sent(_) => 201,
            Outcome::Pending { .. } => 202,
        };
        let json = serde_json::to_string(outcome).unwrap_or_default();
        let stored = retry_store(|| {
            self.idempotency
                .complete(actor, held.key.as_str(), &held.owner, status, &json)
        })
        .await;
        if let Err(err) = stored {
            // The row's attempt marker still stops a second email: a retry after the lease
            // takes the key over with the same message id and finds the row attempted.
            tracing::error!(error = ?anyhow::Error::from(err), "could not record the idempotency key's answer");
        }
    }

    async fn release_key(&self, actor: &str, held: &HeldKey) {
        if let Err(err) = self
            .idempotency
            .release(actor, held.key.as_str(), &held.owner)
            .await
        {
            tracing::warn!(error = ?anyhow::Error::from(err), "could not release the idempotency key; it expires with its lease");
        }
    }

    /// Reserve, mark the attempt, send at most once, record. Every path leaves the message
    /// row `pending` (SES's answer unknown), `sent` or `failed`.
    async fn deliver(
        &self, meta: &RequestMeta, actor: &str, message_id: &str, to: EmailAddress, input: &SendInput,
    ) -> Result<Outcome, SendError> {
        let now = self.clock.now();
        let message = AdminMessage {
            message_id: message_id.to_owned(),
            sender_id: actor.to_owned(),
            recipient_id: input.target.as_str().to_owned(),
            subject: input.subject.as_str().to_owned(),
            body: input.body.as_str().to_owned(),
            status: MessageStatus::Pending,
            ses_message_id: None,
            error_code: None,
            created_at: timestamp(now),
            sent_at: None,
            updated_at: None,
            attempt: None,
        };
        let recipient = input.target.as_str();
        match self
            .outbox
            .reserve(&message, now + chrono_duration(self.settings.send_lease))
            .await?
        {
            Reserved::Reserved => {}
            Reserved::RecipientGone => return Err(SendError::Denied(Denial::UserDeleted)),
            // A retry of a send that got further: answer from the row, never send again.
            Reserved::Exists(existing) => return answer_from(existing),
        }

        let attempt = uuid::Uuid::new_v4().to_string();
        let event = SecurityEvent::new(
            format!("{message_id}#sent"),
            EventType::AdminSentUserMessage,
            recipient,
            meta,
            &timestamp(self.clock.now()),
        )
        .with("message_id", message_id);
        let began = match self.outbox.begin_attempt(message_id, &attempt, &event).await {
            Ok(began) => began,
            Err(err) => {
                self.release_lease(recipient, message_id).await;
                return Err(err.into());
            }
        };
        match began {
            Attempt::Began => {}
            Attempt::Taken | Attempt::NotPending => {
                self.release_lease(recipient, message_id).await;
                let row = self.outbox.get(message_id).await?;
                return match row {
                    Some(row) if began == Attempt::NotPending => answer_from(row),
                    _ => Ok(Outcome::Pending {
                        message_id: message_id.to_owned(),
                    }),
                };
            }
        }

        let email = OutgoingEmail {
            message_id: message_id.to_owned(),
            to,
            from: self.settings.mail_from.clone(),
            reply_to: self.settings.reply_to.clone(),
            subject: input.subject.clone(),
            body: input.body.clone(),
        };
        let sent = self.mailer.send(&email).await;
        let at = timestamp(self.clock.now());
        let result = match sent {
            Ok(ses_message_id) => {
                // The mail is out: the answer is "sent" whatever the bookkeeping does (a Send
                // event, or the sweep, settles a row left pending).
                if let Err(err) =
                    retry_store(|| self.outbox.mark_sent(message_id, &ses_message_id, &at)).await
                {
                    tracing::error!(error = ?anyhow::Error::from(err), message_id, "message sent but not recorded: the row stays pending until its Send event");
                } else {
                    tracing::info!(message_id, "message sent");
                }
                Ok(Outcome::Sent(SendReceipt {
                    message_id: message_id.to_owned(),
                    status: MessageStatus::Sent.as_str().to_owned(),
                    ses_message_id,
                    sent_at: at,
                }))
            }
            Err(MailError::Unconfirmed { code, source }) => {
                // Maybe sent: the row stays pending, and nothing ever sends it again.
                tracing::error!(error = ?source, message_id, code = %code, "the mail provider did not confirm the message");
                Ok(Outcome::Pending {
                    message_id: message_id.to_owned(),
                })
            }
            Err(err) => {
                let code = match &err {
                    MailError::Rejected { code }
                    | MailError::Throttled { code, .. }
                    | MailError::NotSent { code, .. }
                    | MailError::Unconfirmed { code, .. } => code.clone(),
                };
                if let Err(store) = retry_store(|| self.outbox.mark_failed(message_id, &code, &at)).await {
                    tracing::error!(error = ?anyhow::Error::from(store), message_id, "could not mark the message failed; it stays pending");
                }
                Err(match err {
                    MailError::Rejected { code } => SendError::MailRejected {
                        message_id: message_id.to_owned(),
                        code,
                    },
                    MailError::Throttled { retry_after, .. } => SendError::MailThrottled { retry_after },
                    MailError::NotSent { code, source } | MailError::Unconfirmed { code, source } => {
                        SendError::MailNotSent { code, source }
                    }
                })
            }
        };
        self.release_lease(recipient, message_id).await;
        result
    }

    /// The send is over: let a waiting deletion go on. Best effort: the lease expires anyway.
    async fn release_lease(&self, recipient_id: &str, message_id: &str) {
        if let Err(err) = self.outbox.release(recipient_id, message_id).await {
            tracing::warn!(error = ?anyhow::Error::from(err), "could not release the send lease; it will expire");
        }
    }

    /// Messages a user received, newest first.
    pub async fn history(
        &self, meta: &RequestMeta, target: &UserId, limit: usize,
        cursor: Option<&crate::cursor::MessageCursor>,
    ) -> Result<Page<AdminMessage>, HistoryError> {
        let (caller, profile) = futures::try_join!(
            load_caller(&*self.profiles, meta),
            self.profiles.get(target.as_str())
        )?;
        let request = policy::Request {
            action: Action::ViewMessages,
            caller,
            target: target_state(profile.as_ref(), None),
            is_self: meta.caller.as_deref() == Some(target.as_str()),
            acknowledged: false,
            last_owner: false,
        };
        authorize(&*self.log, &*self.clock, meta, request, target.as_str())
            .await
            .map_err(HistoryError::Denied)?;
        Ok(self
            .outbox
            .history(target.as_str(), limit.clamp(1, 100), cursor)
            .await?)
    }
}

/// A few quick attempts at a store write that follows a mail that went out.
async fn retry_store<F, Fut>(mut write: F) -> StoreResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<()>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write().await {
            Err(err) if err.retryable && attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(20 * attempt + fastrand::u64(0..20))).await;
            }
            other => return other,
        }
    }
}

fn replay(response: &str) -> Result<Answer, SendError> {
    match serde_json::from_str::<Outcome>(response) {
        Ok(outcome) => Ok(Answer {
            outcome,
            replayed: true,
        }),
        Err(e) => Err(SendError::Dependency(DependencyError::new(
            "idempotency",
            false,
            e,
        ))),
    }
}

/// The answer a message row gives to a retry that finds it there already.
fn answer_from(row: AdminMessage) -> Result<Outcome, SendError> {
    match row.status {
        // Settled by the sweep: its request died before SES was called. Nothing was sent, so
        // a retry may send it (the key is released like after any answer that sent nothing).
        MessageStatus::Failed if row.error_code.as_deref() == Some(crate::model::NOT_SENT) => {
            Err(SendError::MailNotSent {
                code: crate::model::NOT_SENT.to_owned(),
                source: anyhow::anyhow!("the message was never handed to the mail provider"),
            })
        }
        MessageStatus::Failed => Err(SendError::MailRejected {
            message_id: row.message_id,
            code: row.error_code.unwrap_or_else(|| "Failed".into()),
        }),
        MessageStatus::Pending | MessageStatus::Unconfirmed => Ok(Outcome::Pending {
            message_id: row.message_id,
        }),
        MessageStatus::Sent
        | MessageStatus::Delivered
        | MessageStatus::Bounced
        | MessageStatus::Complained => Ok(Outcome::Sent(SendReceipt {
            ses_message_id: row.ses_message_id.unwrap_or_default(),
            sent_at: row.sent_at.unwrap_or(row.created_at),
            message_id: row.message_id,
            status: MessageStatus::Sent.as_str().to_owned(),
        })),
    }
}

/// What makes two requests "the same": target, subject and body.
fn fingerprint(input: &SendInput) -> String {
    let mut bytes = Vec::new();
    for part in [input.target.as_str(), input.subject.as_str(), input.body.as_str()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    sha256_hex(&bytes)
}

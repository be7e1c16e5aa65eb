//! Message a user: the use case behind `POST /admin/users/{id}/messages` and the history.

use crate::access::{audit_denial, load_caller, target_state};
use crate::model::{timestamp, AdminMessage, EventType, MessageStatus, Page, RequestMeta, SecurityEvent};
use crate::ports::*;
use crate::types::{sha256_hex, EmailAddress, IdempotencyKey, MessageBody, Subject, UserId};
use chrono::Duration as ChronoDuration;
use policy::{Action, Decision, Denial};
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
    /// How long a duplicate request waits for the first one to finish.
    pub duplicate_wait: Duration,
    /// Per-admin limit: messages per minute (0 = no limit).
    pub messages_per_minute: u32,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        MessagingSettings {
            mail_from: "no-reply@teleperson.com".into(),
            reply_to: DEFAULT_REPLY_TO.into(),
            send_lease: Duration::from_secs(30),
            duplicate_wait: Duration::from_secs(10),
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

/// The `201` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    pub message_id: String,
    pub status: String,
    pub ses_message_id: String,
    pub sent_at: String,
}

/// What an idempotency key remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum StoredOutcome {
    Sent(SendReceipt),
    Rejected { message_id: String, code: String },
    Unconfirmed { message_id: String, code: String },
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
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error("the recipient has no usable email address")]
    NoEmailAddress,
    #[error("the idempotency key was used with a different request")]
    IdempotencyConflict,
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    #[error("too many messages from this admin")]
    RateLimited { retry_after: Duration },
    #[error("the mail provider rejected the message ({code})")]
    MailRejected { message_id: String, code: String },
    #[error("the mail provider is throttling")]
    MailThrottled { retry_after: Option<Duration> },
    /// The provider did not answer: the mail may be out. The row stays `pending`, and the same
    /// idempotency key answers this again rather than sending a second time.
    #[error("the mail provider did not confirm the message ({code})")]
    MailUnconfirmed { message_id: String, code: String },
    #[error("the mail provider is unavailable ({code})")]
    MailUnavailable {
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
    pub idempotency: Arc<dyn Idempotency>,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub settings: MessagingSettings,
}

/// Whether the answer is the first one or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub receipt: SendReceipt,
    pub replayed: bool,
}

impl Messaging {
    /// A request without a caller (no `sub` claim): refused by the policy and audited.
    pub async fn refuse_anonymous(&self, meta: &RequestMeta, action: Action, target_id: &str) -> Denial {
        crate::access::refuse_anonymous(&*self.log, &*self.clock, meta, action, target_id).await
    }

    /// Send one message. See DESIGN.md sections 1 and 3.
    pub async fn send(&self, meta: &RequestMeta, input: SendInput) -> Result<Sent, SendError> {
        self.send_with(meta, input, SendOptions::default()).await
    }

    /// [`send`](Self::send) with options.
    pub async fn send_with(
        &self,
        meta: &RequestMeta,
        input: SendInput,
        options: SendOptions,
    ) -> Result<Sent, SendError> {
        let span = tracing::info_span!(
            "send_message",
            actor = meta.caller.as_deref(),
            target = input.target.as_str()
        );
        self.send_inner(meta, input, options).instrument(span).await
    }

    async fn send_inner(
        &self,
        meta: &RequestMeta,
        input: SendInput,
        options: SendOptions,
    ) -> Result<Sent, SendError> {
        let target_id = input.target.as_str();
        let (caller, target) =
            futures::try_join!(load_caller(&*self.profiles, meta), self.profiles.get(target_id))?;
        let decision = policy::decide(policy::Request {
            action: Action::SendMessage,
            caller,
            target: target_state(target.as_ref(), None),
            is_self: meta.caller.as_deref() == Some(target_id),
            acknowledged: false,
        });
        if let Decision::Deny(denial) = decision {
            audit_denial(
                &*self.log,
                &*self.clock,
                meta,
                Action::SendMessage,
                target_id,
                denial.code(),
            )
            .await;
            return Err(SendError::Denied(denial));
        }
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
            // A hard bounce or a complaint on the last message: sending again hurts the
            // sender's reputation, so it takes an explicit "send anyway".
            let last = self.outbox.history(target_id, 1, None).await?;
            if let Some(status) = last.items.first().map(|m| m.status) {
                if matches!(status, MessageStatus::Bounced | MessageStatus::Complained) {
                    return Err(SendError::RecipientUndeliverable { last_status: status });
                }
            }
        }

        let mut message_id = uuid::Uuid::new_v4().to_string();
        let idem = match &input.idempotency_key {
            None => None,
            Some(key) => {
                let fingerprint = fingerprint(&input);
                match self.claim(&actor, key, &fingerprint, &message_id).await? {
                    ClaimOutcome::Owned { message_id: id } => {
                        message_id = id;
                        Some((key.clone(), fingerprint))
                    }
                    ClaimOutcome::Answered(answer) => return answer,
                }
            }
        };

        // Replays above cost nothing; a new send counts against the admin's limit.
        if let Err(limited) = self.take_rate(meta, &actor, target_id).await {
            if let Some((key, _)) = &idem {
                self.remember(
                    &actor,
                    key,
                    &Err(SendError::RateLimited {
                        retry_after: Duration::ZERO,
                    }),
                )
                .await;
            }
            return Err(limited);
        }

        let result = self.deliver(meta, &actor, &message_id, to, &input).await;
        if let Some((key, _)) = idem {
            self.remember(&actor, &key, &result).await;
        }
        result.map(|receipt| Sent {
            receipt,
            replayed: false,
        })
    }

    async fn take_rate(&self, meta: &RequestMeta, actor: &str, target_id: &str) -> Result<(), SendError> {
        if self.settings.messages_per_minute == 0 {
            return Ok(());
        }
        let bucket = format!("messages#{actor}");
        let decision = self
            .limiter
            .take(
                &bucket,
                self.settings.messages_per_minute,
                Duration::from_secs(60),
                self.clock.now(),
            )
            .await?;
        if let RateDecision::Limited { retry_after } = decision {
            audit_denial(
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

    /// Take the idempotency key, or answer from it.
    async fn claim(
        &self,
        actor: &str,
        key: &IdempotencyKey,
        fingerprint: &str,
        message_id: &str,
    ) -> Result<ClaimOutcome, SendError> {
        let wait_until = tokio::time::Instant::now() + self.settings.duplicate_wait;
        loop {
            let now = self.clock.now();
            let lease = now + chrono_duration(self.settings.send_lease);
            let expires = now + ChronoDuration::hours(IDEMPOTENCY_TTL_HOURS);
            let record = match self
                .idempotency
                .claim(actor, key.as_str(), fingerprint, message_id, now, lease, expires)
                .await?
            {
                Claim::Claimed { message_id } => return Ok(ClaimOutcome::Owned { message_id }),
                Claim::Taken(record) => record,
            };
            match record {
                IdempotencyRecord::Done {
                    fingerprint: f,
                    response,
                    ..
                } => {
                    if f != fingerprint {
                        return Ok(ClaimOutcome::Answered(Err(SendError::IdempotencyConflict)));
                    }
                    return Ok(ClaimOutcome::Answered(replay(&response)));
                }
                IdempotencyRecord::InFlight { fingerprint: f, .. } => {
                    if f != fingerprint {
                        return Ok(ClaimOutcome::Answered(Err(SendError::IdempotencyConflict)));
                    }
                    if tokio::time::Instant::now() >= wait_until {
                        return Ok(ClaimOutcome::Answered(Err(SendError::IdempotencyInProgress)));
                    }
                    tokio::time::sleep(Duration::from_millis(25 + fastrand::u64(0..25))).await;
                }
            }
        }
    }

    /// Record the outcome under the key: final answers are replayed, retryable failures
    /// release the key so that the client may retry with it.
    async fn remember(&self, actor: &str, key: &IdempotencyKey, result: &Result<SendReceipt, SendError>) {
        let stored = match result {
            Ok(receipt) => Some((201, StoredOutcome::Sent(receipt.clone()))),
            Err(SendError::MailRejected { message_id, code }) => Some((
                502,
                StoredOutcome::Rejected {
                    message_id: message_id.clone(),
                    code: code.clone(),
                },
            )),
            Err(SendError::MailUnconfirmed { message_id, code }) => Some((
                503,
                StoredOutcome::Unconfirmed {
                    message_id: message_id.clone(),
                    code: code.clone(),
                },
            )),
            Err(_) => None,
        };
        let outcome = match stored {
            Some((status, outcome)) => {
                let json = serde_json::to_string(&outcome).unwrap_or_default();
                retry_store(|| self.idempotency.complete(actor, key.as_str(), status, &json)).await
            }
            None => self.idempotency.release(actor, key.as_str()).await,
        };
        if let Err(err) = outcome {
            // The send itself is recorded in admin_messages; a lost key record only means a
            // retry after the lease would be treated as new.
            tracing::error!(error = ?anyhow::Error::from(err), "could not record the idempotency key's outcome");
        }
    }

    /// Reserve, send, record. Every path leaves the message row `pending`, `sent` or `failed`.
    async fn deliver(
        &self,
        meta: &RequestMeta,
        actor: &str,
        message_id: &str,
        to: EmailAddress,
        input: &SendInput,
    ) -> Result<SendReceipt, SendError> {
        let now = self.clock.now();
        let created_at = timestamp(now);
        let message = AdminMessage {
            message_id: message_id.to_owned(),
            sender_id: actor.to_owned(),
            recipient_id: input.target.as_str().to_owned(),
            subject: input.subject.as_str().to_owned(),
            body: input.body.as_str().to_owned(),
            status: MessageStatus::Pending,
            ses_message_id: None,
            error_code: None,
            created_at: created_at.clone(),
            sent_at: None,
            updated_at: None,
        };
        match self
            .outbox
            .reserve(&message, now + chrono_duration(self.settings.send_lease))
            .await?
        {
            Reserved::Reserved => {}
            Reserved::RecipientGone => return Err(SendError::Denied(Denial::UserDeleted)),
            Reserved::Exists(existing) => match existing.status {
                // A retry after an interrupted send: answer from the row.
                MessageStatus::Pending => {}
                MessageStatus::Failed => {
                    return Err(SendError::MailRejected {
                        message_id: existing.message_id,
                        code: existing.error_code.unwrap_or_else(|| "Failed".into()),
                    })
                }
                _ => {
                    return Ok(SendReceipt {
                        message_id: existing.message_id,
                        status: "sent".into(),
                        ses_message_id: existing.ses_message_id.unwrap_or_default(),
                        sent_at: existing.sent_at.unwrap_or(existing.created_at),
                    })
                }
            },
        }

        let email = OutgoingEmail {
            message_id: message_id.to_owned(),
            to,
            from: self.settings.mail_from.clone(),
            reply_to: self.settings.reply_to.clone(),
            subject: input.subject.clone(),
            body: input.body.clone(),
        };
        match self.mailer.send(&email).await {
            Ok(ses_message_id) => {
                let sent_at = timestamp(self.clock.now());
                let event = SecurityEvent::new(
                    format!("{message_id}#sent"),
                    EventType::AdminSentUserMessage,
                    input.target.as_str(),
                    meta,
                    &sent_at,
                )
                .with("message_id", message_id);
                // The mail is out: from here the answer is "sent" whatever the bookkeeping
                // does, so the idempotency key is never released and a retry never mails twice.
                let recorded = retry_store(|| {
                    self.outbox
                        .mark_sent(message_id, &ses_message_id, &sent_at, &event)
                })
                .await;
                self.release_lease(input.target.as_str()).await;
                match recorded {
                    Ok(()) => tracing::info!(message_id, "message sent"),
                    Err(err) => tracing::error!(
                        error = ?anyhow::Error::from(err),
                        message_id,
                        "message sent but not recorded: the row stays pending and its audit event is missing"
                    ),
                }
                Ok(SendReceipt {
                    message_id: message_id.to_owned(),
                    status: "sent".into(),
                    ses_message_id,
                    sent_at,
                })
            }
            Err(MailError::Unconfirmed { code, source }) => {
                // Maybe sent: the row stays pending (never `failed`, never sent again by a retry).
                tracing::error!(error = ?source, message_id, code = %code, "the mail provider did not confirm the message");
                self.release_lease(input.target.as_str()).await;
                Err(SendError::MailUnconfirmed {
                    message_id: message_id.to_owned(),
                    code,
                })
            }
            Err(err) => {
                let code = match &err {
                    MailError::Rejected { code } | MailError::Throttled { code, .. } => code.clone(),
                    MailError::Unavailable { code, .. } | MailError::Unconfirmed { code, .. } => code.clone(),
                };
                let at = timestamp(self.clock.now());
                if let Err(store) = retry_store(|| self.outbox.mark_failed(message_id, &code, &at)).await {
                    tracing::error!(error = ?anyhow::Error::from(store), message_id, "could not mark the message failed; it stays pending");
                }
                self.release_lease(input.target.as_str()).await;
                Err(match err {
                    MailError::Rejected { code } => SendError::MailRejected {
                        message_id: message_id.to_owned(),
                        code,
                    },
                    MailError::Throttled { retry_after, .. } => SendError::MailThrottled { retry_after },
                    MailError::Unavailable { code, source } | MailError::Unconfirmed { code, source } => {
                        SendError::MailUnavailable { code, source }
                    }
                })
            }
        }
    }

    /// The send is over: let a waiting deletion go on. Best effort: the lease expires anyway.
    async fn release_lease(&self, recipient_id: &str) {
        if let Err(err) = self.outbox.release(recipient_id).await {
            tracing::warn!(error = ?anyhow::Error::from(err), "could not release the send lease; it will expire");
        }
    }

    /// Messages a user received, newest first.
    pub async fn history(
        &self,
        meta: &RequestMeta,
        target: &UserId,
        limit: usize,
        cursor: Option<&crate::cursor::MessageCursor>,
    ) -> Result<Page<AdminMessage>, HistoryError> {
        let (caller, profile) = futures::try_join!(
            load_caller(&*self.profiles, meta),
            self.profiles.get(target.as_str())
        )?;
        let decision = policy::decide(policy::Request {
            action: Action::ViewMessages,
            caller,
            target: target_state(profile.as_ref(), None),
            is_self: meta.caller.as_deref() == Some(target.as_str()),
            acknowledged: false,
        });
        if let Decision::Deny(denial) = decision {
            audit_denial(
                &*self.log,
                &*self.clock,
                meta,
                Action::ViewMessages,
                target.as_str(),
                denial.code(),
            )
            .await;
            return Err(HistoryError::Denied(denial));
        }
        Ok(self
            .outbox
            .history(target.as_str(), limit.clamp(1, 100), cursor)
            .await?)
    }
}

enum ClaimOutcome {
    Owned { message_id: String },
    Answered(Result<Sent, SendError>),
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

fn replay(response: &str) -> Result<Sent, SendError> {
    match serde_json::from_str::<StoredOutcome>(response) {
        Ok(StoredOutcome::Sent(receipt)) => Ok(Sent {
            receipt,
            replayed: true,
        }),
        Ok(StoredOutcome::Rejected { message_id, code }) => Err(SendError::MailRejected { message_id, code }),
        Ok(StoredOutcome::Unconfirmed { message_id, code }) => {
            Err(SendError::MailUnconfirmed { message_id, code })
        }
        Err(e) => Err(SendError::Dependency(DependencyError::new(
            "idempotency",
            false,
            e,
        ))),
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

pub(crate) fn chrono_duration(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

//! Ports: one small trait per capability. Adapters (in-memory here, DynamoDB / SESv2 /
//! Cognito / SQS in `aws-adapters`) implement them; the use cases only see these.

use crate::cascade::CascadeTable;
use crate::cursor::{MessageCursor, UserCursor};
use crate::job::DeletionJob;
use crate::model::{AdminMessage, ItemKey, Page, Profile, SecurityEvent};
use crate::types::{EmailAddress, MessageBody, Subject};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A dependency failed. `retryable` errors (throttling, 5xx, timeouts) become
/// `503 dependency_unavailable`; the cause chain is logged once, at the boundary.
#[derive(Debug, thiserror::Error)]
#[error("{dependency} failed")]
pub struct DependencyError {
    pub dependency: &'static str,
    pub retryable: bool,
    #[source]
    pub source: anyhow::Error,
}

impl DependencyError {
    pub fn new(dependency: &'static str, retryable: bool, source: impl Into<anyhow::Error>) -> Self {
        DependencyError {
            dependency,
            retryable,
            source: source.into(),
        }
    }
}

pub type StoreResult<T> = Result<T, DependencyError>;

/// Outcome of anonymising a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anonymised {
    /// The profile is a tombstone now (or already was).
    Done,
    /// A message send to this user holds a lease until this time; try again after it.
    SendInFlight { until: DateTime<Utc> },
    /// There is no profile row at all.
    Missing,
}

/// Filter and page for the user list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Case-insensitive substring of email or display name.
    pub search: Option<String>,
    pub limit: usize,
    pub cursor: Option<UserCursor>,
    pub include_deleted: bool,
}

#[async_trait]
pub trait Profiles: Send + Sync {
    async fn get(&self, user_id: &str) -> StoreResult<Option<Profile>>;
    /// Turn the profile into the tombstone: `display_name` = "Deleted User", `email` and
    /// `auth_username` removed, `deleted_at` set. Idempotent. Refused while a send lease
    /// is held (see [`MessageOutbox::reserve`]).
    async fn anonymise(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Anonymised>;
    async fn list(&self, query: &ListQuery) -> StoreResult<Page<Profile>>;
}

/// Outcome of reserving a message.
// The large variant is the rare path; boxing it buys nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// The pending row is written and the recipient is leased until the send ends.
    Reserved,
    /// A row with this message id exists already (a retry of an interrupted send).
    Exists(AdminMessage),
    /// Between reading the profile and now, the recipient was deleted or lost their email.
    RecipientGone,
}

#[async_trait]
pub trait MessageOutbox: Send + Sync {
    /// In one transaction: write the `pending` row (only if absent) and take a send lease on
    /// the recipient's profile (only if it still has an email and is not a tombstone).
    /// The delete routine does not anonymise a profile while such a lease is held, so mail is
    /// never sent to a user after their tombstone exists.
    async fn reserve(&self, message: &AdminMessage, lease_until: DateTime<Utc>) -> StoreResult<Reserved>;
    /// In one transaction: mark the row `sent` and append the `admin_sent_user_message` event.
    async fn mark_sent(
        &self,
        message_id: &str,
        ses_message_id: &str,
        at: &str,
        event: &SecurityEvent,
    ) -> StoreResult<()>;
    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()>;
    /// A send to this recipient is over (sent or failed): count its lease down, so that a
    /// deletion waiting for it goes on at once instead of at the lease's expiry.
    async fn release(&self, recipient_id: &str) -> StoreResult<()>;
    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>>;
    /// Messages received by a user, newest first.
    async fn history(
        &self,
        recipient_id: &str,
        limit: usize,
        cursor: Option<&MessageCursor>,
    ) -> StoreResult<Page<AdminMessage>>;
}

/// Outcome of appending to the security log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New,
    /// An event with this id exists already: the append is a retry.
    AlreadyRecorded,
}

#[async_trait]
pub trait SecurityLog: Send + Sync {
    /// Conditional put on `event_id`: never overwrites.
    async fn append(&self, event: &SecurityEvent) -> StoreResult<Appended>;
}

/// An email ready to go.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub message_id: String,
    pub to: EmailAddress,
    pub from: String,
    pub reply_to: String,
    pub subject: Subject,
    pub body: MessageBody,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The provider refused this message for good (`MessageRejected`, bad address, ...).
    #[error("the mail provider rejected the message ({code})")]
    Rejected { code: String },
    /// The provider asks us to slow down.
    #[error("the mail provider is throttling ({code})")]
    Throttled {
        code: String,
        retry_after: Option<Duration>,
    },
    /// 5xx, a connection that could not be made: the message was not accepted and may be
    /// retried.
    #[error("the mail provider is unavailable")]
    Unavailable {
        code: String,
        #[source]
        source: anyhow::Error,
    },
    /// The request went out but no answer came back (a timeout, a broken response): the
    /// provider may have accepted the message. It must not be sent again automatically.
    #[error("the mail provider did not confirm the message")]
    Unconfirmed {
        code: String,
        #[source]
        source: anyhow::Error,
    },
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends and returns the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}

#[async_trait]
pub trait AuthDirectory: Send + Sync {
    /// Disable the user and revoke their sessions everywhere. A user already gone is done.
    async fn lock_out(&self, username: &str) -> StoreResult<()>;
    /// Delete the user. A user already gone is done.
    async fn delete(&self, username: &str) -> StoreResult<()>;
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// Another request created the job first: join it.
    Exists(DeletionJob),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// The stored version moved on, or the lease passed to another runner: stop.
    Conflict,
}

#[async_trait]
pub trait DeletionJobs: Send + Sync {
    /// Conditional create: one job per target.
    async fn create(&self, job: &DeletionJob) -> StoreResult<Created>;
    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>>;
    /// Save `job` if the stored row still has version `job.version - 1`.
    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved>;
}

/// One page of a user's item keys in one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysPage {
    pub keys: Vec<ItemKey>,
    /// `LastEvaluatedKey`: `None` when this was the last page.
    pub next: Option<ItemKey>,
}

/// A capped count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    /// More than `count` exist; counting stopped at the cap.
    pub capped: bool,
}

#[async_trait]
pub trait UserData: Send + Sync {
    /// Read one page of the user's item keys (keys only), starting after `cursor`.
    async fn page(
        &self,
        table: &CascadeTable,
        user_id: &str,
        cursor: Option<&ItemKey>,
        limit: usize,
    ) -> StoreResult<KeysPage>;
    /// Delete these items (absent ones are fine). Batches of at most 25, unprocessed items
    /// retried with backoff; returns once every key is gone.
    async fn delete(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<()>;
    /// Count the user's items, stopping at `cap`.
    async fn count(&self, table: &CascadeTable, user_id: &str, cap: u64) -> StoreResult<Count>;
}

/// The stored state of an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyRecord {
    /// A request holds the key and is still working (or crashed before `lease_until`).
    InFlight {
        fingerprint: String,
        message_id: String,
        lease_until: DateTime<Utc>,
    },
    /// The first request finished: this is its answer.
    Done {
        fingerprint: String,
        status: u16,
        response: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key now; it must send with this message id.
    Claimed { message_id: String },
    /// Another request has it.
    Taken(IdempotencyRecord),
}

#[async_trait]
pub trait Idempotency: Send + Sync {
    /// Conditional put: succeeds if the key is new, expired (24 h) or its in-flight lease
    /// ran out (then the earlier message id is reused so no second row appears).
    #[allow(clippy::too_many_arguments)]
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        message_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Claim>;
    async fn complete(&self, scope: &str, key: &str, status: u16, response: &str) -> StoreResult<()>;
    /// Forget an in-flight claim after a retryable failure, so the client may retry.
    async fn release(&self, scope: &str, key: &str) -> StoreResult<()>;
    async fn get(&self, scope: &str, key: &str, now: DateTime<Utc>)
        -> StoreResult<Option<IdempotencyRecord>>;
}

#[async_trait]
pub trait DeletionQueue: Send + Sync {
    /// Ask the worker to continue the job of this user.
    async fn enqueue(&self, user_id: &str, job_id: &str) -> StoreResult<()>;
}

/// Outcome of taking one unit of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Count one use of `bucket` (e.g. `messages#<admin id>`) in the current window.
    async fn take(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<RateDecision>;
}

/// The limiter where no limit is configured: every use is allowed, nothing is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRateLimit;

#[async_trait]
impl RateLimiter for NoRateLimit {
    async fn take(
        &self,
        _bucket: &str,
        _limit: u32,
        _window: Duration,
        _now: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        Ok(RateDecision::Allowed)
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that tests move by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(std::sync::Mutex::new(start))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an SES event says about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryUpdate {
    Delivered,
    /// A permanent (hard) bounce.
    Bounced,
    Complained,
    /// SES refused to send it (for example a virus was found).
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Updated,
    /// The row already holds this or a later status (SES events are at-least-once and unordered).
    Unchanged,
    /// No message has this provider id (for example it was erased with its recipient).
    UnknownMessage,
}

#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Move the message with this provider id forward to `update`, stamped `at`.
    async fn record_delivery(
        &self,
        ses_message_id: &str,
        update: DeliveryUpdate,
        at: &str,
    ) -> StoreResult<Recorded>;
}

impl DeliveryUpdate {
    /// The status a message takes.
    pub fn status(self) -> crate::model::MessageStatus {
        use crate::model::MessageStatus;
        match self {
            DeliveryUpdate::Delivered => MessageStatus::Delivered,
            DeliveryUpdate::Bounced => MessageStatus::Bounced,
            DeliveryUpdate::Complained => MessageStatus::Complained,
            DeliveryUpdate::Rejected => MessageStatus::Failed,
        }
    }

    /// Whether a message in status `current` may move to this update's status. Delivery only
    /// follows a send; a bounce or complaint wins over a delivery; nothing moves a message back.
    pub fn applies_to(self, current: crate::model::MessageStatus) -> bool {
        use crate::model::MessageStatus::*;
        match self {
            DeliveryUpdate::Delivered => matches!(current, Pending | Sent),
            DeliveryUpdate::Bounced | DeliveryUpdate::Rejected => {
                matches!(current, Pending | Sent | Delivered)
            }
            DeliveryUpdate::Complained => matches!(current, Pending | Sent | Delivered | Bounced),
        }
    }
}

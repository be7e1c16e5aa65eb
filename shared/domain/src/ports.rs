//! Ports: one small trait per capability. Adapters (in-memory here, DynamoDB / SESv2 /
//! Cognito / SQS in `aws-adapters`) implement them; the use cases only see these.

use crate::cascade::CascadeTable;
use crate::cursor::{AuditCursor, MessageCursor, UserCursor};
use crate::deletion::Continuation;
use crate::job::DeletionJob;
use crate::model::{AdminMessage, EventType, ItemKey, Page, Profile, SecurityEvent};
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
    /// The dependency asked us to slow down (throttling, capacity exceeded): nothing is wrong,
    /// the same call succeeds later. The delete routine slows down instead of failing.
    pub throttled: bool,
    #[source]
    pub source: anyhow::Error,
}

impl DependencyError {
    pub fn new(dependency: &'static str, retryable: bool, source: impl Into<anyhow::Error>) -> Self {
        DependencyError {
            dependency,
            retryable,
            throttled: false,
            source: source.into(),
        }
    }

    /// A "slow down" answer (retryable by nature).
    pub fn throttled(dependency: &'static str, source: impl Into<anyhow::Error>) -> Self {
        DependencyError {
            throttled: true,
            ..DependencyError::new(dependency, true, source)
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
    /// Refuse every token of this user issued before `after` (epoch seconds): sets the
    /// profile's `tokens_valid_after`, only ever forward. False when there is no profile.
    async fn revoke_tokens(&self, user_id: &str, after: i64) -> StoreResult<bool>;
    /// The user ids of the active owners: role `owner`, not a tombstone, no deletion job.
    /// Read through an index (eventually consistent): a caller's own fresh read is added by
    /// the use case.
    async fn active_owners(&self) -> StoreResult<Vec<String>>;
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

/// Outcome of recording that SES is about to be called for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// This attempt holds the row: it, and only it, may call SES once.
    Began,
    /// Another attempt marked the row before (SES may have been called): never call SES.
    Taken,
    /// The row is no longer pending (sent, failed, ... by an earlier attempt or an event).
    NotPending,
}

#[async_trait]
pub trait MessageOutbox: Send + Sync {
    /// In one transaction: write the `pending` row (only if absent) and add the message to the
    /// send leases held on the recipient's profile (only if it still has an email, is not a
    /// tombstone and has no deletion job). The delete routine does not anonymise a profile
    /// while a lease is held, so mail is never sent after the tombstone exists. The lease is a
    /// set of message ids: taking or releasing it twice (an SDK retry) counts once.
    async fn reserve(&self, message: &AdminMessage, lease_until: DateTime<Utc>) -> StoreResult<Reserved>;
    /// In one transaction, before SES is called: mark the pending row with `attempt` (only if
    /// it carries no attempt, or this same one) and append the `admin_sent_user_message` event.
    async fn begin_attempt(
        &self, message_id: &str, attempt: &str, event: &SecurityEvent,
    ) -> StoreResult<Attempt>;
    /// SES accepted the message: `pending`/`unconfirmed` → `sent` with the provider's id. An
    /// event that moved the row on first keeps its status; the provider id is kept either way.
    async fn mark_sent(&self, message_id: &str, ses_message_id: &str, at: &str) -> StoreResult<()>;
    /// SES refused it for good, or it was never handed over: `pending` → `failed`.
    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()>;
    /// The send of `message_id` to this recipient is over: drop its lease, so that a deletion
    /// waiting for it goes on at once instead of at the lease's expiry.
    async fn release(&self, recipient_id: &str, message_id: &str) -> StoreResult<()>;
    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>>;
    /// Messages received by a user, newest first.
    async fn history(
        &self, recipient_id: &str, limit: usize, cursor: Option<&MessageCursor>,
    ) -> StoreResult<Page<AdminMessage>>;
    /// Ids of rows still `pending` that were created before `before`, oldest first, through the
    /// sparse index of pending rows.
    async fn stale_pending(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<Vec<String>>;
    /// Settle a row the sweep found still pending: `unconfirmed` when SES may have been called
    /// (it carries an attempt), `failed` (code `NotSent`) when it never was. `None` when the row
    /// is not pending any more.
    async fn settle_stale(
        &self, message_id: &str, at: &str,
    ) -> StoreResult<Option<crate::model::MessageStatus>>;
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
    /// Count one refusal in its caller's first refusal row of the minute (`first`, whose id
    /// names the caller and the minute), written as `first` when absent. Counted by
    /// `request_id`, so a retried write that had applied counts once. Returns how many
    /// refusals the row counts now (1: `first` was just written). These counters are the only
    /// attributes of the log that ever change.
    async fn count_refusal(&self, first: &SecurityEvent, request_id: &str) -> StoreResult<u64>;
}

/// Which rows of the audit trail to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Rows about this target (`*` for the actions with no single target).
    pub target: Option<String>,
    /// Rows of this actor.
    pub actor: Option<String>,
    pub event_type: Option<EventType>,
    /// 1..=[`AuditQuery::MAX_LIMIT`].
    pub limit: usize,
    /// Rows strictly after this one, newest first.
    pub after: Option<AuditCursor>,
}

impl AuditQuery {
    pub const MAX_LIMIT: usize = 100;

    /// Whether `event` passes every filter of the query (the cursor aside).
    pub fn matches(&self, event: &SecurityEvent) -> bool {
        self.target.as_deref().is_none_or(|t| event.target_id == t)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| event.actor_id.as_deref() == Some(a))
            && self.event_type.is_none_or(|t| event.event_type == t)
    }
}

/// A page of the audit trail: at most `limit` rows, newest first, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub items: Vec<SecurityEvent>,
    pub more: bool,
}

/// The read side of the audit trail: through indexes only, never a scan.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Rows matching `query`, newest first (`created_at`, then `event_id`, descending).
    async fn list(&self, query: &AuditQuery) -> StoreResult<AuditPage>;
    /// The `admin_deleted_user` rows whose `target_email_sha256` is `email_sha256`, newest
    /// first, at most `limit`.
    async fn erasure_receipts(&self, email_sha256: &str, limit: usize) -> StoreResult<Vec<SecurityEvent>>;
}

/// Why an address is on the mail provider's account-level suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressionReason {
    Bounce,
    Complaint,
}

impl SuppressionReason {
    /// The provider's spelling: `BOUNCE`, `COMPLAINT`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Bounce => "BOUNCE",
            SuppressionReason::Complaint => "COMPLAINT",
        }
    }
}

/// An address the provider accepts mail for and then silently does not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: SuppressionReason,
    /// When the address was put on the list (RFC 3339, UTC).
    pub since: String,
}

#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// Whether mail to `to` (as it would be delivered) is suppressed; `None`: it is not.
    async fn check(&self, to: &EmailAddress) -> StoreResult<Option<Suppression>>;
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
    /// The request never reached the provider (the connection could not be made): nothing
    /// was sent, and a retry may succeed.
    #[error("the mail provider could not be reached")]
    NotSent {
        code: String,
        #[source]
        source: anyhow::Error,
    },
    /// Anything that is not a definite yes or no (a timeout, any 5xx, a connection dropped
    /// after the request was written, an unknown error): the provider may have accepted the
    /// message. It is never sent again.
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

/// Outcome of locking a user out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedOut {
    Done,
    /// No user has this username. Not a success: the routine resolves the user again by `sub`.
    NotFound,
}

#[async_trait]
pub trait AuthDirectory: Send + Sync {
    /// The username of the user whose `sub` this is (`ListUsers` with a `sub` filter), if any.
    async fn find_by_sub(&self, sub: &str) -> StoreResult<Option<String>>;
    /// The `sub` of the user with this username, if there is one (`AdminGetUser`).
    async fn sub_of(&self, username: &str) -> StoreResult<Option<String>>;
    /// Disable the user and revoke their sessions everywhere.
    async fn lock_out(&self, username: &str) -> StoreResult<LockedOut>;
    /// Delete the user. A user already gone is done.
    async fn delete(&self, username: &str) -> StoreResult<()>;
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// Another request created the job first: join it.
    Exists(DeletionJob),
    /// The actor's own deletion job exists (created meanwhile): they are deleted now.
    ActorDeleted,
}

/// A job that is not done yet, as the sparse index of open jobs holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJob {
    pub user_id: String,
    pub job_id: String,
    pub created_at: String,
    /// [`DeletionJob::sweep_due_at`].
    pub due_at: String,
    /// Completed, waiting for (or running) its late pass.
    pub completed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// The stored version moved on, or the lease passed to another runner: stop.
    Conflict,
}

#[async_trait]
pub trait DeletionJobs: Send + Sync {
    /// In one transaction: create the job (one per target), mark the target's profile with
    /// it, and check that the actor (`job.actor_id`) has no deletion job of their own. Two
    /// owners deleting each other at once: exactly one job is created.
    async fn create(&self, job: &DeletionJob) -> StoreResult<Created>;
    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>>;
    /// Save `job` if the stored row still has version `job.version - 1`. A retried save that
    /// had in fact applied is recognised as this save, not as a conflict.
    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved>;
    /// Every job that is not done (in progress, or completed with its late pass to run),
    /// soonest due first, at most `limit`, through the sparse index of open jobs (never a
    /// scan). Eventually consistent: the sweep reads a job again before acting on it.
    async fn open(&self, limit: usize) -> StoreResult<Vec<OpenJob>>;
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
        &self, table: &CascadeTable, user_id: &str, cursor: Option<&ItemKey>, limit: usize,
    ) -> StoreResult<KeysPage>;
    /// Delete these items (absent ones are fine). Batches of at most 25, unprocessed items
    /// retried with backoff; returns once every key is gone.
    async fn delete(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<()>;
    /// Which of these keys are items of the table itself, read consistently: a key found
    /// through an index can be an item already deleted that the index still shows.
    async fn existing(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<Vec<ItemKey>>;
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

/// One request's claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest<'a> {
    /// The caller: keys are per caller.
    pub scope: &'a str,
    pub key: &'a str,
    /// What makes two requests "the same".
    pub fingerprint: &'a str,
    /// The message id this request would use if the key is new.
    pub message_id: &'a str,
    /// This request's own token: a retried claim that had in fact applied is recognised by it.
    pub owner: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait Idempotency: Send + Sync {
    /// Conditional write: succeeds if the key is new, expired (24 h) or its in-flight lease
    /// ran out (then the earlier message id is kept, so that no second row appears and the
    /// row's attempt marker decides whether SES may still be called).
    async fn claim(&self, claim: &ClaimRequest<'_>) -> StoreResult<Claim>;
    /// Store the final answer (only while `owner` holds the key).
    async fn complete(
        &self, scope: &str, key: &str, owner: &str, status: u16, response: &str,
    ) -> StoreResult<()>;
    /// Forget an in-flight claim after a definite failure (nothing was sent), so the client
    /// may retry with the same key. Only while `owner` holds it.
    async fn release(&self, scope: &str, key: &str, owner: &str) -> StoreResult<()>;
    async fn get(&self, scope: &str, key: &str, now: DateTime<Utc>)
        -> StoreResult<Option<IdempotencyRecord>>;
}

#[async_trait]
pub trait DeletionQueue: Send + Sync {
    /// Ask the worker to continue a job, not before `delay` (at most 15 minutes, SQS's limit).
    async fn enqueue(&self, continuation: &Continuation, delay: Duration) -> StoreResult<()>;
}

/// Outcome of taking one unit of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Count one use of `bucket` (e.g. `messages#<admin id>`) in the sliding window that ends
    /// at `now`: allowed while fewer than `limit` uses fall inside it. `use_id` names this use,
    /// so that a retried write that had in fact applied counts once.
    async fn take(
        &self, bucket: &str, limit: u32, window: Duration, now: DateTime<Utc>, use_id: &str,
    ) -> StoreResult<RateDecision>;
}

/// The limiter where no limit is configured: every use is allowed, nothing is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRateLimit;

#[async_trait]
impl RateLimiter for NoRateLimit {
    async fn take(
        &self, _bucket: &str, _limit: u32, _window: Duration, _now: DateTime<Utc>, _use_id: &str,
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

/// Wall time that follows tokio's clock: under `tokio::time::pause()` (simulations that
/// jump over delays) it moves with the sleeps.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        self.base + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
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
    /// SES accepted the message for sending (the configuration set's `Send` event).
    Sent,
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

/// One SES event about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Our message id, from the `message_id` tag every send carries: the row is then found by
    /// a direct, consistent read, even before the send's own bookkeeping recorded the
    /// provider id. `None` for mail sent without the tag (found through the provider id).
    pub message_id: Option<String>,
    pub ses_message_id: String,
    pub update: DeliveryUpdate,
    /// RFC 3339.
    pub at: String,
}

#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Move the message forward to `record.update`, stamped `record.at`; its provider id is
    /// recorded when the row has none yet.
    async fn record_delivery(&self, record: &DeliveryRecord) -> StoreResult<Recorded>;
}

impl DeliveryUpdate {
    /// The status a message takes.
    pub fn status(self) -> crate::model::MessageStatus {
        use crate::model::MessageStatus;
        match self {
            DeliveryUpdate::Sent => MessageStatus::Sent,
            DeliveryUpdate::Delivered => MessageStatus::Delivered,
            DeliveryUpdate::Bounced => MessageStatus::Bounced,
            DeliveryUpdate::Complained => MessageStatus::Complained,
            DeliveryUpdate::Rejected => MessageStatus::Failed,
        }
    }

    /// Whether a message in status `current` may move to this update's status. A send only
    /// confirms a pending or unconfirmed row; delivery follows a send; a bounce or complaint
    /// wins over a delivery; nothing moves a message back.
    pub fn applies_to(self, current: crate::model::MessageStatus) -> bool {
        use crate::model::MessageStatus::*;
        match self {
            DeliveryUpdate::Sent => matches!(current, Pending | Unconfirmed),
            DeliveryUpdate::Delivered => matches!(current, Pending | Unconfirmed | Sent),
            DeliveryUpdate::Bounced | DeliveryUpdate::Rejected => {
                matches!(current, Pending | Unconfirmed | Sent | Delivered)
            }
            DeliveryUpdate::Complained => {
                matches!(current, Pending | Unconfirmed | Sent | Delivered | Bounced)
            }
        }
    }
}

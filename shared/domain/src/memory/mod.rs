//! In-memory adapters for every port: used by unit and handler tests, and by the local dev
//! server. One backend holds every table so that cross-table transactions (reserve a message
//! and lease the recipient, create a job and mark the profile) are atomic here too.
//!
//! It also stands in for the failures real AWS produces, for the reliability tests:
//! - a fault plan makes the k-th store call fail before it applies, fail after it applied
//!   (an answer lost), or hang for ever (the function killed there: see
//!   [`InMemoryBackend::crashed`]);
//! - the queue behaves like SQS: delays, visibility timeouts, redelivery;
//! - tables found through an index can lag like a GSI (rows written just before a query
//!   missing from it, deleted rows still showing).

use crate::audit::AuditLog;
use crate::cascade::{CascadeTable, Lookup};
use crate::cursor::{CursorError, MessageCursor, UserCursor};
use crate::deletion::{Continuation, Deletion, DeletionSettings};
use crate::job::{DeletionJob, Step};
use crate::messaging::{Messaging, MessagingSettings};
use crate::model::*;
use crate::ports::*;
use crate::sweep::{SweepSettings, Sweeper};
use crate::types::EmailAddress;
use crate::users::Directory;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::model::NOT_SENT;

mod audit;
mod message_rows;
mod messages;

pub use message_rows::{MessageMut, Messages};

/// How the in-memory mailer answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MailBehaviour {
    #[default]
    Accept,
    Reject,
    Throttle,
    /// The provider could not be reached: nothing sent.
    NotSent,
    /// The mail goes out, but the answer is lost (a timeout after the provider accepted it).
    Unconfirmed,
    /// The request is lost before the provider saw it, and no answer comes back either: from
    /// the caller's side exactly like [`MailBehaviour::Unconfirmed`], but nothing was sent.
    LostRequest,
}

/// What a fault does to the store call it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A retryable error; nothing applied.
    Fail,
    /// The call applies, then a retryable error comes back (the answer was lost).
    FailAfter,
    /// The call never returns: the function was killed there. [`InMemoryBackend::crashed`]
    /// wakes up; the test drops the use case's future.
    Crash,
    /// A "slow down" answer (throttling, capacity exceeded); nothing applied.
    Throttle,
}

/// A Cognito user as the in-memory directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub sub: String,
    pub enabled: bool,
    pub signed_out: bool,
}

/// A message on the in-memory queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: u64,
    pub continuation: Continuation,
    pub visible_at: DateTime<Utc>,
    pub receives: u32,
}

/// An idempotency key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub record: IdempotencyRecord,
    pub expires_at: DateTime<Utc>,
    pub owner: String,
}

/// How a table found through an index lags behind it, like a GSI (by the backend's clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexLag {
    /// Rows written with [`InMemoryBackend::put_item`] are missing from the index this long.
    pub new_rows_hidden_for: Duration,
    /// Deleted rows still show in the index this long.
    pub deleted_rows_shown_for: Duration,
}

/// Everything stored, readable by tests.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub profiles: BTreeMap<String, Profile>,
    /// Send leases per recipient: the message ids in flight and the latest lease expiry.
    pub send_leases: HashMap<String, (BTreeSet<String>, DateTime<Utc>)>,
    pub messages: Messages,
    pub security_logs: BTreeMap<String, SecurityEvent>,
    pub jobs: BTreeMap<String, DeletionJob>,
    /// Generic user-data tables (transactions, sessions, ...): table name → items by key.
    pub tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    pub idempotency: HashMap<String, StoredKey>,
    /// Cognito users by username.
    pub auth_users: BTreeMap<String, AuthUser>,
    pub sent_mail: Vec<SentMail>,
    /// Every call made to the mailer, whatever it answered.
    pub mail_calls: Vec<String>,
    pub queue: Vec<QueuedMessage>,
    /// Per first refusal row of a caller and minute, the request ids it counts.
    pub refusals: HashMap<String, BTreeSet<String>>,
    /// Sliding-window uses per bucket: when, and the use's id.
    pub rate: HashMap<String, Vec<(DateTime<Utc>, String)>>,
    /// The mail provider's account-level suppression list, by normal (lower-cased) address.
    pub suppressed: BTreeMap<String, Suppression>,
    index_lag: IndexLag,
    /// Rows an index does not show before this time.
    hidden_until: HashMap<(String, String), DateTime<Utc>>,
    /// Deleted rows an index still shows, until this time.
    ghosts: BTreeMap<String, Vec<(ItemKey, DateTime<Utc>)>>,
    next_message: u64,
}

/// A mail the in-memory mailer accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub provider_id: String,
    pub message_id: String,
    pub to: String,
    pub from: String,
    pub reply_to: String,
    pub subject: String,
    pub body: String,
}

/// Called with every accepted mail.
pub type MailHook = Arc<dyn Fn(&OutgoingEmail) + Send + Sync>;

/// The in-memory backend: implements every port.
pub struct InMemoryBackend {
    state: Mutex<State>,
    store_calls: AtomicU64,
    faults: Mutex<BTreeMap<u64, Fault>>,
    crash: tokio::sync::Notify,
    mail: Mutex<MailBehaviour>,
    mail_hook: Mutex<Option<MailHook>>,
    clock: Mutex<Arc<dyn Clock>>,
    latency: Mutex<Duration>,
    outage: Mutex<Option<(DateTime<Utc>, DateTime<Utc>)>>,
    suppression_list_down: std::sync::atomic::AtomicBool,
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        InMemoryBackend {
            state: Mutex::default(),
            store_calls: AtomicU64::new(0),
            faults: Mutex::default(),
            crash: tokio::sync::Notify::new(),
            mail: Mutex::default(),
            mail_hook: Mutex::default(),
            clock: Mutex::new(Arc::new(SystemClock)),
            latency: Mutex::new(Duration::ZERO),
            outage: Mutex::new(None),
            suppression_list_down: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InMemoryBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> State {
        self.state().clone()
    }

    /// The clock the backend stamps queue delays with, and that [`Self::deletion`],
    /// [`Self::messaging`] and the others hand to the use cases.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *lock(&self.clock) = clock;
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        lock(&self.clock).clone()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }

    /// Make the `k`-th store call from now (1-based) fail with a retryable error; 0 = never.
    pub fn fail_at(&self, k: u64) {
        self.inject(&[(k, Fault::Fail)]);
    }

    /// Replace the fault plan: the store calls (1-based, counted from now) and what hits them.
    pub fn inject(&self, plan: &[(u64, Fault)]) {
        self.store_calls.store(0, Ordering::SeqCst);
        *lock(&self.faults) = plan.iter().filter(|(k, _)| *k > 0).copied().collect();
    }

    /// Store calls made since the last [`inject`](Self::inject).
    pub fn store_calls(&self) -> u64 {
        self.store_calls.load(Ordering::SeqCst)
    }

    /// Resolves once a [`Fault::Crash`] was hit.
    pub async fn crashed(&self) {
        self.crash.notified().await;
    }

    /// Put `address` on the mail provider's suppression list.
    pub fn suppress(&self, address: &str, reason: SuppressionReason, since: &str) {
        self.state().suppressed.insert(
            address.trim().to_lowercase(),
            Suppression {
                reason,
                since: since.to_owned(),
            },
        );
    }

    /// While `down`, asking the suppression list fails (a retryable provider error).
    pub fn set_suppression_list_down(&self, down: bool) {
        self.suppression_list_down.store(down, Ordering::SeqCst);
    }

    pub fn set_mail_behaviour(&self, b: MailBehaviour) {
        *lock(&self.mail) = b;
    }

    /// Called with every mail the in-memory mailer accepts (the dev server writes `.eml` files).
    pub fn on_mail(&self, hook: MailHook) {
        *lock(&self.mail_hook) = Some(hook);
    }

    /// Every store call takes this long (under `tokio::time::pause()`, simulated time passes).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.latency) = latency;
    }

    /// Every store call between these two instants of the backend's clock fails (a store
    /// that is down for a while).
    pub fn set_outage(&self, from: DateTime<Utc>, until: DateTime<Utc>) {
        *lock(&self.outage) = Some((from, until));
    }

    pub fn set_index_lag(&self, lag: IndexLag) {
        self.state().index_lag = lag;
    }

    /// One store call: counted, and hit by the fault plan.
    async fn call<T>(&self, what: &'static str, f: impl FnOnce(&mut State) -> T) -> StoreResult<T> {
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let n = self.store_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((from, until)) = *lock(&self.outage) {
            let now = self.now();
            if now >= from && now < until {
                return Err(DependencyError::new(
                    what,
                    true,
                    anyhow::anyhow!("injected outage at store call {n}"),
                ));
            }
        }
        let fault = lock(&self.faults).get(&n).copied();
        let injected =
            || DependencyError::new(what, true, anyhow::anyhow!("injected failure at store call {n}"));
        match fault {
            Some(Fault::Fail) => return Err(injected()),
            Some(Fault::Throttle) => {
                return Err(DependencyError::throttled(
                    what,
                    anyhow::anyhow!("injected throttling at store call {n}"),
                ))
            }
            Some(Fault::Crash) => {
                self.crash.notify_one();
                std::future::pending::<()>().await;
            }
            _ => {}
        }
        let out = f(&mut self.state());
        if fault == Some(Fault::FailAfter) {
            return Err(injected());
        }
        Ok(out)
    }

    pub fn put_profile(&self, p: Profile) {
        self.state().profiles.insert(p.user_id.clone(), p);
    }

    /// A Cognito user whose username is its `sub`.
    pub fn put_auth_user(&self, username: &str) {
        self.put_auth_user_with_sub(username, username);
    }

    /// A Cognito user whose username differs from its `sub` (an email, a federated name).
    pub fn put_auth_user_with_sub(&self, username: &str, sub: &str) {
        self.state().auth_users.insert(
            username.to_owned(),
            AuthUser {
                sub: sub.to_owned(),
                enabled: true,
                signed_out: false,
            },
        );
    }

    /// Insert an item into a generic user-data table (all attributes are strings).
    pub fn put_item(&self, table: &CascadeTable, item: BTreeMap<String, String>) {
        let key = item_key_string(table, &item);
        let now = self.now();
        let mut st = self.state();
        if matches!(table.lookup, Lookup::Index { .. }) && !st.index_lag.new_rows_hidden_for.is_zero() {
            let until =
                now + chrono::Duration::from_std(st.index_lag.new_rows_hidden_for).unwrap_or_default();
            st.hidden_until
                .insert((table.name.to_owned(), key.clone()), until);
        }
        st.tables
            .entry(table.name.to_owned())
            .or_default()
            .insert(key, item);
    }

    /// Items of a user in any table of the plan.
    pub fn count_user_items(&self, table: &CascadeTable, user_id: &str) -> usize {
        count_items(&self.state(), table, user_id)
    }

    pub fn messaging(self: &Arc<Self>, settings: MessagingSettings) -> Messaging {
        Messaging {
            profiles: self.clone(),
            outbox: self.clone(),
            log: self.clone(),
            mailer: self.clone(),
            suppressions: self.clone(),
            idempotency: self.clone(),
            limiter: self.clone(),
            clock: self.clock(),
            settings,
        }
    }

    pub fn deletion(self: &Arc<Self>, settings: DeletionSettings) -> Deletion {
        Deletion {
            profiles: self.clone(),
            jobs: self.clone(),
            log: self.clone(),
            auth: self.clone(),
            user_data: self.clone(),
            queue: self.clone(),
            limiter: self.clone(),
            clock: self.clock(),
            settings,
        }
    }

    pub fn sweeper(self: &Arc<Self>, settings: SweepSettings) -> Sweeper {
        Sweeper {
            jobs: self.clone(),
            queue: self.clone(),
            outbox: self.clone(),
            clock: self.clock(),
            settings,
        }
    }

    pub fn revocation(self: &Arc<Self>, user_pool_id: &str) -> crate::revocation::Revocation {
        crate::revocation::Revocation {
            profiles: self.clone(),
            auth: self.clone(),
            clock: self.clock(),
            user_pool_id: user_pool_id.to_owned(),
        }
    }

    pub fn delivery(self: &Arc<Self>) -> crate::delivery::Delivery {
        crate::delivery::Delivery {
            log: self.clone(),
            clock: self.clock(),
        }
    }

    pub fn audit_log(self: &Arc<Self>) -> AuditLog {
        AuditLog {
            profiles: self.clone(),
            log: self.clone(),
            trail: self.clone(),
            jobs: self.clone(),
            clock: self.clock(),
        }
    }

    pub fn directory(self: &Arc<Self>) -> Directory {
        Directory {
            profiles: self.clone(),
            log: self.clone(),
            clock: self.clock(),
        }
    }

    /// Like SQS's receive: the first message visible at `now`, hidden from other receivers
    /// for `visibility` (it comes back then unless acknowledged).
    pub fn receive(&self, now: DateTime<Utc>, visibility: Duration) -> Option<QueuedMessage> {
        let mut st = self.state();
        let m = st
            .queue
            .iter_mut()
            .filter(|m| m.visible_at <= now)
            .min_by_key(|m| (m.visible_at, m.id))?;
        m.receives += 1;
        m.visible_at = now + chrono::Duration::from_std(visibility).unwrap_or(chrono::Duration::MAX);
        Some(m.clone())
    }

    /// Delete a received message (the worker succeeded with it).
    pub fn ack(&self, id: u64) {
        self.state().queue.retain(|m| m.id != id);
    }

    /// When the next message becomes visible.
    pub fn next_visible_at(&self) -> Option<DateTime<Utc>> {
        self.state().queue.iter().map(|m| m.visible_at).min()
    }

    /// Take every queued continuation, ignoring delays.
    pub fn drain_queue(&self) -> Vec<Continuation> {
        std::mem::take(&mut self.state().queue)
            .into_iter()
            .map(|m| m.continuation)
            .collect()
    }
}

/// The text of the next page's cursor, from the last row of this page. A stored key outside
/// the cursor's form is a broken row.
fn next_cursor<C: std::fmt::Display>(
    table: &'static str, last: Option<Result<C, CursorError>>,
) -> StoreResult<Option<String>> {
    last.transpose().map(|c| c.map(|c| c.to_string())).map_err(|e| {
        DependencyError::new(
            table,
            false,
            anyhow::anyhow!("the key of a row of {table} is not of the page cursor's form: {e}"),
        )
    })
}

fn lookup_attr(table: &CascadeTable) -> &'static str {
    match table.lookup {
        Lookup::PartitionKey { attr } | Lookup::Index { attr, .. } => attr,
    }
}

fn item_key_string(table: &CascadeTable, item: &BTreeMap<String, String>) -> String {
    table
        .key
        .iter()
        .map(|k| item.get(*k).cloned().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

fn key_of(table: &CascadeTable, item: &BTreeMap<String, String>) -> ItemKey {
    table
        .key
        .iter()
        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

fn count_items(st: &State, table: &CascadeTable, user_id: &str) -> usize {
    if table.name == "admin_messages" {
        return st.messages.count_of_recipient(user_id);
    }
    let attr = lookup_attr(table);
    st.tables.get(table.name).map_or(0, |t| {
        t.values()
            .filter(|i| i.get(attr).map(String::as_str) == Some(user_id))
            .count()
    })
}

fn table_key(table: &CascadeTable, key: &ItemKey) -> String {
    table
        .key
        .iter()
        .map(|a| key.get(*a).cloned().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

fn item_exists(st: &State, table: &CascadeTable, key: &ItemKey) -> bool {
    if table.name == "admin_messages" {
        return key
            .get("message_id")
            .is_some_and(|id| st.messages.contains_key(id));
    }
    st.tables
        .get(table.name)
        .is_some_and(|t| t.contains_key(&table_key(table, key)))
}

/// Remove one item by key; whether it existed.
fn remove_item(st: &mut State, table: &CascadeTable, key: &ItemKey, now: DateTime<Utc>) -> bool {
    let existed = if table.name == "admin_messages" {
        key.get("message_id")
            .is_some_and(|id| st.messages.remove(id).is_some())
    } else {
        let k = table_key(table, key);
        st.tables
            .get_mut(table.name)
            .is_some_and(|t| t.remove(&k).is_some())
    };
    if existed
        && matches!(table.lookup, Lookup::Index { .. })
        && !st.index_lag.deleted_rows_shown_for.is_zero()
    {
        let until = now + chrono::Duration::from_std(st.index_lag.deleted_rows_shown_for).unwrap_or_default();
        st.ghosts
            .entry(table.name.to_owned())
            .or_default()
            .push((key.clone(), until));
    }
    existed
}

fn lease_live(st: &State, user_id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    st.send_leases
        .get(user_id)
        .filter(|(ids, until)| !ids.is_empty() && *until > now)
        .map(|(_, until)| *until)
}

#[async_trait]
impl Profiles for InMemoryBackend {
    async fn get(&self, user_id: &str) -> StoreResult<Option<Profile>> {
        self.call("profiles", |st| st.profiles.get(user_id).cloned())
            .await
    }

    async fn anonymise(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Anonymised> {
        self.call("profiles", |st| {
            let lease = lease_live(st, user_id, now);
            let Some(p) = st.profiles.get_mut(user_id) else {
                return Anonymised::Missing;
            };
            if p.is_tombstone() {
                return Anonymised::Done;
            }
            if let Some(until) = lease {
                return Anonymised::SendInFlight { until };
            }
            p.email = None;
            p.auth_username = None;
            p.display_name = Profile::TOMBSTONE_NAME.to_owned();
            p.deleted_at = Some(timestamp(now));
            st.send_leases.remove(user_id);
            Anonymised::Done
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<Profile>> {
        self.call("profiles", |st| {
            let needle = query
                .search
                .as_deref()
                .map(str::to_lowercase)
                .filter(|s| !s.is_empty());
            let after = query.cursor.as_ref().map(UserCursor::user_id);
            let mut items: Vec<Profile> = st
                .profiles
                .values()
                .filter(|p| after.is_none_or(|a| p.user_id.as_str() > a))
                .filter(|p| query.include_deleted || !p.is_tombstone())
                .filter(|p| {
                    needle.as_deref().is_none_or(|n| {
                        p.display_name.to_lowercase().contains(n)
                            || p.email.as_deref().is_some_and(|e| e.to_lowercase().contains(n))
                    })
                })
                .take(query.limit + 1)
                .cloned()
                .collect();
            let next = if items.len() > query.limit {
                items.truncate(query.limit);
                let last = items.last().map(|p| UserCursor::after(&p.user_id));
                next_cursor("profiles", last)?
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await?
    }

    async fn revoke_tokens(&self, user_id: &str, after: i64) -> StoreResult<bool> {
        self.call("profiles", |st| match st.profiles.get_mut(user_id) {
            Some(p) => {
                p.tokens_valid_after = Some(p.tokens_valid_after.map_or(after, |t| t.max(after)));
                true
            }
            None => false,
        })
        .await
    }

    async fn active_owners(&self) -> StoreResult<Vec<String>> {
        self.call("profiles", |st| {
            st.profiles
                .values()
                .filter(|p| p.role == "owner" && !p.is_deleted())
                .map(|p| p.user_id.clone())
                .collect()
        })
        .await
    }
}

#[async_trait]
impl AuthDirectory for InMemoryBackend {
    async fn sub_of(&self, username: &str) -> StoreResult<Option<String>> {
        self.call("cognito", |st| st.auth_users.get(username).map(|u| u.sub.clone()))
            .await
    }

    async fn find_by_sub(&self, sub: &str) -> StoreResult<Option<String>> {
        self.call("cognito", |st| {
            st.auth_users
                .iter()
                .find(|(_, u)| u.sub == sub)
                .map(|(name, _)| name.clone())
        })
        .await
    }

    async fn lock_out(&self, username: &str) -> StoreResult<LockedOut> {
        self.call("cognito", |st| match st.auth_users.get_mut(username) {
            Some(u) => {
                u.enabled = false;
                u.signed_out = true;
                LockedOut::Done
            }
            None => LockedOut::NotFound,
        })
        .await
    }

    async fn delete(&self, username: &str) -> StoreResult<()> {
        self.call("cognito", |st| {
            st.auth_users.remove(username);
        })
        .await
    }
}

#[async_trait]
impl DeletionJobs for InMemoryBackend {
    async fn create(&self, job: &DeletionJob) -> StoreResult<Created> {
        self.call("deletion_jobs", |st| {
            if let Some(existing) = st.jobs.get(&job.user_id) {
                return Ok(Created::Exists(existing.clone()));
            }
            if st.profiles.get(&job.actor_id).is_some_and(Profile::is_deleted) {
                return Ok(Created::ActorDeleted);
            }
            let Some(target) = st.profiles.get_mut(&job.user_id) else {
                return Err(DependencyError::new(
                    "deletion_jobs",
                    false,
                    anyhow::anyhow!("the target's profile is gone"),
                ));
            };
            target.deletion_job_id = Some(job.job_id.clone());
            st.jobs.insert(job.user_id.clone(), job.clone());
            Ok(Created::Created)
        })
        .await?
    }

    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>> {
        self.call("deletion_jobs", |st| st.jobs.get(user_id).cloned())
            .await
    }

    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved> {
        self.call("deletion_jobs", |st| match st.jobs.get(&job.user_id) {
            Some(stored) if stored.version + 1 == job.version => {
                st.jobs.insert(job.user_id.clone(), job.clone());
                Saved::Saved
            }
            // A retried save that had applied: the same content is stored already.
            Some(stored) if stored == job => Saved::Saved,
            _ => Saved::Conflict,
        })
        .await
    }

    async fn open(&self, limit: usize) -> StoreResult<Vec<OpenJob>> {
        self.call("deletion_jobs", |st| {
            let mut open: Vec<OpenJob> = st
                .jobs
                .values()
                .filter(|j| j.step != Step::Done)
                .filter_map(|j| {
                    Some(OpenJob {
                        user_id: j.user_id.clone(),
                        job_id: j.job_id.clone(),
                        created_at: j.created_at.clone(),
                        due_at: j.sweep_due_at()?,
                        completed: j.is_completed(),
                    })
                })
                .collect();
            open.sort_by(|a, b| a.due_at.cmp(&b.due_at));
            open.truncate(limit);
            open
        })
        .await
    }
}

#[async_trait]
impl UserData for InMemoryBackend {
    async fn page(
        &self, table: &CascadeTable, user_id: &str, cursor: Option<&ItemKey>, limit: usize,
    ) -> StoreResult<KeysPage> {
        let now = self.now();
        self.call(table.name, |st| {
            let by_index = matches!(table.lookup, Lookup::Index { .. });
            let mut keys: Vec<ItemKey> = if table.name == "admin_messages" {
                st.messages
                    .of_recipient(user_id, None)
                    .map(|m| BTreeMap::from([("message_id".to_owned(), m.message_id.clone())]))
                    .collect()
            } else {
                let attr = lookup_attr(table);
                st.tables
                    .get(table.name)
                    .map(|t| {
                        t.iter()
                            .filter(|(_, i)| i.get(attr).map(String::as_str) == Some(user_id))
                            .filter(|(k, _)| {
                                !by_index
                                    || st
                                        .hidden_until
                                        .get(&(table.name.to_owned(), (*k).clone()))
                                        .is_none_or(|until| now >= *until)
                            })
                            .map(|(_, i)| key_of(table, i))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if by_index {
                if let Some(ghosts) = st.ghosts.get(table.name) {
                    keys.extend(
                        ghosts
                            .iter()
                            .filter(|(_, until)| now < *until)
                            .map(|(k, _)| k.clone()),
                    );
                }
            }
            keys.sort();
            keys.dedup();
            if let Some(c) = cursor {
                keys.retain(|k| k > c);
            }
            let full = keys.len() >= limit;
            keys.truncate(limit);
            // Like DynamoDB: a full page carries a LastEvaluatedKey even when nothing follows.
            let next = if full { keys.last().cloned() } else { None };
            KeysPage { keys, next }
        })
        .await
    }

    async fn delete(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<()> {
        let now = self.now();
        self.call(table.name, |st| {
            for key in keys {
                remove_item(st, table, key, now);
            }
        })
        .await
    }

    async fn existing(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<Vec<ItemKey>> {
        self.call(table.name, |st| {
            let unique: BTreeSet<&ItemKey> = keys.iter().collect();
            unique
                .into_iter()
                .filter(|k| item_exists(st, table, k))
                .cloned()
                .collect()
        })
        .await
    }

    async fn count(&self, table: &CascadeTable, user_id: &str, cap: u64) -> StoreResult<Count> {
        self.call(table.name, |st| {
            let n = count_items(st, table, user_id) as u64;
            Count {
                count: n.min(cap),
                capped: n > cap,
            }
        })
        .await
    }
}

#[async_trait]
impl DeletionQueue for InMemoryBackend {
    async fn enqueue(&self, continuation: &Continuation, delay: Duration) -> StoreResult<()> {
        let visible_at = self.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        self.call("queue", |st| {
            st.next_message += 1;
            let id = st.next_message;
            st.queue.push(QueuedMessage {
                id,
                continuation: continuation.clone(),
                visible_at,
                receives: 0,
            });
        })
        .await
    }
}

#[async_trait]
impl RateLimiter for InMemoryBackend {
    async fn take(
        &self, bucket: &str, limit: u32, window: Duration, now: DateTime<Utc>, use_id: &str,
    ) -> StoreResult<RateDecision> {
        self.call("rate_limits", |st| {
            let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
            let uses = st.rate.entry(bucket.to_owned()).or_default();
            uses.retain(|(at, _)| *at > now - window);
            if uses.iter().any(|(_, id)| id == use_id) {
                return RateDecision::Allowed;
            }
            if uses.len() >= limit as usize {
                let oldest = uses.iter().map(|(at, _)| *at).min().unwrap_or(now);
                let retry = (oldest + window - now).to_std().unwrap_or_default();
                return RateDecision::Limited {
                    retry_after: retry.max(Duration::from_millis(1)),
                };
            }
            uses.push((now, use_id.to_owned()));
            RateDecision::Allowed
        })
        .await
    }
}

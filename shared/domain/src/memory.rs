//! In-memory adapters for every port: used by unit and handler tests, and by the local dev
//! server. One backend holds every table so that cross-table transactions (reserve a message
//! and lease the recipient) are atomic here too. A fault plan makes any store call fail, for
//! crash-injection tests.

use crate::cascade::{CascadeTable, Lookup};
use crate::cursor::{CursorError, MessageCursor, UserCursor};
use crate::deletion::{Deletion, DeletionSettings};
use crate::job::DeletionJob;
use crate::messaging::{Messaging, MessagingSettings};
use crate::model::*;
use crate::ports::*;
use crate::users::Directory;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the in-memory mailer answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MailBehaviour {
    #[default]
    Accept,
    Reject,
    Throttle,
    Unavailable,
    /// The mail goes out, but the answer is lost (a timeout after the provider accepted it).
    Unconfirmed,
}

/// A Cognito user as the in-memory directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub enabled: bool,
    pub signed_out: bool,
}

/// Everything stored, readable by tests.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub profiles: BTreeMap<String, Profile>,
    /// Sends in flight per recipient and the latest lease expiry.
    pub send_leases: HashMap<String, (u32, DateTime<Utc>)>,
    pub messages: BTreeMap<String, AdminMessage>,
    pub security_logs: BTreeMap<String, SecurityEvent>,
    pub jobs: BTreeMap<String, DeletionJob>,
    /// Generic user-data tables (transactions, sessions, ...): table name → items by key.
    pub tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    pub idempotency: HashMap<String, (IdempotencyRecord, DateTime<Utc>)>,
    pub auth_users: BTreeMap<String, AuthUser>,
    pub sent_mail: Vec<SentMail>,
    pub queue: Vec<(String, String)>,
    pub rate: HashMap<String, (i64, u32)>,
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
#[derive(Default)]
pub struct InMemoryBackend {
    state: Mutex<State>,
    store_calls: AtomicU64,
    fail_at: AtomicU64,
    mail: Mutex<MailBehaviour>,
    mail_hook: Mutex<Option<MailHook>>,
}

impl InMemoryBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> State {
        self.state().clone()
    }

    /// Make the `k`-th store call from now (1-based) fail with a retryable error; 0 = never.
    pub fn fail_at(&self, k: u64) {
        self.store_calls.store(0, Ordering::SeqCst);
        self.fail_at.store(k, Ordering::SeqCst);
    }

    /// Store calls made since the last [`fail_at`](Self::fail_at).
    pub fn store_calls(&self) -> u64 {
        self.store_calls.load(Ordering::SeqCst)
    }

    pub fn set_mail_behaviour(&self, b: MailBehaviour) {
        *self.mail.lock().unwrap_or_else(|e| e.into_inner()) = b;
    }

    /// Called with every mail the in-memory mailer accepts (the dev server writes `.eml` files).
    pub fn on_mail(&self, hook: MailHook) {
        *self.mail_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    fn io(&self, what: &'static str) -> StoreResult<()> {
        let n = self.store_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(DependencyError::new(
                what,
                true,
                anyhow::anyhow!("injected failure at store call {n}"),
            ));
        }
        Ok(())
    }

    pub fn put_profile(&self, p: Profile) {
        self.state().profiles.insert(p.user_id.clone(), p);
    }

    pub fn put_auth_user(&self, username: &str) {
        self.state().auth_users.insert(
            username.to_owned(),
            AuthUser {
                enabled: true,
                signed_out: false,
            },
        );
    }

    /// Insert an item into a generic user-data table (all attributes are strings).
    pub fn put_item(&self, table: &CascadeTable, item: BTreeMap<String, String>) {
        let key = item_key_string(table, &item);
        self.state()
            .tables
            .entry(table.name.to_owned())
            .or_default()
            .insert(key, item);
    }

    /// Items of a user in any table of the plan.
    pub fn count_user_items(&self, table: &CascadeTable, user_id: &str) -> usize {
        let st = self.state();
        if table.name == "admin_messages" {
            return st.messages.values().filter(|m| m.recipient_id == user_id).count();
        }
        let attr = lookup_attr(table);
        st.tables.get(table.name).map_or(0, |t| {
            t.values()
                .filter(|i| i.get(attr).map(String::as_str) == Some(user_id))
                .count()
        })
    }

    pub fn messaging(self: &Arc<Self>, settings: MessagingSettings) -> Messaging {
        Messaging {
            profiles: self.clone(),
            outbox: self.clone(),
            log: self.clone(),
            mailer: self.clone(),
            idempotency: self.clone(),
            limiter: self.clone(),
            clock: Arc::new(SystemClock),
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
            clock: Arc::new(SystemClock),
            settings,
        }
    }

    pub fn delivery(self: &Arc<Self>) -> crate::delivery::Delivery {
        crate::delivery::Delivery {
            log: self.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn directory(self: &Arc<Self>) -> Directory {
        Directory {
            profiles: self.clone(),
            log: self.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Take the queued deletion continuations (the dev server's in-process worker).
    pub fn drain_queue(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state().queue)
    }
}

/// The text of the next page's cursor, from the last row of this page. A stored key outside
/// the cursor's form is a broken row.
fn next_cursor<C: std::fmt::Display>(
    table: &'static str,
    last: Option<Result<C, CursorError>>,
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

#[async_trait]
impl Profiles for InMemoryBackend {
    async fn get(&self, user_id: &str) -> StoreResult<Option<Profile>> {
        self.io("profiles")?;
        Ok(self.state().profiles.get(user_id).cloned())
    }

    async fn anonymise(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Anonymised> {
        self.io("profiles")?;
        let mut st = self.state();
        let lease = st.send_leases.get(user_id).copied();
        let Some(p) = st.profiles.get_mut(user_id) else {
            return Ok(Anonymised::Missing);
        };
        if p.is_tombstone() {
            return Ok(Anonymised::Done);
        }
        if let Some((_, until)) = lease.filter(|(n, u)| *n > 0 && *u > now) {
            return Ok(Anonymised::SendInFlight { until });
        }
        p.email = None;
        p.auth_username = None;
        p.display_name = Profile::TOMBSTONE_NAME.to_owned();
        p.deleted_at = Some(timestamp(now));
        Ok(Anonymised::Done)
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<Profile>> {
        self.io("profiles")?;
        let st = self.state();
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
    }
}

#[async_trait]
impl MessageOutbox for InMemoryBackend {
    async fn reserve(&self, message: &AdminMessage, lease_until: DateTime<Utc>) -> StoreResult<Reserved> {
        self.io("admin_messages")?;
        let mut st = self.state();
        if let Some(existing) = st.messages.get(&message.message_id) {
            return Ok(Reserved::Exists(existing.clone()));
        }
        let ok = st
            .profiles
            .get(&message.recipient_id)
            .is_some_and(|p| p.email.is_some() && !p.is_tombstone());
        if !ok {
            return Ok(Reserved::RecipientGone);
        }
        let lease = st
            .send_leases
            .entry(message.recipient_id.clone())
            .or_insert((0, lease_until));
        lease.0 += 1;
        lease.1 = lease.1.max(lease_until);
        st.messages.insert(message.message_id.clone(), message.clone());
        Ok(Reserved::Reserved)
    }

    async fn mark_sent(
        &self,
        message_id: &str,
        ses_message_id: &str,
        at: &str,
        event: &SecurityEvent,
    ) -> StoreResult<()> {
        self.io("admin_messages")?;
        let mut st = self.state();
        if let Some(m) = st.messages.get_mut(message_id) {
            m.status = MessageStatus::Sent;
            m.ses_message_id = Some(ses_message_id.to_owned());
            m.sent_at = Some(at.to_owned());
            m.updated_at = Some(at.to_owned());
        }
        st.security_logs
            .entry(event.event_id.clone())
            .or_insert_with(|| event.clone());
        Ok(())
    }

    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()> {
        self.io("admin_messages")?;
        let mut st = self.state();
        if let Some(m) = st.messages.get_mut(message_id) {
            m.status = MessageStatus::Failed;
            m.error_code = Some(error_code.to_owned());
            m.updated_at = Some(at.to_owned());
        }
        Ok(())
    }

    async fn release(&self, recipient_id: &str) -> StoreResult<()> {
        self.io("profiles")?;
        if let Some(lease) = self.state().send_leases.get_mut(recipient_id) {
            lease.0 = lease.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>> {
        self.io("admin_messages")?;
        Ok(self.state().messages.get(message_id).cloned())
    }

    async fn history(
        &self,
        recipient_id: &str,
        limit: usize,
        cursor: Option<&MessageCursor>,
    ) -> StoreResult<Page<AdminMessage>> {
        self.io("admin_messages")?;
        let st = self.state();
        let mut all: Vec<&AdminMessage> = st
            .messages
            .values()
            .filter(|m| m.recipient_id == recipient_id)
            .collect();
        all.sort_by(|a, b| (&b.created_at, &b.message_id).cmp(&(&a.created_at, &a.message_id)));
        // Newest first: a page continues with what sorts strictly after the cursor's message.
        let start = cursor.map_or(0, |c| {
            all.partition_point(|m| {
                (m.created_at.as_str(), m.message_id.as_str()) >= (c.created_at(), c.message_id())
            })
        });
        let items: Vec<AdminMessage> = all.iter().skip(start).take(limit).map(|m| (*m).clone()).collect();
        let next = if start + items.len() < all.len() {
            let last = items
                .last()
                .map(|m| MessageCursor::after(&m.created_at, &m.message_id));
            next_cursor("admin_messages", last)?
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl SecurityLog for InMemoryBackend {
    async fn append(&self, event: &SecurityEvent) -> StoreResult<Appended> {
        self.io("security_logs")?;
        let mut st = self.state();
        if st.security_logs.contains_key(&event.event_id) {
            return Ok(Appended::AlreadyRecorded);
        }
        st.security_logs.insert(event.event_id.clone(), event.clone());
        Ok(Appended::New)
    }
}

#[async_trait]
impl Mailer for InMemoryBackend {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let behaviour = self.mail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match behaviour {
            MailBehaviour::Accept | MailBehaviour::Unconfirmed => {}
            MailBehaviour::Reject => {
                return Err(MailError::Rejected {
                    code: "MessageRejected".into(),
                })
            }
            MailBehaviour::Throttle => {
                return Err(MailError::Throttled {
                    code: "TooManyRequestsException".into(),
                    retry_after: Some(Duration::from_secs(1)),
                })
            }
            MailBehaviour::Unavailable => {
                return Err(MailError::Unavailable {
                    code: "ServiceUnavailable".into(),
                    source: anyhow::anyhow!("injected outage"),
                })
            }
        }
        let provider_id = format!("mem-{}", uuid::Uuid::new_v4());
        let unconfirmed = behaviour == MailBehaviour::Unconfirmed;
        self.state().sent_mail.push(SentMail {
            provider_id: provider_id.clone(),
            message_id: email.message_id.clone(),
            to: email.to.as_str().to_owned(),
            from: email.from.clone(),
            reply_to: email.reply_to.clone(),
            subject: email.subject.as_str().to_owned(),
            body: email.body.as_str().to_owned(),
        });
        let hook = self.mail_hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(email);
        }
        if unconfirmed {
            return Err(MailError::Unconfirmed {
                code: "Timeout".into(),
                source: anyhow::anyhow!("injected lost answer"),
            });
        }
        Ok(provider_id)
    }
}

#[async_trait]
impl AuthDirectory for InMemoryBackend {
    async fn lock_out(&self, username: &str) -> StoreResult<()> {
        self.io("cognito")?;
        if let Some(u) = self.state().auth_users.get_mut(username) {
            u.enabled = false;
            u.signed_out = true;
        }
        Ok(())
    }

    async fn delete(&self, username: &str) -> StoreResult<()> {
        self.io("cognito")?;
        self.state().auth_users.remove(username);
        Ok(())
    }
}

#[async_trait]
impl DeletionJobs for InMemoryBackend {
    async fn create(&self, job: &DeletionJob) -> StoreResult<Created> {
        self.io("deletion_jobs")?;
        let mut st = self.state();
        if let Some(existing) = st.jobs.get(&job.user_id) {
            return Ok(Created::Exists(existing.clone()));
        }
        st.jobs.insert(job.user_id.clone(), job.clone());
        Ok(Created::Created)
    }

    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>> {
        self.io("deletion_jobs")?;
        Ok(self.state().jobs.get(user_id).cloned())
    }

    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved> {
        self.io("deletion_jobs")?;
        let mut st = self.state();
        match st.jobs.get(&job.user_id) {
            Some(stored) if stored.version + 1 == job.version => {
                st.jobs.insert(job.user_id.clone(), job.clone());
                Ok(Saved::Saved)
            }
            _ => Ok(Saved::Conflict),
        }
    }
}

#[async_trait]
impl UserData for InMemoryBackend {
    async fn page(
        &self,
        table: &CascadeTable,
        user_id: &str,
        cursor: Option<&ItemKey>,
        limit: usize,
    ) -> StoreResult<KeysPage> {
        self.io(table.name)?;
        let st = self.state();
        let mut keys: Vec<ItemKey> = if table.name == "admin_messages" {
            st.messages
                .values()
                .filter(|m| m.recipient_id == user_id)
                .map(|m| BTreeMap::from([("message_id".to_owned(), m.message_id.clone())]))
                .collect()
        } else {
            let attr = lookup_attr(table);
            st.tables
                .get(table.name)
                .map(|t| {
                    t.values()
                        .filter(|i| i.get(attr).map(String::as_str) == Some(user_id))
                        .map(|i| key_of(table, i))
                        .collect()
                })
                .unwrap_or_default()
        };
        keys.sort();
        if let Some(c) = cursor {
            keys.retain(|k| k > c);
        }
        let full = keys.len() >= limit;
        keys.truncate(limit);
        // Like DynamoDB: a full page carries a LastEvaluatedKey even when nothing follows.
        let next = if full { keys.last().cloned() } else { None };
        Ok(KeysPage { keys, next })
    }

    async fn delete(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<()> {
        self.io(table.name)?;
        let mut st = self.state();
        for key in keys {
            if table.name == "admin_messages" {
                if let Some(id) = key.get("message_id") {
                    st.messages.remove(id);
                }
            } else if let Some(t) = st.tables.get_mut(table.name) {
                let k = table
                    .key
                    .iter()
                    .map(|a| key.get(*a).cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\u{1f}");
                t.remove(&k);
            }
        }
        Ok(())
    }

    async fn count(&self, table: &CascadeTable, user_id: &str, cap: u64) -> StoreResult<Count> {
        self.io(table.name)?;
        let n = self.count_user_items(table, user_id) as u64;
        Ok(Count {
            count: n.min(cap),
            capped: n > cap,
        })
    }
}

#[async_trait]
impl Idempotency for InMemoryBackend {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        message_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Claim> {
        self.io("idempotency")?;
        let mut st = self.state();
        let id = format!("{scope}#{key}");
        let mut message_id = message_id.to_owned();
        if let Some((record, expires)) = st.idempotency.get(&id) {
            if *expires > now {
                match record {
                    IdempotencyRecord::InFlight {
                        lease_until: l,
                        message_id: m,
                        fingerprint: f,
                    } if *l <= now && f == fingerprint => {
                        message_id = m.clone();
                    }
                    other => return Ok(Claim::Taken(other.clone())),
                }
            }
        }
        st.idempotency.insert(
            id,
            (
                IdempotencyRecord::InFlight {
                    fingerprint: fingerprint.to_owned(),
                    message_id: message_id.clone(),
                    lease_until,
                },
                expires_at,
            ),
        );
        Ok(Claim::Claimed { message_id })
    }

    async fn complete(&self, scope: &str, key: &str, status: u16, response: &str) -> StoreResult<()> {
        self.io("idempotency")?;
        let mut st = self.state();
        if let Some((record, _)) = st.idempotency.get_mut(&format!("{scope}#{key}")) {
            if let IdempotencyRecord::InFlight { fingerprint, .. } = record {
                *record = IdempotencyRecord::Done {
                    fingerprint: fingerprint.clone(),
                    status,
                    response: response.to_owned(),
                };
            }
        }
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> StoreResult<()> {
        self.io("idempotency")?;
        let mut st = self.state();
        let id = format!("{scope}#{key}");
        if matches!(
            st.idempotency.get(&id),
            Some((IdempotencyRecord::InFlight { .. }, _))
        ) {
            st.idempotency.remove(&id);
        }
        Ok(())
    }

    async fn get(
        &self,
        scope: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        self.io("idempotency")?;
        Ok(self
            .state()
            .idempotency
            .get(&format!("{scope}#{key}"))
            .filter(|(_, exp)| *exp > now)
            .map(|(r, _)| r.clone()))
    }
}

#[async_trait]
impl DeliveryLog for InMemoryBackend {
    async fn record_delivery(
        &self,
        ses_message_id: &str,
        update: DeliveryUpdate,
        at: &str,
    ) -> StoreResult<Recorded> {
        self.io("admin_messages")?;
        let mut st = self.state();
        let Some(m) = st
            .messages
            .values_mut()
            .find(|m| m.ses_message_id.as_deref() == Some(ses_message_id))
        else {
            return Ok(Recorded::UnknownMessage);
        };
        if !update.applies_to(m.status) {
            return Ok(Recorded::Unchanged);
        }
        m.status = update.status();
        m.updated_at = Some(at.to_owned());
        Ok(Recorded::Updated)
    }
}

#[async_trait]
impl DeletionQueue for InMemoryBackend {
    async fn enqueue(&self, user_id: &str, job_id: &str) -> StoreResult<()> {
        self.io("queue")?;
        self.state().queue.push((user_id.to_owned(), job_id.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for InMemoryBackend {
    async fn take(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        self.io("rate_limits")?;
        let w = window.as_secs().max(1) as i64;
        let slot = now.timestamp() / w;
        let mut st = self.state();
        let entry = st.rate.entry(bucket.to_owned()).or_insert((slot, 0));
        if entry.0 != slot {
            *entry = (slot, 0);
        }
        if entry.1 >= limit {
            let retry = (slot + 1) * w - now.timestamp();
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_secs(retry.max(1) as u64),
            });
        }
        entry.1 += 1;
        Ok(RateDecision::Allowed)
    }
}

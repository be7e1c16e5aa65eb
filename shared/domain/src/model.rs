//! Records as the use cases see them. Stored shapes live in the adapters.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// RFC 3339 UTC with milliseconds: sorts as text in DynamoDB sort keys.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A row of `profiles`. Email and role are kept as stored; the use cases parse them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub display_name: String,
    pub role: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The Cognito username when it differs from `user_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    /// Set, in the same transaction, when a deletion job for this user is created: from then
    /// on every route treats the user as deleted, before the tombstone exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_job_id: Option<String>,
    /// Epoch seconds: a token issued before this speaks for nobody (set when Cognito signs
    /// the user out or disables them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after: Option<i64>,
}

impl Profile {
    pub const TOMBSTONE_NAME: &'static str = "Deleted User";

    /// A live profile: not deleted, no deletion under way, no revoked tokens, its Cognito
    /// username its `user_id`.
    pub fn active(
        user_id: &str, role: &str, email: Option<&str>, display_name: &str, created_at: &str,
    ) -> Profile {
        Profile {
            user_id: user_id.to_owned(),
            email: email.map(str::to_owned),
            display_name: display_name.to_owned(),
            role: role.to_owned(),
            created_at: created_at.to_owned(),
            deleted_at: None,
            auth_username: None,
            deletion_job_id: None,
            tokens_valid_after: None,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// A deletion job exists for this user (running or done), or the profile is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.is_tombstone() || self.deletion_job_id.is_some()
    }

    pub fn cognito_username(&self) -> &str {
        self.auth_username.as_deref().unwrap_or(&self.user_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Written before the send; stays so while SES's answer is unknown.
    Pending,
    /// Still pending 15 minutes after it was written (a sweep): SES may or may not have sent
    /// it. A later SES event still moves it on.
    Unconfirmed,
    Sent,
    Failed,
    Delivered,
    Bounced,
    Complained,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Pending,
        MessageStatus::Unconfirmed,
        MessageStatus::Sent,
        MessageStatus::Failed,
        MessageStatus::Delivered,
        MessageStatus::Bounced,
        MessageStatus::Complained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Unconfirmed => "unconfirmed",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Complained => "complained",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        Some(match s {
            "pending" => MessageStatus::Pending,
            "unconfirmed" => MessageStatus::Unconfirmed,
            "sent" => MessageStatus::Sent,
            "failed" => MessageStatus::Failed,
            "delivered" => MessageStatus::Delivered,
            "bounced" => MessageStatus::Bounced,
            "complained" => MessageStatus::Complained,
            _ => return None,
        })
    }
}

/// The error code of a message row the sweep found pending and never handed to SES.
pub const NOT_SENT: &str = "NotSent";

/// A row of `admin_messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMessage {
    pub message_id: String,
    pub sender_id: String,
    pub recipient_id: String,
    pub subject: String,
    pub body: String,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
    /// The provider's error code when `status` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Set, before SES is called, by the one attempt that may call it (its id): a row with an
    /// attempt is never sent again, whatever answer SES gave or did not give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
}

/// `security_logs.event_type`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    AdminSentUserMessage,
    AdminDeletedUser,
    AdminDeletionCompleted,
    AdminActionDenied,
    /// An admin asked whether an address was erased (`GET /admin/erasures`); the row keeps the
    /// address's hash only.
    AdminLookedUpErasure,
}

impl EventType {
    /// Every event type, in the order the contract lists them.
    pub const ALL: [EventType; 5] = [
        EventType::AdminSentUserMessage,
        EventType::AdminDeletedUser,
        EventType::AdminDeletionCompleted,
        EventType::AdminActionDenied,
        EventType::AdminLookedUpErasure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AdminSentUserMessage => "admin_sent_user_message",
            EventType::AdminDeletedUser => "admin_deleted_user",
            EventType::AdminDeletionCompleted => "admin_deletion_completed",
            EventType::AdminActionDenied => "admin_action_denied",
            EventType::AdminLookedUpErasure => "admin_looked_up_erasure",
        }
    }

    /// The exact stored spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Who asked, from where. Ids only: nothing here is personal data beyond the source IP and
/// user agent that the audit trail is meant to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMeta {
    /// The raw `sub` claim, when there is one (and the token is an access token of this app).
    pub caller: Option<String>,
    /// The token's `iat` claim (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_issued_at: Option<i64>,
    pub request_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A row of `security_logs`. Append-only; never holds an email address, subject or body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Deterministic where an event must be written exactly once (for example
    /// `<job_id>#deleted`), random otherwise.
    pub event_id: String,
    pub event_type: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    pub target_id: String,
    pub created_at: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Event-specific string fields: `message_id`; `target_role`, `target_email_sha256`,
    /// `job_id`; `action`, `reason`; `deleted` (JSON counts) for completions.
    pub fields: BTreeMap<String, String>,
    /// Epoch seconds after which the row may go (refusals); `None`: kept for ever (deletions,
    /// messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl SecurityEvent {
    pub fn new(
        event_id: String, event_type: EventType, target_id: &str, meta: &RequestMeta, at: &str,
    ) -> Self {
        SecurityEvent {
            event_id,
            event_type,
            actor_id: meta.caller.clone(),
            target_id: target_id.to_owned(),
            created_at: at.to_owned(),
            request_id: meta.request_id.clone(),
            source_ip: meta.source_ip.clone(),
            user_agent: meta.user_agent.clone(),
            fields: BTreeMap::new(),
            expires_at: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }
}

/// A page of results with an opaque cursor for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The key of one item, or a `LastEvaluatedKey`: attribute name → string value
/// (every key attribute in this product is a string).
pub type ItemKey = BTreeMap<String, String>;

/// A std duration as a chrono one; one too long for chrono (never, for this product's
/// settings) saturates instead of failing.
pub fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

//! The IAM each function needs: every call of its adapters (`shared/aws-adapters/src/**`),
//! with the attributes each write names (key, written and conditioned attributes), what it asks
//! back, and the partition keys it touches. The template must grant exactly this: the checks in
//! `grants.rs` compare the two both ways.
//!
//! Where the code itself says what a row holds (the job row, the message row, the audit
//! events), `rows.rs` checks these lists against it.

use super::cfn::{table_arn, Template};
use super::iam::Pattern;
use domain::cascade::{Lookup, CASCADE_PLAN};
use std::collections::BTreeSet;

/// The functions (cargo bins) and what each one is granted.
pub const FUNCTIONS: &[&str] = &[
    "message-user",
    "delete-user",
    "deletion-worker",
    "list-users",
    "audit-log",
    "delivery-events",
    "sweeper",
    "token-revocation",
];

/// Where a grant applies.
#[derive(Debug, Clone)]
pub enum On {
    /// A table, by its environment variable.
    Table(&'static str),
    /// An index of a table.
    Index(&'static str, &'static str),
    /// Anything else, as the checks render it (`getatt-<Resource>-Arn`, ARNs with
    /// `param-<Parameter>` / `ref-<Resource>`).
    Arn(&'static str),
}

/// One grant: an action on a resource, and the limits its conditions must put on it
/// (`None` = not limited).
#[derive(Debug, Clone)]
pub struct Grant {
    pub action: &'static str,
    pub on: On,
    pub attributes: Option<Vec<String>>,
    pub return_values: Option<Vec<&'static str>>,
    pub leading_keys: Option<Vec<&'static str>>,
}

fn grant(action: &'static str, on: On) -> Grant {
    Grant {
        action,
        on,
        attributes: None,
        return_values: None,
        leading_keys: None,
    }
}

impl Grant {
    fn attrs(mut self, attributes: &[&str]) -> Self {
        self.attributes = Some(attributes.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    fn returns(mut self, values: &[&'static str]) -> Self {
        self.return_values = Some(values.to_vec());
        self
    }

    fn leading(mut self, patterns: &[&'static str]) -> Self {
        self.leading_keys = Some(patterns.to_vec());
        self
    }

    /// The rendered resource ARN.
    pub fn resource(&self, t: &Template) -> String {
        let table = |env: &str| {
            t.table_env_var(env)
                .unwrap_or_else(|| panic!("no table for {env}"))
                .physical_name
        };
        match &self.on {
            On::Table(env) => table_arn(&table(env)),
            On::Index(env, index) => format!("{}/index/{index}", table_arn(&table(env))),
            On::Arn(arn) => (*arn).to_owned(),
        }
    }

    pub fn attribute_patterns(&self) -> Option<BTreeSet<Pattern>> {
        self.attributes
            .as_ref()
            .map(|a| a.iter().map(|x| (x.clone(), false)).collect())
    }

    pub fn return_value_patterns(&self) -> Option<BTreeSet<Pattern>> {
        self.return_values
            .as_ref()
            .map(|a| a.iter().map(|x| ((*x).to_owned(), false)).collect())
    }

    pub fn leading_key_patterns(&self) -> Option<BTreeSet<Pattern>> {
        self.leading_keys
            .as_ref()
            .map(|a| a.iter().map(|x| ((*x).to_owned(), true)).collect())
    }
}

/// The attributes of every `security_logs` row (`shared/aws-adapters/src/dynamo/mod.rs`
/// `event_item`); the event-specific ones come on top, per function.
pub const EVENT_COMMON: &[&str] = &[
    "event_id",
    "event_type",
    "actor_id",
    "target_id",
    "created_at",
    "request_id",
    "source_ip",
    "user_agent",
    "expires_at",
];

/// The counter of a caller's refusals in a minute, on the minute's first refusal row
/// (`security_log.rs` `count_refusal`): the refusal's own attributes (set if absent) and the
/// counters.
pub const REFUSAL_COUNTER: &[&str] = &["request_ids", "refusals_over"];

/// `admin_action_denied` (`shared/domain/src/access.rs`), which every HTTP function can write.
pub const DENIAL_FIELDS: &[&str] = &["action", "reason"];

/// The fields of the events each function writes on top of [`EVENT_COMMON`].
pub fn event_fields(bin: &str) -> Vec<&'static str> {
    match bin {
        "message-user" => vec!["message_id", "action", "reason"],
        "delete-user" | "deletion-worker" => {
            vec![
                "target_role",
                "target_email_sha256",
                "job_id",
                "deleted",
                "action",
                "reason",
            ]
        }
        "list-users" => DENIAL_FIELDS.to_vec(),
        "audit-log" => vec!["email_sha256", "found", "action", "reason"],
        _ => vec![],
    }
}

fn event_attributes(bin: &str) -> Vec<&'static str> {
    EVENT_COMMON.iter().copied().chain(event_fields(bin)).collect()
}

/// `count_refusal`: UpdateItem of the first refusal row of a caller and minute only
/// (`refusals#<caller>#<minute>`), in the refusal's attributes and the counters.
fn refusal_counter() -> Grant {
    grant("dynamodb:UpdateItem", On::Table("SECURITY_LOGS_TABLE"))
        .leading(&["refusals#*"])
        .attrs(
            &EVENT_COMMON
                .iter()
                .chain(DENIAL_FIELDS)
                .chain(REFUSAL_COUNTER)
                .copied()
                .collect::<Vec<_>>(),
        )
        .returns(&["ALL_NEW"])
}

/// The whole `admin_messages` row (`outbox.rs` `message_item`).
pub const MESSAGE_ROW: &[&str] = &[
    "message_id",
    "sender_id",
    "recipient_id",
    "subject",
    "body",
    "status",
    "created_at",
    "pending_queue",
    "ses_message_id",
    "error_code",
    "sent_at",
    "updated_at",
    "attempt",
];

/// The whole `deletion_jobs` row (`deletion_jobs.rs` `job_item`): the job's fields and the
/// derived ones.
pub const JOB_ROW: &[&str] = &[
    "user_id",
    "job_id",
    "step",
    "actor_id",
    "target_role",
    "target_email_sha256",
    "auth_username",
    "created_at",
    "updated_at",
    "locked_out_at",
    "completed_at",
    "late_pass_due_at",
    "late_pass_done_at",
    "request_id",
    "source_ip",
    "user_agent",
    "progress",
    "late_progress",
    "version",
    "lease",
    "status",
    "deleted",
    "late",
    "open_state",
    "due_at",
    "save_token",
];

/// The attributes written by `job_item` that are not fields of the job.
pub const JOB_DERIVED: &[&str] = &["status", "deleted", "late", "open_state", "due_at", "save_token"];

/// A rate-limit window row (`idempotency.rs` `DynamoRateLimiter::take`).
const RATE_ROW: &[&str] = &["pk", "uses", "version", "expires_at"];

const QUEUE: &str = "getatt-DeletionQueue-Arn";
const USER_POOL: &str = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/param-CognitoUserPoolId";
const SES_IDENTITY: &str = "arn:aws:ses:us-east-1:123456789012:identity/param-SesIdentityName";
const SES_CONFIGURATION_SET: &str =
    "arn:aws:ses:us-east-1:123456789012:configuration-set/ref-MessageConfigurationSet";

fn message_user() -> Vec<Grant> {
    use On::*;
    vec![
        // DynamoProfiles::get (caller and target).
        grant("dynamodb:GetItem", Table("PROFILES_TABLE")),
        // reserve: SET send_lease_until ADD send_leases, on condition of email, deleted_at,
        // deletion_job_id (in TransactWriteItems); release: DELETE send_leases.
        grant("dynamodb:UpdateItem", Table("PROFILES_TABLE"))
            .attrs(&[
                "user_id",
                "send_lease_until",
                "send_leases",
                "email",
                "deleted_at",
                "deletion_job_id",
            ])
            .returns(&["NONE"]),
        // raw_get; history.
        grant("dynamodb:GetItem", Table("ADMIN_MESSAGES_TABLE")),
        grant("dynamodb:Query", Index("ADMIN_MESSAGES_TABLE", "by_recipient")),
        // reserve: the Put of the whole row, ALL_OLD on a failed condition.
        grant("dynamodb:PutItem", Table("ADMIN_MESSAGES_TABLE"))
            .attrs(MESSAGE_ROW)
            .returns(&["NONE", "ALL_OLD"]),
        // begin_attempt (ALL_OLD on a failed condition), mark_sent (both updates), mark_failed.
        grant("dynamodb:UpdateItem", Table("ADMIN_MESSAGES_TABLE"))
            .attrs(&[
                "message_id",
                "status",
                "attempt",
                "ses_message_id",
                "sent_at",
                "updated_at",
                "error_code",
                "pending_queue",
            ])
            .returns(&["NONE", "ALL_OLD"]),
        // admin_sent_user_message (in begin_attempt's transaction), admin_action_denied.
        grant("dynamodb:PutItem", Table("SECURITY_LOGS_TABLE"))
            .attrs(&event_attributes("message-user"))
            .returns(&["NONE"]),
        refusal_counter(),
        // DynamoIdempotency: read, claim / take over (ALL_NEW; ALL_OLD on a failed condition) /
        // complete, release.
        grant("dynamodb:GetItem", Table("IDEMPOTENCY_TABLE")).leading(&["idem#*"]),
        grant("dynamodb:UpdateItem", Table("IDEMPOTENCY_TABLE"))
            .leading(&["idem#*"])
            .attrs(&[
                "pk",
                "state",
                "fingerprint",
                "message_id",
                "lease_until",
                "expires_at",
                "owner",
                "status",
                "response",
            ])
            .returns(&["NONE", "ALL_NEW", "ALL_OLD"]),
        grant("dynamodb:DeleteItem", Table("IDEMPOTENCY_TABLE"))
            .leading(&["idem#*"])
            .attrs(&["pk", "state", "owner"])
            .returns(&["NONE"]),
        // DynamoRateLimiter (`rate#messages#<admin>`), while MessagesPerMinute > 0.
        grant("dynamodb:GetItem", Table("IDEMPOTENCY_TABLE")).leading(&["rate#messages#*"]),
        grant("dynamodb:PutItem", Table("IDEMPOTENCY_TABLE"))
            .leading(&["rate#messages#*"])
            .attrs(RATE_ROW)
            .returns(&["NONE"]),
        grant("ses:SendEmail", Arn(SES_IDENTITY)),
        grant("ses:SendEmail", Arn(SES_CONFIGURATION_SET)),
        // SesSuppressionList::check (the action has no resource-level permissions).
        grant("ses:GetSuppressedDestination", Arn("*")),
    ]
}

fn deletion() -> Vec<Grant> {
    use On::*;
    let mut grants = vec![
        grant("dynamodb:GetItem", Table("PROFILES_TABLE")),
        // active_owners.
        grant("dynamodb:Query", Index("PROFILES_TABLE", "by_role")),
        // create (SET deletion_job_id, in the job's transaction); anonymise (ALL_OLD on a
        // failed condition).
        grant("dynamodb:UpdateItem", Table("PROFILES_TABLE"))
            .attrs(&[
                "user_id",
                "display_name",
                "deleted_at",
                "email",
                "auth_username",
                "send_leases",
                "send_lease_until",
                "deletion_job_id",
            ])
            .returns(&["NONE", "ALL_OLD"]),
        // create: the actor is not being deleted.
        grant("dynamodb:ConditionCheckItem", Table("PROFILES_TABLE"))
            .attrs(&["user_id", "deletion_job_id", "deleted_at"])
            .returns(&["NONE"]),
        grant("dynamodb:GetItem", Table("DELETION_JOBS_TABLE")),
        // create (ALL_OLD when the job exists) and save.
        grant("dynamodb:PutItem", Table("DELETION_JOBS_TABLE"))
            .attrs(JOB_ROW)
            .returns(&["NONE", "ALL_OLD"]),
        grant("dynamodb:PutItem", Table("SECURITY_LOGS_TABLE"))
            .attrs(&event_attributes("delete-user"))
            .returns(&["NONE"]),
        refusal_counter(),
        // DynamoRateLimiter (`rate#deletions#<admin>`), while DeletionsPerHour > 0.
        grant("dynamodb:GetItem", Table("IDEMPOTENCY_TABLE")).leading(&["rate#deletions#*"]),
        grant("dynamodb:PutItem", Table("IDEMPOTENCY_TABLE"))
            .leading(&["rate#deletions#*"])
            .attrs(RATE_ROW)
            .returns(&["NONE"]),
        // find_by_sub, lock_out, delete.
        grant("cognito-idp:ListUsers", Arn(USER_POOL)),
        grant("cognito-idp:AdminDisableUser", Arn(USER_POOL)),
        grant("cognito-idp:AdminUserGlobalSignOut", Arn(USER_POOL)),
        grant("cognito-idp:AdminDeleteUser", Arn(USER_POOL)),
        grant("sqs:SendMessage", Arn(QUEUE)),
    ];
    // DynamoUserData, from the plan: page / count where the plan looks; existing on the table
    // of an index lookup (keys only); delete (delete requests name the key only).
    for table in CASCADE_PLAN {
        let lookup = match table.lookup {
            Lookup::PartitionKey { .. } => Table(table.env_var),
            Lookup::Index { index, .. } => Index(table.env_var, index),
        };
        grants.push(grant("dynamodb:Query", lookup));
        if matches!(table.lookup, Lookup::Index { .. }) {
            grants.push(grant("dynamodb:BatchGetItem", Table(table.env_var)).attrs(table.key));
        }
        grants.push(grant("dynamodb:BatchWriteItem", Table(table.env_var)).attrs(table.key));
    }
    grants
}

fn list_users() -> Vec<Grant> {
    use On::*;
    vec![
        grant("dynamodb:GetItem", Table("PROFILES_TABLE")),
        grant("dynamodb:Scan", Table("PROFILES_TABLE")),
        grant("dynamodb:PutItem", Table("SECURITY_LOGS_TABLE"))
            .attrs(&event_attributes("list-users"))
            .returns(&["NONE"]),
        refusal_counter(),
    ]
}

fn audit_log() -> Vec<Grant> {
    use On::*;
    vec![
        // The caller's profile.
        grant("dynamodb:GetItem", Table("PROFILES_TABLE")),
        // Each erasure receipt's job.
        grant("dynamodb:GetItem", Table("DELETION_JOBS_TABLE")),
        // The trail (audit_trail.rs): the four indexes, never a scan.
        grant("dynamodb:Query", Index("SECURITY_LOGS_TABLE", "by_target")),
        grant("dynamodb:Query", Index("SECURITY_LOGS_TABLE", "by_actor")),
        grant("dynamodb:Query", Index("SECURITY_LOGS_TABLE", "by_type")),
        grant("dynamodb:Query", Index("SECURITY_LOGS_TABLE", "by_email_hash")),
        // The lookup's own row, and refusals.
        grant("dynamodb:PutItem", Table("SECURITY_LOGS_TABLE"))
            .attrs(&event_attributes("audit-log"))
            .returns(&["NONE"]),
        refusal_counter(),
    ]
}

fn token_revocation() -> Vec<Grant> {
    use On::*;
    vec![
        grant("dynamodb:GetItem", Table("PROFILES_TABLE")),
        // revoke_tokens: SET tokens_valid_after.
        grant("dynamodb:UpdateItem", Table("PROFILES_TABLE"))
            .attrs(&["user_id", "tokens_valid_after"])
            .returns(&["NONE"]),
        // sub_of.
        grant("cognito-idp:AdminGetUser", Arn(USER_POOL)),
    ]
}

fn delivery_events() -> Vec<Grant> {
    use On::*;
    vec![
        // find (events without the message-id tag).
        grant(
            "dynamodb:Query",
            Index("ADMIN_MESSAGES_TABLE", "by_ses_message_id"),
        ),
        // update: status, updated_at, ses_message_id / sent_at (if_not_exists), REMOVE
        // pending_queue; on condition of message_id, ses_message_id, status.
        grant("dynamodb:UpdateItem", Table("ADMIN_MESSAGES_TABLE"))
            .attrs(&[
                "message_id",
                "status",
                "updated_at",
                "ses_message_id",
                "sent_at",
                "pending_queue",
            ])
            .returns(&["NONE"]),
        // Whether the row exists (ProjectionExpression message_id).
        grant("dynamodb:GetItem", Table("ADMIN_MESSAGES_TABLE")).attrs(&["message_id"]),
    ]
}

fn sweeper() -> Vec<Grant> {
    use On::*;
    vec![
        // DynamoDeletionJobs::open.
        grant("dynamodb:Query", Index("DELETION_JOBS_TABLE", "open_jobs")),
        grant("sqs:SendMessage", Arn(QUEUE)),
        // stale_pending, settle_stale.
        grant("dynamodb:Query", Index("ADMIN_MESSAGES_TABLE", "pending")),
        grant("dynamodb:UpdateItem", Table("ADMIN_MESSAGES_TABLE"))
            .attrs(&[
                "message_id",
                "status",
                "updated_at",
                "error_code",
                "pending_queue",
                "attempt",
            ])
            .returns(&["NONE"]),
    ]
}

/// Everything the function built from `bin` needs, in its inline statements.
pub fn grants(bin: &str) -> Vec<Grant> {
    match bin {
        "message-user" => message_user(),
        "delete-user" => deletion(),
        "deletion-worker" => {
            let mut grants = deletion();
            // The queue it consumes (what the event source mapping polls with).
            for action in [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ] {
                grants.push(grant(action, On::Arn(QUEUE)));
            }
            grants
        }
        "list-users" => list_users(),
        "audit-log" => audit_log(),
        "delivery-events" => delivery_events(),
        "sweeper" => sweeper(),
        "token-revocation" => token_revocation(),
        other => panic!("no expected grants for {other}"),
    }
}

/// The tables the function may reach at all (environment variables).
pub fn tables(bin: &str) -> BTreeSet<&'static str> {
    grants(bin)
        .into_iter()
        .filter_map(|g| match g.on {
            On::Table(env) | On::Index(env, _) => Some(env),
            On::Arn(_) => None,
        })
        .collect()
}

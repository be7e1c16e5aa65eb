//! The attribute lists of the whole-row writes (`expected.rs`, which the template must match)
//! against what the code writes: the job row and the message row from their serde shapes, the
//! audit events from the fields the use cases add. A field added in the code without its
//! attribute in the template would be refused by IAM in the account, and nowhere else: these
//! tests fail first.

use super::expected::{self, DENIAL_FIELDS, EVENT_COMMON, JOB_DERIVED, JOB_ROW, MESSAGE_ROW};
use domain::job::{DeletionJob, Lease, Step, TableProgress};
use domain::model::{AdminMessage, MessageStatus, SecurityEvent};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const DELETION_SOURCE: &str = include_str!("../../../shared/domain/src/deletion.rs");
const MESSAGING_SOURCE: &str = include_str!("../../../shared/domain/src/messaging.rs");
const ACCESS_SOURCE: &str = include_str!("../../../shared/domain/src/access.rs");
const USERS_SOURCE: &str = include_str!("../../../shared/domain/src/users.rs");
const AUDIT_SOURCE: &str = include_str!("../../../shared/domain/src/audit.rs");
const OUTBOX_SOURCE: &str = include_str!("../../../shared/aws-adapters/src/dynamo/outbox.rs");

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The attributes a grant of `bin` allows for `action` on the table `env`.
fn allowed(bin: &str, action: &str, env: &str) -> BTreeSet<String> {
    expected::grants(bin)
        .into_iter()
        .find(|g| {
            g.action == action && matches!(g.on, expected::On::Table(e) if e == env) && g.attributes.is_some()
        })
        .and_then(|g| g.attributes)
        .unwrap_or_else(|| panic!("{bin} has no {action} on {env} with attributes"))
        .into_iter()
        .collect()
}

/// The event-specific field names a source file adds with `.with("name", ...)`.
fn event_fields_in(source: &str) -> BTreeSet<String> {
    source
        .split(".with(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_owned()))
        .collect()
}

/// A job with every optional field set, as the routine saves it late in its life.
fn full_job() -> DeletionJob {
    let progress = BTreeMap::from([(
        "transactions".to_owned(),
        TableProgress {
            deleted: 1,
            cursor: Some(BTreeMap::from([("user_id".to_owned(), "u1".to_owned())])),
            pending: vec![BTreeMap::from([("user_id".to_owned(), "u1".to_owned())])],
            exhausted: true,
            verifying: true,
            done: false,
        },
    )]);
    DeletionJob {
        user_id: "u1".into(),
        job_id: "j1".into(),
        step: Step::LatePass,
        actor_id: "admin".into(),
        target_role: "user".into(),
        target_email_sha256: Some("ab".repeat(32)),
        auth_username: Some("u1".into()),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:01.000Z".into(),
        locked_out_at: Some("2026-01-01T00:00:00.500Z".into()),
        completed_at: Some("2026-01-01T00:00:02.000Z".into()),
        late_pass_due_at: Some("2026-01-01T01:00:00.500Z".into()),
        late_pass_done_at: Some("2026-01-01T01:00:03.000Z".into()),
        request_id: "r1".into(),
        source_ip: Some("203.0.113.9".into()),
        user_agent: Some("agent".into()),
        progress: progress.clone(),
        late_progress: progress,
        version: 3,
        lease: Some(Lease {
            owner: "runner".into(),
            until: "2026-01-01T00:01:00.000Z".into(),
        }),
    }
}

#[test]
fn the_deletion_functions_may_write_every_attribute_of_a_job_row_and_no_other() {
    let job = serde_json::to_value(full_job()).expect("a job serialises");
    let mut written = keys(&job);
    written.extend(set(JOB_DERIVED));
    assert_eq!(
        written,
        set(JOB_ROW),
        "deletion_jobs rows (job_item) vs the PutItem attribute list"
    );
    for bin in ["delete-user", "deletion-worker"] {
        assert_eq!(
            allowed(bin, "dynamodb:PutItem", "DELETION_JOBS_TABLE"),
            written,
            "{bin}"
        );
    }
}

#[test]
fn message_user_may_write_every_attribute_of_a_message_row_and_no_other() {
    let message = AdminMessage {
        message_id: "m1".into(),
        sender_id: "admin".into(),
        recipient_id: "u1".into(),
        subject: "s".into(),
        body: "b".into(),
        status: MessageStatus::Pending,
        ses_message_id: Some("ses-1".into()),
        error_code: Some("E".into()),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        sent_at: Some("2026-01-01T00:00:01.000Z".into()),
        updated_at: Some("2026-01-01T00:00:01.000Z".into()),
        attempt: Some("a1".into()),
    };
    let mut written = keys(&serde_json::to_value(message).expect("a message serialises"));
    // message_item adds the key of the sparse index while the row is pending.
    assert!(OUTBOX_SOURCE.contains("pub(crate) const PENDING_ATTR: &str = \"pending_queue\";"));
    written.insert("pending_queue".to_owned());
    assert_eq!(
        written,
        set(MESSAGE_ROW),
        "admin_messages rows (message_item) vs the PutItem list"
    );
    assert_eq!(
        allowed("message-user", "dynamodb:PutItem", "ADMIN_MESSAGES_TABLE"),
        written
    );
}

#[test]
fn every_function_may_write_every_field_of_the_audit_events_it_writes_and_no_other() {
    let event = SecurityEvent {
        event_id: "e1".into(),
        event_type: domain::model::EventType::AdminActionDenied,
        actor_id: Some("a".into()),
        target_id: "t".into(),
        created_at: "c".into(),
        request_id: "r".into(),
        source_ip: Some("ip".into()),
        user_agent: Some("ua".into()),
        fields: BTreeMap::new(),
        expires_at: Some(1),
    };
    let mut common = keys(&serde_json::to_value(event).expect("an event serialises"));
    common.remove("fields");
    assert_eq!(
        common,
        set(EVENT_COMMON),
        "the common attributes of security_logs rows"
    );

    let denial = event_fields_in(ACCESS_SOURCE);
    assert_eq!(denial, set(DENIAL_FIELDS), "admin_action_denied (access.rs)");
    let cases: [(&str, Vec<&str>); 5] = [
        ("message-user", vec![MESSAGING_SOURCE, ACCESS_SOURCE]),
        ("delete-user", vec![DELETION_SOURCE, ACCESS_SOURCE]),
        ("deletion-worker", vec![DELETION_SOURCE, ACCESS_SOURCE]),
        ("list-users", vec![USERS_SOURCE, ACCESS_SOURCE]),
        ("audit-log", vec![AUDIT_SOURCE, ACCESS_SOURCE]),
    ];
    for (bin, sources) in cases {
        let mut written = common.clone();
        for source in sources {
            written.extend(event_fields_in(source));
        }
        assert_eq!(
            allowed(bin, "dynamodb:PutItem", "SECURITY_LOGS_TABLE"),
            written,
            "{bin}"
        );
    }
}

#[test]
fn the_event_field_scanner_finds_what_with_adds() {
    let source = r#"event.with("job_id", x).with("deleted", y); other.without("x")"#;
    assert_eq!(event_fields_in(source), set(&["deleted", "job_id"]));
}

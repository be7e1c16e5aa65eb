//! The handlers on the in-memory backend: building the apps, the events of each route, and
//! comparing what is stored before and after a call.

use crate::answer::Answer;
use delete_user::DeleteApp;
use deletion_worker::WorkerApp;
use domain::audit::AuditLog;
use domain::cascade::{Lookup, CASCADE_PLAN};
use domain::deletion::DeletionSettings;
use domain::job::{DeletionJob, Step};
use domain::memory::{InMemoryBackend, State};
use domain::messaging::{Messaging, MessagingSettings};
use domain::model::{AdminMessage, MessageStatus, Profile, SecurityEvent};
use domain::users::Directory;
use http_api::event::ApiEvent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const MESSAGES_ROUTE: &str = "/admin/users/{userId}/messages";
pub const USER_ROUTE: &str = "/admin/users/{userId}";
pub const DELETION_ROUTE: &str = "/admin/users/{userId}/deletion";
pub const LIST_ROUTE: &str = "/admin/users";
pub const AUDIT_ROUTE: &str = "/admin/audit";
pub const ERASURES_ROUTE: &str = "/admin/erasures";

/// Which function an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    MessageUser,
    DeleteUser,
    ListUsers,
    AuditLog,
}

/// The HTTP functions' apps (and the deletion worker's) on one backend.
pub struct Apps {
    pub messaging: Messaging,
    pub delete: DeleteApp,
    pub worker: WorkerApp,
    pub directory: Directory,
    pub audit: AuditLog,
}

/// What the functions require of a token: the app client of the events tests build.
pub fn tokens() -> http_api::request::TokenRules {
    http_api::request::TokenRules::new(http_api::event::CLIENT_ID)
}

impl Apps {
    /// The apps on an in-memory backend, with production settings and a generous budget.
    pub fn in_memory(b: &Arc<InMemoryBackend>) -> Apps {
        Apps {
            messaging: b.messaging(MessagingSettings::default()),
            delete: DeleteApp {
                deletion: b.deletion(DeletionSettings::default()),
                budget: Duration::from_secs(20),
                tokens: tokens(),
            },
            worker: WorkerApp {
                deletion: b.deletion(DeletionSettings::default()),
                budget: Duration::from_secs(60),
            },
            directory: b.directory(),
            audit: b.audit_log(),
        }
    }

    /// Through `lambda_http`'s own event parsing, then the function's handler.
    pub async fn call(&self, function: Function, event: ApiEvent) -> Answer {
        let request = event.into_request().expect("a valid API Gateway v2 event parses");
        self.call_request(function, request).await
    }

    pub async fn call_request(&self, function: Function, request: lambda_http::Request) -> Answer {
        let response = match function {
            Function::MessageUser => {
                let app = message_user::MessageApp {
                    messaging: self.messaging.clone(),
                    tokens: tokens(),
                };
                message_user::handle(&app, request).await
            }
            Function::DeleteUser => delete_user::handle(&self.delete, request).await,
            Function::ListUsers => {
                let app = list_users::ListApp {
                    directory: self.directory.clone(),
                    tokens: tokens(),
                };
                list_users::handle(&app, request).await
            }
            Function::AuditLog => {
                let app = audit_log::AuditApp {
                    audit: self.audit.clone(),
                    tokens: tokens(),
                };
                audit_log::handle(&app, request).await
            }
        };
        Answer::from_response(response)
    }
}

fn event(method: &str, route: &str, caller: Option<&str>, target: Option<&str>) -> ApiEvent {
    let mut e = ApiEvent::new(method, route);
    if let Some(t) = target {
        e = e.path_param("userId", t);
    }
    match caller {
        Some(c) => e.caller(c),
        None => e,
    }
}

/// `POST /admin/users/{target}/messages`, no body yet.
pub fn send(caller: Option<&str>, target: &str) -> ApiEvent {
    event("POST", MESSAGES_ROUTE, caller, Some(target))
}

/// `GET /admin/users/{target}/messages`
pub fn history(caller: Option<&str>, target: &str) -> ApiEvent {
    event("GET", MESSAGES_ROUTE, caller, Some(target))
}

/// `DELETE /admin/users/{target}`, no body yet.
pub fn delete(caller: Option<&str>, target: &str) -> ApiEvent {
    event("DELETE", USER_ROUTE, caller, Some(target))
}

/// `GET /admin/users/{target}/deletion`
pub fn deletion_status(caller: Option<&str>, target: &str) -> ApiEvent {
    event("GET", DELETION_ROUTE, caller, Some(target))
}

/// `GET /admin/users`
pub fn list(caller: Option<&str>) -> ApiEvent {
    event("GET", LIST_ROUTE, caller, None)
}

/// `GET /admin/audit`, no filters yet.
pub fn audit(caller: Option<&str>) -> ApiEvent {
    event("GET", AUDIT_ROUTE, caller, None)
}

/// `GET /admin/erasures?email=<email>`
pub fn erasures(caller: Option<&str>, email: &str) -> ApiEvent {
    event("GET", ERASURES_ROUTE, caller, None).query("email", email)
}

pub fn profile(id: &str, role: &str, email: Option<&str>) -> Profile {
    Profile::active(
        id,
        role,
        email,
        &format!("Name of {id}"),
        "2025-01-01T00:00:00.000Z",
    )
}

/// A profile as the delete routine leaves it.
pub fn tombstone(id: &str, role: &str) -> Profile {
    Profile {
        user_id: id.into(),
        email: None,
        display_name: Profile::TOMBSTONE_NAME.into(),
        role: role.into(),
        created_at: "2025-01-01T00:00:00.000Z".into(),
        deleted_at: Some("2025-03-01T00:00:00.000Z".into()),
        auth_username: None,
        deletion_job_id: Some(format!("job-{id}")),
        tokens_valid_after: None,
    }
}

/// The finished deletion job of a tombstone.
pub fn completed_job(user_id: &str, role: &str) -> DeletionJob {
    DeletionJob {
        user_id: user_id.into(),
        job_id: format!("job-{user_id}"),
        step: Step::Done,
        actor_id: "owner-0".into(),
        target_role: role.into(),
        target_email_sha256: Some("0".repeat(64)),
        auth_username: None,
        created_at: "2025-03-01T00:00:00.000Z".into(),
        updated_at: "2025-03-01T00:00:01.000Z".into(),
        locked_out_at: Some("2025-03-01T00:00:00.500Z".into()),
        completed_at: Some("2025-03-01T00:00:01.000Z".into()),
        late_pass_due_at: Some("2025-03-01T01:00:00.500Z".into()),
        late_pass_done_at: Some("2025-03-01T01:00:05.000Z".into()),
        request_id: "req-0".into(),
        source_ip: None,
        user_agent: None,
        progress: BTreeMap::new(),
        late_progress: BTreeMap::new(),
        version: 9,
        lease: None,
    }
}

/// A deletion job just created by `actor`, before any step ran (no lease).
pub fn new_job(user_id: &str, role: &str, actor: &str) -> DeletionJob {
    let now = domain::model::timestamp(chrono::Utc::now());
    DeletionJob {
        user_id: user_id.into(),
        job_id: format!("job-{user_id}"),
        step: Step::Audit,
        actor_id: actor.into(),
        target_role: role.into(),
        target_email_sha256: Some("1".repeat(64)),
        auth_username: Some(user_id.into()),
        created_at: now.clone(),
        updated_at: now,
        locked_out_at: None,
        completed_at: None,
        late_pass_due_at: None,
        late_pass_done_at: None,
        request_id: "req-new".into(),
        source_ip: None,
        user_agent: None,
        progress: BTreeMap::new(),
        late_progress: BTreeMap::new(),
        version: 1,
        lease: None,
    }
}

/// `n` items of `user` in every table of the cascade plan (messages included).
pub fn put_user_data(b: &InMemoryBackend, user: &str, n: usize) {
    for table in CASCADE_PLAN {
        for i in 0..n {
            if table.name == "admin_messages" {
                let m = AdminMessage {
                    message_id: format!("{user}-msg-{i:04}"),
                    sender_id: "someone".into(),
                    recipient_id: user.into(),
                    subject: "s".into(),
                    body: "b".into(),
                    status: MessageStatus::Sent,
                    ses_message_id: Some(format!("ses-{user}-{i}")),
                    error_code: None,
                    created_at: format!("2025-01-01T00:00:{:02}.000Z", i % 60),
                    sent_at: None,
                    updated_at: None,
                    attempt: None,
                };
                b.state().messages.insert(m.message_id.clone(), m);
                continue;
            }
            let attr = match table.lookup {
                Lookup::PartitionKey { attr } | Lookup::Index { attr, .. } => attr,
            };
            let mut item = BTreeMap::from([(attr.to_owned(), user.to_owned())]);
            for k in table.key {
                item.entry((*k).to_owned())
                    .or_insert_with(|| format!("{user}-{}-{i:04}", table.name));
            }
            b.put_item(table, item);
        }
    }
}

/// Where two states differ, table by table; `security_logs` is left to the caller.
pub fn differences(before: &State, after: &State) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    check("profiles", before.profiles == after.profiles);
    check("send_leases", before.send_leases == after.send_leases);
    check("admin_messages", before.messages == after.messages);
    check("deletion_jobs", before.jobs == after.jobs);
    check("user data tables", before.tables == after.tables);
    check("idempotency", before.idempotency == after.idempotency);
    check("cognito users", before.auth_users == after.auth_users);
    check("sent mail", before.sent_mail == after.sent_mail);
    check("deletion queue", before.queue == after.queue);
    check("rate limits", before.rate == after.rate);
    out
}

/// Security events written between two states.
pub fn new_events(before: &State, after: &State) -> Vec<SecurityEvent> {
    after
        .security_logs
        .iter()
        .filter(|(id, _)| !before.security_logs.contains_key(*id))
        .map(|(_, e)| e.clone())
        .collect()
}

/// A JSON body for a send.
pub fn message_body(subject: Option<&str>, body: &str) -> Value {
    match subject {
        Some(s) => serde_json::json!({ "subject": s, "body": body }),
        None => serde_json::json!({ "body": body }),
    }
}

//! The handlers on the in-memory backend: building the apps, the events of each route, and
//! comparing what is stored before and after a call.

use crate::answer::Answer;
use delete_user::DeleteApp;
use deletion_worker::WorkerApp;
use domain::audit::AuditLog;
use domain::deletion::DeletionSettings;
use domain::job::{DeletionJob, Step};
use domain::memory::{InMemoryBackend, State};
use domain::messaging::{Messaging, MessagingSettings};
use domain::model::Profile;
use domain::users::Directory;
use fixtures::Part;
pub use fixtures::{new_events, profile, put_user_data, tokens};
use http_api::event::ApiEvent;
use serde_json::Value;
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

/// A profile as the delete routine leaves it.
pub fn tombstone(id: &str, role: &str) -> Profile {
    Profile {
        deletion_job_id: Some(format!("job-{id}")),
        ..fixtures::tombstone(id, role, "2025-03-01T00:00:00.000Z")
    }
}

/// The finished deletion job of a tombstone.
pub fn completed_job(user_id: &str, role: &str) -> DeletionJob {
    DeletionJob {
        step: Step::Done,
        target_email_sha256: Some("0".repeat(64)),
        updated_at: "2025-03-01T00:00:01.000Z".into(),
        locked_out_at: Some("2025-03-01T00:00:00.500Z".into()),
        completed_at: Some("2025-03-01T00:00:01.000Z".into()),
        late_pass_due_at: Some("2025-03-01T01:00:00.500Z".into()),
        late_pass_done_at: Some("2025-03-01T01:00:05.000Z".into()),
        request_id: "req-0".into(),
        version: 9,
        ..fixtures::job(user_id, role, "owner-0", "2025-03-01T00:00:00.000Z")
    }
}

/// A deletion job just created by `actor`, before any step ran (no lease).
pub fn new_job(user_id: &str, role: &str, actor: &str) -> DeletionJob {
    DeletionJob {
        target_email_sha256: Some("1".repeat(64)),
        auth_username: Some(user_id.into()),
        request_id: "req-new".into(),
        ..fixtures::job(
            user_id,
            role,
            actor,
            &domain::model::timestamp(chrono::Utc::now()),
        )
    }
}

/// Where two states differ, part by part; the audit trail (`security_logs`, `refusals`), the
/// mailer's calls and the suppression list are left to the caller.
pub fn differences(before: &State, after: &State) -> Vec<&'static str> {
    const LEFT_TO_THE_CALLER: [Part; 4] = [
        Part::SecurityLogs,
        Part::Refusals,
        Part::MailCalls,
        Part::Suppressed,
    ];
    fixtures::changed_parts(before, after)
        .into_iter()
        .filter(|p| !LEFT_TO_THE_CALLER.contains(p))
        .map(Part::name)
        .collect()
}

/// A JSON body for a send.
pub fn message_body(subject: Option<&str>, body: &str) -> Value {
    match subject {
        Some(s) => serde_json::json!({ "subject": s, "body": body }),
        None => serde_json::json!({ "body": body }),
    }
}

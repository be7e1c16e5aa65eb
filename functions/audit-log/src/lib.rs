//! `GET /admin/audit?target=&actor=&type=&limit=&cursor=`: the audit trail, newest first;
//! `GET /admin/erasures?email=`: the erasures of an address, found by its hash.
//!
//! The address of an erasure lookup is parsed, hashed and dropped here: it is never logged,
//! stored or answered back (the answer carries the hash).

use domain::audit::{AuditLog, ErasureLookup};
use domain::cursor::AuditCursor;
use domain::model::{EventType, RequestMeta, SecurityEvent};
use domain::ports::AuditQuery;
use domain::types::{EmailAddress, UserId};
use http_api::request::TokenRules;
use http_api::{errors, request, response, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::RequestExt;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use tracing::Instrument;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = AuditQuery::MAX_LIMIT;

/// One audit row as the API shows it: every field the row holds, nothing else.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    event_id: &'a str,
    event_type: &'static str,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_id: Option<&'a str>,
    target_id: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    /// The event-specific fields (`message_id`, `target_role`, `job_id`, `reason`, ...).
    details: BTreeMap<&'a str, &'a str>,
    /// A completion's rows erased per table (kept in the row as JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<BTreeMap<String, u64>>,
}

impl<'a> From<&'a SecurityEvent> for Entry<'a> {
    fn from(e: &'a SecurityEvent) -> Self {
        let deleted = e
            .fields
            .get("deleted")
            .and_then(|text| serde_json::from_str::<BTreeMap<String, u64>>(text).ok());
        let details = e
            .fields
            .iter()
            .filter(|(k, _)| !(deleted.is_some() && k.as_str() == "deleted"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Entry {
            event_id: &e.event_id,
            event_type: e.event_type.as_str(),
            created_at: &e.created_at,
            actor_id: e.actor_id.as_deref(),
            target_id: &e.target_id,
            request_id: &e.request_id,
            source_ip: e.source_ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            details,
            deleted,
        }
    }
}

#[derive(Debug, Serialize)]
struct LogPage<'a> {
    items: Vec<Entry<'a>>,
    next_cursor: Option<String>,
}

/// The function: the use case and what a token must be.
pub struct AuditApp {
    pub audit: AuditLog,
    pub tokens: TokenRules,
}

enum Route {
    Log,
    Erasures,
}

/// The route from the path's last two segments (wherever the stage puts it).
fn route(req: &Request) -> Option<Route> {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "admin", "audit"] => Some(Route::Log),
        [.., "admin", "erasures"] => Some(Route::Erasures),
        _ => None,
    }
}

/// The function's handler. Infallible: every failure is a problem+json answer.
pub async fn handle(app: &AuditApp, req: Request) -> Response<Body> {
    let meta = request::meta(&req, &app.tokens);
    let span = tracing::info_span!("http", request_id = %meta.request_id, method = %req.method());
    async {
        let result = match (route(&req), req.method().clone()) {
            (None, _) => Err(Problem::not_found()),
            (Some(Route::Log), Method::GET) => log(&app.audit, &meta, &req).await,
            (Some(Route::Erasures), Method::GET) => erasures(&app.audit, &meta, &req).await,
            (Some(_), _) => Err(Problem::method_not_allowed("GET")),
        };
        result.unwrap_or_else(|problem| problem.respond(&meta.request_id))
    }
    .instrument(span)
    .await
}

/// An optional user-id filter (`*` is the target of the actions with no single target).
fn id_filter(req: &Request, name: &'static str, star: bool) -> Result<Option<String>, Problem> {
    match request::query(req, name) {
        None => Ok(None),
        Some("*") if star => Ok(Some("*".to_owned())),
        Some(text) => UserId::parse(text)
            .map(|id| Some(id.as_str().to_owned()))
            .map_err(|e| {
                let also = if star { " (or *)" } else { "" };
                Problem::invalid_body(format!("{name} must be a user id{also}: it {e}."))
            }),
    }
}

async fn log(app: &AuditLog, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let (limit, after) = request::page::<AuditCursor>(req, DEFAULT_LIMIT, MAX_LIMIT)?;
    let target = id_filter(req, "target", true)?;
    let actor = id_filter(req, "actor", false)?;
    let event_type = match request::query(req, "type") {
        None => None,
        Some(text) => Some(EventType::parse(text).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            Problem::invalid_body(format!("type must be one of {}.", known.join(", ")))
        })?),
    };
    let query = AuditQuery {
        target,
        actor,
        event_type,
        limit,
        after,
    };
    let page = app.list(meta, &query).await.map_err(errors::audit_error)?;
    let answer = LogPage {
        items: page.items.iter().map(Entry::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    };
    Ok(response::json(StatusCode::OK, &answer, &meta.request_id))
}

async fn erasures(app: &AuditLog, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let Some(text) = request::query(req, "email") else {
        return Err(Problem::invalid_body(
            "email is required: the address to look up.",
        ));
    };
    let email = EmailAddress::parse(text)
        .map_err(|e| Problem::invalid_body(format!("email must be an email address: it {e}.")))?;
    let found: ErasureLookup = app.erasures(meta, &email).await.map_err(errors::audit_error)?;
    Ok(response::json(StatusCode::OK, &found, &meta.request_id))
}

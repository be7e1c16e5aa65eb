//! `GET /admin/users?q=&limit=&cursor=`: the Users tab's table, through [`Directory::list`].

use domain::cursor::UserCursor;
use domain::model::{Profile, RequestMeta};
use domain::ports::ListQuery;
use domain::users::Directory;
use http_api::request::TokenRules;
use http_api::{errors, request, response, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tracing::Instrument;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;
/// Longest search text, in characters (as sent, before trimming).
pub const MAX_QUERY: usize = 200;

#[derive(Debug, Serialize)]
struct UserItem<'a> {
    user_id: &'a str,
    email: Option<&'a str>,
    display_name: &'a str,
    role: &'a str,
    created_at: &'a str,
}

impl<'a> From<&'a Profile> for UserItem<'a> {
    fn from(p: &'a Profile) -> Self {
        UserItem {
            user_id: &p.user_id,
            email: p.email.as_deref(),
            display_name: &p.display_name,
            role: &p.role,
            created_at: &p.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct UserPage<'a> {
    items: Vec<UserItem<'a>>,
    next_cursor: Option<&'a str>,
}

/// The function: the use case and what a token must be.
pub struct ListApp {
    pub directory: Directory,
    pub tokens: TokenRules,
}

/// The function's handler. Infallible: every failure is a problem+json answer.
pub async fn handle(app: &ListApp, req: Request) -> Response<Body> {
    let meta = request::meta(&req, &app.tokens);
    let app = &app.directory;
    let span = tracing::info_span!("http", request_id = %meta.request_id, method = %req.method());
    async {
        let result = match *req.method() {
            Method::GET => list(app, &meta, &req).await,
            _ => Err(Problem::method_not_allowed("GET")),
        };
        result.unwrap_or_else(|problem| problem.respond(&meta.request_id))
    }
    .instrument(span)
    .await
}

async fn list(app: &Directory, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let (limit, cursor) = request::page::<UserCursor>(req, DEFAULT_LIMIT, MAX_LIMIT)?;
    // `q` as sent: at most MAX_QUERY characters, none of them a control character; then
    // trimmed, and blank means no filter.
    let search = match request::query(req, "q") {
        Some(q) if q.chars().count() > MAX_QUERY || q.chars().any(char::is_control) => {
            return Err(Problem::invalid_body(format!(
                "q must be at most {MAX_QUERY} characters, none of them a control character."
            )))
        }
        Some(q) if !q.trim().is_empty() => Some(q.trim().to_owned()),
        _ => None,
    };
    let query = ListQuery {
        search,
        limit,
        cursor,
        include_deleted: false,
    };
    let page = app.list(meta, &query).await.map_err(errors::list_error)?;
    let answer = UserPage {
        items: page.items.iter().map(UserItem::from).collect(),
        next_cursor: page.next.as_deref(),
    };
    Ok(response::json(StatusCode::OK, &answer, &meta.request_id))
}

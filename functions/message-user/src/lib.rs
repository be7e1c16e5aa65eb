//! `POST /admin/users/{userId}/messages` (send) and `GET /admin/users/{userId}/messages`
//! (history). The handler reads path, claims and body, parses them into domain types, calls
//! [`Messaging`], and maps the result to HTTP. Rules live in the policy crate, IO in the
//! adapters.

use domain::cursor::MessageCursor;
use domain::messaging::{Messaging, Outcome, SendInput, SendOptions};
use domain::model::{AdminMessage, RequestMeta};
use domain::policy::Action;
use domain::types::{IdempotencyKey, MessageBody, Subject};
use http_api::request::TokenRules;
use http_api::{body, code, errors, request, response, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::Instrument;

/// Kept free of the Lambda deadline: every AWS call ends by then, so the answer still gets out.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(1);

/// Header that marks an answer replayed from an earlier request with the same key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// History page size: default and maximum.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The request body. `subject` missing, `null` or blank means the default subject; `body`
/// missing or `null` is an empty body (`400 body_invalid`). `send_anyway: true` sends even
/// though the user's last message bounced or drew a complaint (otherwise
/// `422 recipient_undeliverable`); missing or `null` is `false`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    send_anyway: Option<bool>,
}

/// One row of the history answer.
#[derive(Debug, Serialize)]
struct HistoryItem<'a> {
    message_id: &'a str,
    sender_id: &'a str,
    subject: &'a str,
    body: &'a str,
    status: &'a str,
    ses_message_id: Option<&'a str>,
    error_code: Option<&'a str>,
    created_at: &'a str,
    sent_at: Option<&'a str>,
    /// When `status` last changed (the send, a failure, or a delivery event); `null` while
    /// `pending`.
    updated_at: Option<&'a str>,
}

impl<'a> From<&'a AdminMessage> for HistoryItem<'a> {
    fn from(m: &'a AdminMessage) -> Self {
        HistoryItem {
            message_id: &m.message_id,
            sender_id: &m.sender_id,
            subject: &m.subject,
            body: &m.body,
            status: m.status.as_str(),
            ses_message_id: m.ses_message_id.as_deref(),
            error_code: m.error_code.as_deref(),
            created_at: &m.created_at,
            sent_at: m.sent_at.as_deref(),
            updated_at: m.updated_at.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
struct HistoryPage<'a> {
    items: Vec<HistoryItem<'a>>,
    next_cursor: Option<&'a str>,
}

/// The `202` answer: SES's answer is not known; the message is never sent again.
#[derive(Debug, Serialize)]
struct PendingAnswer<'a> {
    message_id: &'a str,
    status: &'static str,
}

/// The function: the use cases and what a token must be.
pub struct MessageApp {
    pub messaging: Messaging,
    pub tokens: TokenRules,
}

/// The function's handler. Infallible: every failure is a problem+json answer.
pub async fn handle(app: &MessageApp, req: Request) -> Response<Body> {
    let meta = request::meta(&req, &app.tokens);
    let app = &app.messaging;
    let span = tracing::info_span!("http", request_id = %meta.request_id, method = %req.method());
    let deadline = req
        .lambda_context_ref()
        .and_then(|c| aws_adapters::deadline::before_lambda_deadline(c.deadline, LAMBDA_MARGIN));
    aws_adapters::deadline::within_opt(deadline, async {
        let result = match *req.method() {
            Method::POST => send(app, &meta, &req).await,
            Method::GET => history(app, &meta, &req).await,
            _ => Err(Problem::method_not_allowed("GET, POST")),
        };
        result.unwrap_or_else(|problem| problem.respond(&meta.request_id))
    })
    .instrument(span)
    .await
}

async fn send(app: &Messaging, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    if meta.caller.is_none() {
        let denial = app
            .refuse_anonymous(meta, Action::SendMessage, &request::audit_target(req))
            .await;
        return Err(errors::denied(denial));
    }
    let target = request::user_id(req)?;
    let idempotency_key = idempotency_key(req)?;
    let input: SendBody = body::read_json(req)?.unwrap_or_default();
    let subject = Subject::parse(input.subject.as_deref())
        .map_err(|e| errors::parse_error(code::SUBJECT_INVALID, "subject", &e))?;
    let body = MessageBody::parse(input.body.as_deref().unwrap_or(""))
        .map_err(|e| errors::parse_error(code::BODY_INVALID, "body", &e))?;

    let options = SendOptions {
        send_anyway: input.send_anyway.unwrap_or(false),
    };
    let sent = app
        .send_with(
            meta,
            SendInput {
                target,
                subject,
                body,
                idempotency_key,
            },
            options,
        )
        .await
        .map_err(errors::send_error)?;
    let answer = match &sent.outcome {
        Outcome::Sent(receipt) => response::json(StatusCode::CREATED, receipt, &meta.request_id),
        Outcome::Pending { message_id } => response::json(
            StatusCode::ACCEPTED,
            &PendingAnswer {
                message_id,
                status: "pending",
            },
            &meta.request_id,
        ),
    };
    Ok(if sent.replayed {
        response::with_header(answer, REPLAYED_HEADER, "true")
    } else {
        answer
    })
}

/// The optional `Idempotency-Key` header: 1..=255 visible ASCII characters, given once.
fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, Problem> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        Problem::invalid_body(format!(
            "The Idempotency-Key header must be given once, as 1 to {} visible ASCII characters.",
            IdempotencyKey::MAX_LEN
        ))
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let text = value.to_str().map_err(|_| invalid())?;
    IdempotencyKey::parse(text).map(Some).map_err(|_| invalid())
}

async fn history(app: &Messaging, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let target = request::user_id(req)?;
    let (limit, cursor) = request::page::<MessageCursor>(req, DEFAULT_LIMIT, MAX_LIMIT)?;
    let page = app
        .history(meta, &target, limit, cursor.as_ref())
        .await
        .map_err(errors::history_error)?;
    let answer = HistoryPage {
        items: page.items.iter().map(HistoryItem::from).collect(),
        next_cursor: page.next.as_deref(),
    };
    Ok(response::json(StatusCode::OK, &answer, &meta.request_id))
}

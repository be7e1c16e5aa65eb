//! The Runtime API endpoints, as the Lambda service serves them to a function's runtime
//! client (`AWS_LAMBDA_RUNTIME_API`):
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long-poll for the next event; the answer
//!   carries `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`.
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the invocation's result.
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: the invocation failed.
//! - `POST /2018-06-01/runtime/init/error`: initialisation failed.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Lambda's limit for a synchronous response payload.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// An event waiting for the runtime's next `GET /next`.
pub(crate) struct Pending {
    pub request_id: String,
    pub payload: Vec<u8>,
    pub deadline_ms: u64,
    pub trace_id: String,
    pub reply: oneshot::Sender<Reply>,
}

/// What the runtime posted for one invocation.
pub(crate) struct Reply {
    pub outcome: Outcome,
    /// When `GET /next` handed the event out.
    pub handed_at: Instant,
    /// When the response (or error) arrived.
    pub at: Instant,
}

pub(crate) enum Outcome {
    Response(Vec<u8>),
    Error(ReportedError),
}

/// An error the function reported (`/init/error` or `/invocation/{id}/error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedError {
    /// `Lambda-Runtime-Function-Error-Type` header, else the body's `errorType`.
    pub error_type: String,
    /// The body's `errorMessage`, when the body is the usual JSON document.
    pub message: Option<String>,
    /// The body as posted.
    pub body: String,
}

impl ReportedError {
    fn parse(headers: &HeaderMap, body: &[u8]) -> ReportedError {
        let text = String::from_utf8_lossy(body).into_owned();
        let doc: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| doc.as_ref().and_then(|d| d[name].as_str()).map(str::to_owned);
        let header = headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        ReportedError {
            error_type: header
                .or_else(|| field("errorType"))
                .unwrap_or_else(|| "Unknown".to_owned()),
            message: field("errorMessage"),
            body: text,
        }
    }
}

impl std::fmt::Display for ReportedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.error_type),
            None => write!(f, "{}: {}", self.error_type, self.body),
        }
    }
}

/// The start-up state the runtime API has seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lifecycle {
    /// Arrival of the first `GET /next`: the end of the init phase.
    pub first_next: Option<Instant>,
    pub init_error: Option<ReportedError>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: Mutex<HashMap<String, (oneshot::Sender<Reply>, Instant)>>,
    lifecycle: watch::Sender<Lifecycle>,
    function_arn: String,
}

/// A running Runtime API for one function (one execution environment).
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    pub queue: mpsc::UnboundedSender<Pending>,
    pub lifecycle: watch::Receiver<Lifecycle>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(function_arn: String) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (lifecycle_tx, lifecycle_rx) = watch::channel(Lifecycle::default());
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue_rx),
            inflight: Mutex::new(HashMap::new()),
            lifecycle: lifecycle_tx,
            function_arn,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Larger than the limit, so that an oversized response is refused by us, as Lambda does.
            .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES + 1024 * 1024))
            .with_state(shared);
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted (the function is dropped).
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            addr,
            queue: queue_tx,
            lifecycle: lifecycle_rx,
            server,
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    s.lifecycle.send_if_modified(|l| {
        let first = l.first_next.is_none();
        if first {
            l.first_next = Some(arrived);
        }
        first
    });
    let pending = s.queue.lock().await.recv().await;
    let Some(p) = pending else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the simulator is shutting down",
        )
            .into_response();
    };
    lock(&s.inflight).insert(p.request_id.clone(), (p.reply, Instant::now()));
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("lambda-runtime-aws-request-id", header(&p.request_id));
    headers.insert("lambda-runtime-deadline-ms", header(&p.deadline_ms.to_string()));
    headers.insert("lambda-runtime-invoked-function-arn", header(&s.function_arn));
    headers.insert("lambda-runtime-trace-id", header(&p.trace_id));
    (StatusCode::OK, headers, p.payload).into_response()
}

fn invalid_request_id(id: &str) -> Response {
    let doc = json!({ "errorType": "InvalidRequestID", "errorMessage": format!("unknown request id {id}") });
    (StatusCode::BAD_REQUEST, Json(doc)).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "status": "OK" }))).into_response()
}

fn settle(s: &Shared, id: &str, outcome: Outcome) -> bool {
    let at = Instant::now();
    match lock(&s.inflight).remove(id) {
        Some((reply, handed_at)) => {
            // The caller may have given up (timeout); nothing to do then.
            let _ = reply.send(Reply {
                outcome,
                handed_at,
                at,
            });
            true
        }
        None => false,
    }
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if body.len() > MAX_RESPONSE_BYTES {
        let error = ReportedError {
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            message: Some(format!(
                "response payload of {} bytes exceeds {MAX_RESPONSE_BYTES}",
                body.len()
            )),
            body: String::new(),
        };
        if !settle(&s, &id, Outcome::Error(error)) {
            return invalid_request_id(&id);
        }
        let doc = json!({ "errorType": "RequestEntityTooLarge", "errorMessage": "response too large" });
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(doc)).into_response();
    }
    if settle(&s, &id, Outcome::Response(body.to_vec())) {
        accepted()
    } else {
        invalid_request_id(&id)
    }
}

async fn error(
    State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes,
) -> Response {
    if settle(&s, &id, Outcome::Error(ReportedError::parse(&headers, &body))) {
        accepted()
    } else {
        invalid_request_id(&id)
    }
}

async fn init_error(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let reported = ReportedError::parse(&headers, &body);
    s.lifecycle.send_modify(|l| {
        if l.init_error.is_none() {
            l.init_error = Some(reported);
        }
    });
    accepted()
}

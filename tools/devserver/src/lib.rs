//! The local dev server: hosts the Lambda functions' own handlers on an embedded in-memory
//! backend with seeded demo data, writes mail to an outbox folder as `.eml`, runs the
//! deletion worker in-process and serves the reference Users tab page. SES delivery events
//! are simulated (`POST /dev/ses-events`, and a Delivery event shortly after each send) and
//! go through the delivery-events function's own handler.
//!
//! Every API request goes the way it goes in AWS: the JWT authorizer checks the bearer token
//! ([`auth`]: tokens of the dev server's own, minted for the demo identities by
//! `GET /dev/identities`), the HTTP request becomes an API Gateway HTTP API (payload 2.0) event
//! JSON with the verified claims, `lambda_http` parses that JSON into its `Request`, the
//! function's `handle` answers, and the answer goes back as HTTP. Requests not addressed to the
//! dev server itself are refused ([`host`]).

pub mod auth;
pub mod gateway;
pub mod host;
pub mod outbox;
pub mod seed;
pub mod ses;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as AxumPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::{Json, Router};
use domain::deletion::DeletionSettings;
use domain::delivery::Delivery;
use domain::memory::InMemoryBackend;
use domain::messaging::{MessagingSettings, DEFAULT_REPLY_TO};
use http_api::request::TokenRules;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_http::services::ServeDir;

use delete_user::DeleteApp;

/// Requests larger than this are refused by the dev server itself. It is above the
/// functions' own 64 KiB limit, so a body between the two reaches the function, whose
/// `413 payload_too_large` is what the client sees (as in AWS).
pub const MAX_REQUEST_BODY: usize = 256 * 1024;

/// Settings of one dev server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `.eml` files go.
    pub outbox: PathBuf,
    /// The reference page (served from disk, so editing it needs no rebuild).
    pub static_dir: PathBuf,
    /// Served at `/openapi.yaml` when it exists.
    pub openapi: PathBuf,
    /// The `DELETE` handler's time budget (`DELETE_BUDGET_MS` in Lambda).
    pub delete_budget: Duration,
    /// The in-process worker's budget per queued job (`WORKER_BUDGET_MS` in Lambda).
    pub worker_budget: Duration,
    /// How often the in-process worker polls the queue.
    pub worker_interval: Duration,
    /// How often the in-process sweep runs (an EventBridge schedule in AWS).
    pub sweep_interval: Duration,
    /// `MAIL_FROM`
    pub mail_from: String,
    /// `SUPPORT_REPLY_TO`
    pub reply_to: String,
    /// When set, every accepted mail gets a simulated SES Delivery event this long after it
    /// was sent (through the delivery-events function), so the page shows `sent` becoming
    /// `delivered`. `None`: messages stay `sent` until `POST /dev/ses-events` says otherwise.
    pub simulate_delivery: Option<Duration>,
    /// Host names (without port) accepted in the `Host` header besides the loopback names and
    /// the listen address (`--allow-host`).
    pub allowed_hosts: Vec<String>,
}

/// The default delay of the simulated Delivery event.
pub const DEFAULT_SIMULATED_DELIVERY: Duration = Duration::from_millis(1500);

impl Default for Config {
    fn default() -> Self {
        let root = workspace_root();
        Config {
            outbox: PathBuf::from("outbox"),
            static_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static"),
            openapi: root.join("docs").join("openapi.yaml"),
            delete_budget: Duration::from_millis(20_000),
            worker_budget: Duration::from_millis(60_000),
            worker_interval: Duration::from_millis(250),
            sweep_interval: Duration::from_secs(60),
            mail_from: "no-reply@teleperson.com".into(),
            reply_to: DEFAULT_REPLY_TO.into(),
            simulate_delivery: Some(DEFAULT_SIMULATED_DELIVERY),
            allowed_hosts: Vec::new(),
        }
    }
}

/// The repository root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// The running dev server's state: the backend and the use cases the handlers get.
pub struct DevServer {
    pub backend: Arc<InMemoryBackend>,
    pub seeded: seed::Seeded,
    pub config: Config,
    /// The stand-in for API Gateway's JWT authorizer, with this server's own signing key.
    pub auth: auth::Authorizer,
    messaging: message_user::MessageApp,
    delete: DeleteApp,
    directory: list_users::ListApp,
    audit: audit_log::AuditApp,
    delivery: Delivery,
}

impl DevServer {
    /// A seeded in-memory backend whose mailer writes into `config.outbox`, and a token
    /// signing key made from the operating system's randomness (the only way this fails).
    pub fn new(config: Config) -> Result<Arc<DevServer>, getrandom::Error> {
        let auth = auth::Authorizer::new()?;
        let backend = InMemoryBackend::new();
        let seeded = seed::seed(&backend);
        let dir = config.outbox.clone();
        let simulate = config.simulate_delivery;
        let weak = Arc::downgrade(&backend);
        let (from, reply_to) = (config.mail_from.clone(), config.reply_to.clone());
        backend.on_mail(Arc::new(move |email| {
            match outbox::write_eml(&dir, email) {
                Ok(path) => tracing::info!(message_id = %email.message_id, file = %path.display(), "mail written to the outbox"),
                Err(err) => tracing::error!(message_id = %email.message_id, error = %err, "could not write the mail to the outbox"),
            }
            if let Some(delay) = simulate {
                ses::deliver_later(
                    weak.clone(),
                    email.message_id.clone(),
                    delay,
                    from.clone(),
                    reply_to.clone(),
                );
            }
        }));
        // The tokens the dev server mints are of its own app client.
        let tokens = || TokenRules::new(auth::DEV_CLIENT_ID);
        let messaging = message_user::MessageApp {
            messaging: backend.messaging(MessagingSettings {
                mail_from: config.mail_from.clone(),
                reply_to: config.reply_to.clone(),
                ..MessagingSettings::default()
            }),
            tokens: tokens(),
        };
        let delete = DeleteApp {
            deletion: backend.deletion(DeletionSettings::default()),
            budget: config.delete_budget,
            tokens: tokens(),
        };
        let directory = list_users::ListApp {
            directory: backend.directory(),
            tokens: tokens(),
        };
        let audit = audit_log::AuditApp {
            audit: backend.audit_log(),
            tokens: tokens(),
        };
        let delivery = backend.delivery();
        Ok(Arc::new(DevServer {
            backend,
            seeded,
            config,
            auth,
            messaging,
            delete,
            directory,
            audit,
            delivery,
        }))
    }

    /// The in-process deletion worker and sweep: receive continuations from the queue the way
    /// Lambda's SQS event source does (a received message is hidden for the visibility
    /// timeout and comes back unless acknowledged), continue each job under the worker
    /// budget, and run the scheduled sweep every `sweep_interval`.
    pub fn spawn_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let sweeper = app.backend.sweeper(domain::sweep::SweepSettings::default());
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(app.config.worker_interval).await;
                if last_sweep.elapsed() >= app.config.sweep_interval {
                    last_sweep = tokio::time::Instant::now();
                    if let Err(err) = sweeper.run().await {
                        tracing::warn!(error = %err, "sweep failed");
                    }
                }
                let now = app.backend.clock().now();
                while let Some(message) = app.backend.receive(now, WORKER_VISIBILITY) {
                    let deadline = tokio::time::Instant::now() + app.config.worker_budget;
                    match app
                        .delete
                        .deletion
                        .continue_job(&message.continuation, deadline)
                        .await
                    {
                        Ok(outcome) => {
                            tracing::info!(job_id = %message.continuation.job_id, ?outcome, "worker: continuation handled");
                            app.backend.ack(message.id);
                        }
                        // Not acknowledged: it comes back after the visibility timeout.
                        Err(err) => {
                            tracing::warn!(job_id = %message.continuation.job_id, error = %err, "worker: continuation failed")
                        }
                    }
                }
            }
        })
    }
}

/// How long a received continuation stays hidden before it comes back (the deletion queue's
/// visibility timeout is 720 s in AWS; the dev server retries sooner).
const WORKER_VISIBILITY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Function {
    ListUsers,
    MessageUser,
    DeleteUser,
    AuditLog,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::ListUsers => "list-users",
            Function::MessageUser => "message-user",
            Function::DeleteUser => "delete-user",
            Function::AuditLog => "audit-log",
        }
    }
}

type App = Arc<DevServer>;

type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
type PathParams = Option<AxumPath<BTreeMap<String, String>>>;

/// The handler that runs `function` for requests API Gateway matches with `route_key`.
fn handler_for(
    route_key: Arc<str>, function: Function,
) -> impl Fn(State<App>, ConnectInfo<SocketAddr>, PathParams, Request) -> Reply + Clone + Send + Sync + 'static
{
    move |State(app), ConnectInfo(peer), params, req| {
        Box::pin(invoke(
            app,
            function,
            route_key.clone(),
            peer,
            params.map(|p| p.0).unwrap_or_default(),
            req,
        ))
    }
}

/// The API as API Gateway routes it: each path, the methods with a route of their own (route
/// key `"{method} {path}"`) and the function behind the path. Any other method on the path goes
/// to the same function (as an `ANY {path}` route sends it), which answers
/// `405 method_not_allowed` with `Allow`.
const API_PATHS: &[(&str, &[Method], Function)] = &[
    ("/admin/users", &[Method::GET], Function::ListUsers),
    ("/admin/users/{userId}", &[Method::DELETE], Function::DeleteUser),
    (
        "/admin/users/{userId}/messages",
        &[Method::POST, Method::GET],
        Function::MessageUser,
    ),
    (
        "/admin/users/{userId}/deletion",
        &[Method::GET],
        Function::DeleteUser,
    ),
    (
        "/admin/users/{userId}/deletion-preview",
        &[Method::GET],
        Function::DeleteUser,
    ),
    ("/admin/audit", &[Method::GET], Function::AuditLog),
    ("/admin/erasures", &[Method::GET], Function::AuditLog),
];

/// The routes of one path of [`API_PATHS`].
fn api_path(path: &str, methods: &[Method], function: Function) -> MethodRouter<App> {
    let routes = methods.iter().fold(MethodRouter::new(), |routes, method| {
        let filter = MethodFilter::try_from(method.clone()).expect("API Gateway routes standard methods");
        routes.on(filter, handler_for(format!("{method} {path}").into(), function))
    });
    routes.fallback(handler_for(format!("ANY {path}").into(), function))
}

async fn invoke(
    app: App, function: Function, route_key: Arc<str>, peer: SocketAddr,
    path_parameters: BTreeMap<String, String>, req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    // API Gateway's JWT authorizer runs first: without a valid token nothing reaches a function.
    let now = chrono::Utc::now().timestamp();
    let authorization = parts.headers.get_all(axum::http::header::AUTHORIZATION);
    let verified = match app
        .auth
        .verify(authorization.iter().map(|v| v.as_bytes()), auth::ADMIN_SCOPE, now)
    {
        Ok(v) => v,
        Err(refusal) => {
            tracing::info!(route = &*route_key, status = refusal.status(), reason = %refusal, "authorizer refused the request");
            return gateway::authorizer_refusal(refusal, auth::ADMIN_SCOPE);
        }
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return gateway::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            "Request bodies over 64 KiB are refused.",
        );
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = gateway::event(&gateway::Incoming {
        route_key: &route_key,
        method: &parts.method,
        path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &parts.headers,
        path_parameters,
        body: &body,
        source_ip: peer.ip(),
        request_id: request_id.clone(),
        authorizer: Some(&verified),
    });
    let lambda_req = match gateway::lambda_request(&event.to_string(), function.name()) {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(error = %err, "the event did not parse as an API Gateway v2 request");
            return gateway::gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    // Run the function in its own task: a panic becomes API Gateway's 500, as in AWS.
    let task = {
        let app = app.clone();
        tokio::spawn(async move {
            match function {
                Function::ListUsers => list_users::handle(&app.directory, lambda_req).await,
                Function::MessageUser => message_user::handle(&app.messaging, lambda_req).await,
                Function::DeleteUser => delete_user::handle(&app.delete, lambda_req).await,
                Function::AuditLog => audit_log::handle(&app.audit, lambda_req).await,
            }
        })
    };
    let response = match task.await {
        Ok(r) => gateway::into_http(r),
        Err(err) => {
            tracing::error!(function = function.name(), error = %err, "the function panicked");
            gateway::gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    tracing::info!(
        route = &*route_key,
        status = response.status().as_u16(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        %request_id,
        "api"
    );
    response
}

async fn not_found() -> Response {
    gateway::gateway_message(StatusCode::NOT_FOUND, "Not Found")
}

/// `GET /dev/identities`: who the "Signed in as" picker offers, each with a fresh access token
/// of this dev server's own (dev only).
async fn identities(State(app): State<App>) -> Response {
    let issued_at = chrono::Utc::now().timestamp();
    let st = app.backend.state();
    let list: Vec<_> = app
        .seeded
        .identities
        .iter()
        .map(|i| {
            let profile = st.profiles.get(&i.user_id);
            let deleted = profile.is_none_or(|p| p.is_tombstone());
            let token = app.auth.mint(&i.user_id, &[auth::ADMIN_SCOPE], issued_at);
            json!({
                "user_id": i.user_id,
                "display_name": i.display_name,
                "role": profile.filter(|_| !deleted).map_or(i.role.as_str(), |p| p.role.as_str()),
                "deleted": deleted,
                "access_token": token.token,
                "token_type": "Bearer",
                "expires_at": token.expires_at,
            })
        })
        .collect();
    let mut response = Json(json!({ "items": list })).into_response();
    // Fresh tokens every time: never from a cache.
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// `GET /dev/outbox`: the `.eml` files written so far, newest first (dev only).
async fn outbox_list(State(app): State<App>) -> Response {
    let dir = app.config.outbox.clone();
    let items = tokio::task::spawn_blocking(move || outbox::list(&dir))
        .await
        .unwrap_or_default();
    Json(json!({ "dir": app.config.outbox.display().to_string(), "items": items })).into_response()
}

/// `GET /dev/outbox/{file}`: one `.eml`, as text (dev only).
async fn outbox_file(State(app): State<App>, AxumPath(file): AxumPath<String>) -> Response {
    if !outbox::is_safe_name(&file) {
        return not_found().await;
    }
    match tokio::fs::read(app.config.outbox.join(&file)).await {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Err(_) => not_found().await,
    }
}

/// `POST /dev/ses-events` with `{"message_id": "<our id>", "event": "Delivery" | "Bounce" |
/// "SoftBounce" | "Complaint"}` (dev only): what SES would publish about that message, run
/// through the delivery-events function. Answers the message's status before and after.
async fn ses_events(State(app): State<App>, body: axum::body::Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Simulate {
        message_id: String,
        event: String,
    }
    let allowed = ses::SesEventKind::NAMES.join(", ");
    let input: Simulate = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return gateway::problem(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "Invalid body",
                &format!(r#"Send {{"message_id": "<message id>", "event": "<one of {allowed}>"}}."#),
            )
        }
    };
    let Some(kind) = ses::SesEventKind::parse(&input.event) else {
        return gateway::problem(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid body",
            &format!("event must be one of {allowed}."),
        );
    };
    let result = ses::publish(
        &app.backend,
        &app.delivery,
        &input.message_id,
        kind,
        &app.config.mail_from,
        &app.config.reply_to,
    )
    .await;
    match result {
        Ok(outcome) => Json(json!({
            "message_id": outcome.message_id,
            "ses_message_id": outcome.ses_message_id,
            "event": kind.as_str(),
            "previous_status": outcome.previous_status.as_str(),
            "status": outcome.status.as_str(),
            "changed": outcome.previous_status != outcome.status,
            "updated_at": outcome.updated_at,
        }))
        .into_response(),
        Err(ses::SimulateError::UnknownMessage) => gateway::problem(
            StatusCode::NOT_FOUND,
            "message_not_found",
            "Message not found",
            "No message has this message_id.",
        ),
        Err(err @ ses::SimulateError::NotSent(_)) => gateway::problem(
            StatusCode::CONFLICT,
            "message_not_sent",
            "Message not sent",
            &format!("SES has no events about this message: {err}."),
        ),
        Err(ses::SimulateError::Function) => gateway::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "The delivery-events function failed; see the dev server's log.",
        ),
    }
}

async fn openapi(State(app): State<App>) -> Response {
    match tokio::fs::read(&app.config.openapi).await {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/yaml"));
            r
        }
        Err(_) => (StatusCode::NOT_FOUND, "docs/openapi.yaml does not exist yet\n").into_response(),
    }
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// Every route: the API (as API Gateway routes it), the dev-only helpers and the page.
pub fn router(app: App) -> Router {
    let api_routes = API_PATHS
        .iter()
        .fold(Router::new(), |routes, &(path, methods, function)| {
            routes.route(path, api_path(path, methods, function))
        })
        .route("/admin/{*rest}", axum::routing::any(not_found));
    let dev_routes = Router::new()
        .route("/dev/identities", get(identities))
        .route("/dev/outbox", get(outbox_list))
        .route("/dev/outbox/{file}", get(outbox_file))
        .route("/dev/ses-events", axum::routing::post(ses_events))
        .route("/openapi.yaml", get(openapi));
    let page = Router::new()
        .fallback_service(ServeDir::new(&app.config.static_dir))
        .layer(axum::middleware::map_response(no_store));
    api_routes.merge(dev_routes).merge(page).with_state(app)
}

/// Serves `app` on `listener` (with the in-process deletion worker) until the process ends.
/// Only requests addressed to the listener's own address are answered ([`host`]).
pub async fn serve(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    let allowed = Arc::new(host::AllowedHosts::for_listener(
        listener.local_addr()?,
        &app.config.allowed_hosts,
    ));
    let worker = app.spawn_worker();
    let routes = router(app).layer(axum::middleware::from_fn_with_state(allowed, host::check));
    let result = axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    worker.abort();
    result
}

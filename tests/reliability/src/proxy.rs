//! A fault-injecting HTTP/1.1 proxy between the real AWS SDK clients and the emulator.
//!
//! The SDK clients (in this process, or a function binary through `AWS_ENDPOINT_URL_<SERVICE>`)
//! are given the proxy as their endpoint. The proxy names every request's operation
//! (`dynamodb:PutItem` from `X-Amz-Target`, `sesv2:SendEmail` from the REST path,
//! `cognito:AdminDisableUser`, `sqs:SendMessage`), records it, and either forwards it to the
//! emulator or injects a fault, as AWS produces them:
//!
//! - before the request applies: an AWS error in the service's own protocol (status,
//!   `__type` / `x-amzn-ErrorType`), a hang past the client's timeout, or a connection
//!   dropped without an answer;
//! - after it applied: the answer replaced by an error, held back past the client's timeout,
//!   or the connection dropped (the call took effect, the client never hears).
//!
//! Faults are chosen by rules: the n-th calls of an operation, every call of a service for a
//! while (an outage), or a seeded random draw at a given rate.
//!
//! Two things DynamoDB does and moto 5.2.5 does not, done here for every request that goes
//! through the proxy:
//! - writes are isolated: a `TransactWriteItems`, and every conditional single-item write
//!   (`PutItem`, `UpdateItem`, `DeleteItem`) and `BatchWriteItem`, goes to the emulator only
//!   while no other DynamoDB request of this proxy is in flight, and holds the others back
//!   while it runs. moto reads the item, checks the condition and writes without a lock, so
//!   two concurrent conditional writes can both pass, and it applies a transaction's actions
//!   one by one among other requests; DynamoDB applies each atomically;
//! - a `TransactWriteItems` retried with the same `ClientRequestToken` within 10 minutes gets
//!   the first answer back without applying again (the SDK fills the token and keeps it
//!   across its retries; moto would run it again and cancel it on its own write); the same
//!   token with other items is `IdempotentParameterMismatchException`.
//!
//! Plain tokio TCP: requests are read with their `Content-Length` (or chunked) body and
//! forwarded on a fresh upstream connection each; connections to the clients stay alive.
//! The bodies of `SendEmail` requests are kept (in memory only) so tests can check what
//! went out on the wire.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// What the proxy does instead of (or after) forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Refused before it applied: answer with this HTTP status and AWS error code, in the
    /// service's protocol.
    Error { status: u16, code: &'static str },
    /// Hold the request, unforwarded, for this long (or until the client gives up).
    Hang(Duration),
    /// Close the connection without forwarding and without an answer.
    Drop,
    /// Forward the request (it takes effect in the emulator), then hold the answer back for
    /// this long (or until the client gives up) and close the connection.
    ForwardThenHang(Duration),
    /// Forward the request (it takes effect), then answer this error instead of the
    /// emulator's answer.
    ForwardThenError { status: u16, code: &'static str },
    /// Forward the request (it takes effect), then close the connection without an answer.
    ForwardThenDrop,
}

impl Fault {
    pub fn error(status: u16, code: &'static str) -> Fault {
        Fault::Error { status, code }
    }

    pub fn forward_then_error(status: u16, code: &'static str) -> Fault {
        Fault::ForwardThenError { status, code }
    }

    /// Whether the request reaches the emulator (and takes effect there).
    pub fn applies(&self) -> bool {
        matches!(
            self,
            Fault::ForwardThenHang(_) | Fault::ForwardThenError { .. } | Fault::ForwardThenDrop
        )
    }

    pub fn label(&self) -> String {
        match self {
            Fault::Error { status, code } => format!("{status} {code}"),
            Fault::Hang(_) => "hang".into(),
            Fault::Drop => "drop".into(),
            Fault::ForwardThenHang(_) => "forward then hang".into(),
            Fault::ForwardThenError { status, code } => format!("forward then {status} {code}"),
            Fault::ForwardThenDrop => "forward then drop".into(),
        }
    }
}

/// Which requests a rule looks at.
#[derive(Debug, Clone)]
enum Matcher {
    /// One operation, `dynamodb:PutItem`.
    Operation(String),
    /// Every operation of a service, `dynamodb`.
    Service(String),
}

impl Matcher {
    fn matches(&self, operation: &str) -> bool {
        match self {
            Matcher::Operation(op) => op == operation,
            Matcher::Service(service) => operation.split(':').next() == Some(service.as_str()),
        }
    }
}

#[derive(Debug)]
enum Plan {
    /// `times` matching requests get `fault`, after `skip` were let through.
    Counted { skip: u32, times: u32, fault: Fault },
    /// Every matching request gets `fault` until this instant.
    Until { until: Instant, fault: Fault },
    /// Each matching request gets one of `faults` (drawn evenly) with probability `rate`.
    Random {
        rate: f64,
        faults: Vec<Fault>,
        rng: fastrand::Rng,
    },
}

#[derive(Debug)]
struct Rule {
    matcher: Matcher,
    /// Operations the rule leaves alone (for a service-wide rule).
    except: Vec<String>,
    plan: Plan,
    matched: u32,
}

impl Rule {
    /// The fault this rule injects into this request, if any. A rule is asked only when no
    /// earlier rule injected one.
    fn next(&mut self, operation: &str) -> Option<Fault> {
        if !self.matcher.matches(operation) || self.except.iter().any(|e| e == operation) {
            return None;
        }
        self.matched += 1;
        match &mut self.plan {
            Plan::Counted { skip, times, fault } => {
                (self.matched > *skip && self.matched <= *skip + *times).then(|| fault.clone())
            }
            Plan::Until { until, fault } => (Instant::now() < *until).then(|| fault.clone()),
            Plan::Random { rate, faults, rng } => {
                let hit = rng.f64() < *rate && !faults.is_empty();
                hit.then(|| faults[rng.usize(..faults.len())].clone())
            }
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub operation: String,
    /// The fault injected into it, if any.
    pub fault: Option<String>,
    /// It reached the emulator (forwarded, with or without a fault after).
    pub forwarded: bool,
    /// A `TransactWriteItems` answered from its `ClientRequestToken`'s first answer.
    pub replayed: bool,
    /// The JSON body of a `SendEmail`.
    pub body: Option<Value>,
    /// The emulator's JSON answer to a forwarded `SendEmail` (whatever the client got).
    pub answer: Option<Value>,
}

/// The first answer to a `ClientRequestToken`.
#[derive(Debug, Clone)]
struct Replay {
    items: Value,
    at: Instant,
    answer: (String, Vec<(String, String)>, Vec<u8>),
}

#[derive(Debug, Default)]
struct Shared {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    tokens: HashMap<String, Replay>,
}

/// How long DynamoDB keeps a `ClientRequestToken`.
const TOKEN_WINDOW: Duration = Duration::from_secs(600);

/// The running proxy. Dropping it stops accepting connections.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    injected: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Faults injected by every proxy of this test binary.
static TOTAL_INJECTED: AtomicU64 = AtomicU64::new(0);

/// Faults injected so far by all proxies of this test binary.
pub fn total_injected() -> u64 {
    TOTAL_INJECTED.load(Ordering::SeqCst)
}

/// What one connection's requests share.
#[derive(Clone)]
struct Ctx {
    upstream: String,
    shared: Arc<Mutex<Shared>>,
    injected: Arc<AtomicU64>,
    /// Writes are writers, other DynamoDB requests readers: the process's one lock around
    /// the emulator, shared by every proxy (they all forward to the same moto).
    isolation: Arc<RwLock<()>>,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards to http:// only, not {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let injected = Arc::new(AtomicU64::new(0));
        let ctx = Ctx {
            upstream: authority,
            shared: shared.clone(),
            injected: injected.clone(),
            isolation: test_support::isolation::emulator_lock(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    // A connection error only ends that connection; the client sees it.
                    let _ = serve(client, &ctx).await;
                });
            }
        });
        FaultProxy {
            addr,
            shared,
            injected,
            task,
        }
    }

    /// The endpoint to give the SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, matcher: Matcher, except: &[&str], plan: Plan) {
        self.lock().rules.push(Rule {
            matcher,
            except: except.iter().map(|e| (*e).to_owned()).collect(),
            plan,
            matched: 0,
        });
    }

    /// Inject `fault` into the next `times` requests of `operation`.
    pub fn fail(&self, operation: &str, fault: Fault, times: u32) {
        self.fail_after(operation, 0, fault, times);
    }

    /// Let `skip` requests of `operation` through, then inject `fault` into `times` of them.
    pub fn fail_after(&self, operation: &str, skip: u32, fault: Fault, times: u32) {
        self.add(
            Matcher::Operation(operation.to_owned()),
            &[],
            Plan::Counted { skip, times, fault },
        );
    }

    /// Every request of `service` (`dynamodb`, `sesv2`, ...) gets `fault` for `length` from
    /// now: the service is down.
    pub fn outage(&self, service: &str, fault: Fault, length: Duration) {
        self.add(
            Matcher::Service(service.to_owned()),
            &[],
            Plan::Until {
                until: Instant::now() + length,
                fault,
            },
        );
    }

    /// Each request of `service` (but `except`) gets one of `faults` with probability `rate`,
    /// drawn from a generator seeded with `seed`: the same sequence of requests meets the
    /// same faults.
    pub fn random(&self, service: &str, except: &[&str], rate: f64, faults: Vec<Fault>, seed: u64) {
        self.add(
            Matcher::Service(service.to_owned()),
            except,
            Plan::Random {
                rate,
                faults,
                rng: fastrand::Rng::with_seed(seed),
            },
        );
    }

    /// Remove every rule.
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests of `operation` seen (attempts, retries included).
    pub fn attempts(&self, operation: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.operation == operation)
            .count()
    }

    /// Requests of `operation` that reached the emulator.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.operation == operation && s.forwarded)
            .count()
    }

    /// Requests per operation.
    pub fn operations(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.lock().seen {
            *out.entry(s.operation.clone()).or_default() += 1;
        }
        out
    }

    /// Faults injected, per label (`forward then 500 InternalFailure`, ...).
    pub fn faults(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.lock().seen {
            if let Some(f) = &s.fault {
                *out.entry(format!("{} {f}", s.operation)).or_default() += 1;
            }
        }
        out
    }

    /// `TransactWriteItems` answered from their token's first answer.
    pub fn replayed(&self) -> usize {
        self.lock().seen.iter().filter(|s| s.replayed).count()
    }

    /// The `SendEmail` requests that reached the emulator: (request body, the emulator's
    /// answer, which names the `MessageId` SES gave it).
    pub fn sent_emails_with_answers(&self) -> Vec<(Value, Option<Value>)> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.operation == "sesv2:SendEmail" && s.forwarded)
            .filter_map(|s| Some((s.body.clone()?, s.answer.clone())))
            .collect()
    }

    /// `SendEmail` requests the emulator accepted (its answer named a `MessageId`), whatever
    /// the client got back: the mails that went out.
    pub fn accepted_emails(&self) -> usize {
        self.sent_emails_with_answers()
            .iter()
            .filter(|(_, answer)| answer.as_ref().is_some_and(|a| a["MessageId"].is_string()))
            .count()
    }

    /// The bodies of the `SendEmail` requests that reached the emulator.
    pub fn sent_emails(&self) -> Vec<Value> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.operation == "sesv2:SendEmail" && s.forwarded)
            .filter_map(|s| s.body.clone())
            .collect()
    }

    /// Faults this proxy injected.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Forget what was seen (the rules stay).
    pub fn reset_seen(&self) {
        self.lock().seen.clear();
    }
}

/// A parsed request or response head.
#[derive(Debug)]
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<usize> {
        self.get("content-length").and_then(|v| v.trim().parse().ok())
    }
}

/// Serves one client connection: request after request.
async fn serve(mut client: TcpStream, ctx: &Ctx) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(&mut client, &mut buf).await? else {
            return Ok(());
        };
        let body = read_body(&mut client, &mut buf, &head, true).await?;
        let operation = operation_of(&head);
        let fault = {
            let mut s = ctx.lock();
            s.rules.iter_mut().find_map(|r| r.next(&operation))
        };
        if fault.is_some() {
            ctx.injected.fetch_add(1, Ordering::SeqCst);
            TOTAL_INJECTED.fetch_add(1, Ordering::SeqCst);
        }
        let forwarded = fault.as_ref().is_none_or(Fault::applies);
        let kept = (operation == "sesv2:SendEmail")
            .then(|| serde_json::from_slice::<Value>(&body).ok())
            .flatten();
        let index = {
            let mut s = ctx.lock();
            s.seen.push(Seen {
                operation: operation.clone(),
                fault: fault.as_ref().map(Fault::label),
                forwarded,
                replayed: false,
                body: kept,
                answer: None,
            });
            s.seen.len() - 1
        };
        match fault {
            None => {
                let (status, headers, body) =
                    forward_as_dynamodb_does(ctx, &operation, &head, &body, index).await?;
                respond(&mut client, &status, &headers, &body).await?;
            }
            Some(Fault::Error { status, code }) => {
                respond_error(&mut client, &operation, status, code).await?;
            }
            Some(Fault::Hang(d)) => {
                hold(&mut client, d).await;
                return Ok(());
            }
            Some(Fault::Drop) => return Ok(()),
            Some(Fault::ForwardThenHang(d)) => {
                forward_as_dynamodb_does(ctx, &operation, &head, &body, index).await?;
                hold(&mut client, d).await;
                return Ok(());
            }
            Some(Fault::ForwardThenError { status, code }) => {
                forward_as_dynamodb_does(ctx, &operation, &head, &body, index).await?;
                respond_error(&mut client, &operation, status, code).await?;
            }
            Some(Fault::ForwardThenDrop) => {
                forward_as_dynamodb_does(ctx, &operation, &head, &body, index).await?;
                return Ok(());
            }
        }
    }
}

async fn respond_error(client: &mut TcpStream, operation: &str, status: u16, code: &str) -> io::Result<()> {
    let (headers, body) = error_answer(operation, code);
    let status_line = format!("HTTP/1.1 {status} {}", reason(status));
    respond(client, &status_line, &headers, &body).await
}

type Answered = (String, Vec<(String, String)>, Vec<u8>);

/// The DynamoDB writes (besides transactions) that run alone, as DynamoDB makes them atomic.
const WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

/// Forwards one request, isolating transactions and answering a retried
/// `ClientRequestToken` from its first answer, as DynamoDB does.
async fn forward_as_dynamodb_does(
    ctx: &Ctx, operation: &str, head: &Head, body: &[u8], index: usize,
) -> io::Result<Answered> {
    if operation == "sesv2:SendEmail" {
        let answer = forward(&ctx.upstream, head, body).await?;
        if let Some(seen) = ctx.lock().seen.get_mut(index) {
            seen.answer = serde_json::from_slice(&answer.2).ok();
        }
        return Ok(answer);
    }
    if !operation.starts_with("dynamodb:") {
        return forward(&ctx.upstream, head, body).await;
    }
    if operation != "dynamodb:TransactWriteItems" {
        if WRITES.contains(&operation) {
            let _writer = ctx.isolation.write().await;
            return forward(&ctx.upstream, head, body).await;
        }
        let _reader = ctx.isolation.read().await;
        return forward(&ctx.upstream, head, body).await;
    }
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let token = doc["ClientRequestToken"].as_str().map(str::to_owned);
    let items = doc["TransactItems"].clone();
    let _writer = ctx.isolation.write().await;
    if let Some(token) = &token {
        let earlier = {
            let mut s = ctx.lock();
            s.tokens.retain(|_, r| r.at.elapsed() < TOKEN_WINDOW);
            s.tokens.get(token).cloned()
        };
        if let Some(replay) = earlier {
            if replay.items != items {
                let (headers, body) = error_answer(operation, "IdempotentParameterMismatchException");
                return Ok(("HTTP/1.1 400 Bad Request".into(), headers, body));
            }
            let mut s = ctx.lock();
            if let Some(seen) = s.seen.get_mut(index) {
                seen.replayed = true;
                seen.forwarded = false;
            }
            return Ok(replay.answer);
        }
    }
    let answer = forward(&ctx.upstream, head, body).await?;
    if let Some(token) = token {
        ctx.lock().tokens.insert(
            token,
            Replay {
                items,
                at: Instant::now(),
                answer: answer.clone(),
            },
        );
    }
    Ok(answer)
}

/// Waits `d` or until the client closes the connection, whichever comes first.
async fn hold(client: &mut TcpStream, d: Duration) {
    let mut sink = [0u8; 1024];
    let closed = async {
        loop {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = closed => {}
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The operation a request calls: `<service>:<Operation>`.
fn operation_of(head: &Head) -> String {
    if let Some(target) = head.get("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let service = if prefix.starts_with("DynamoDB") {
            "dynamodb"
        } else if prefix.starts_with("AWSCognitoIdentityProviderService") {
            "cognito"
        } else if prefix.starts_with("AmazonSQS") {
            "sqs"
        } else {
            "other"
        };
        return format!("{service}:{op}");
    }
    let mut parts = head.start.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    if path.starts_with("/v2/email/outbound-emails") && method == "POST" {
        return "sesv2:SendEmail".into();
    }
    if path.starts_with("/v2/email/") {
        return format!("sesv2:{method} {path}");
    }
    format!("other:{method} {path}")
}

/// An AWS error answer for `code`, in the protocol of the operation's service.
fn error_answer(operation: &str, code: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let service = operation.split(':').next().unwrap_or_default();
    let message = "injected by the reliability tests' fault proxy";
    let (content_type, body) = match service {
        "dynamodb" => (
            "application/x-amz-json-1.0",
            serde_json::json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message }),
        ),
        "cognito" => (
            "application/x-amz-json-1.1",
            serde_json::json!({ "__type": code, "message": message }),
        ),
        "sqs" => (
            "application/x-amz-json-1.0",
            serde_json::json!({ "__type": format!("com.amazonaws.sqs#{code}"), "message": message }),
        ),
        _ => ("application/json", serde_json::json!({ "message": message })),
    };
    let headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("x-amzn-errortype".to_owned(), code.to_owned()),
        ("x-amzn-requestid".to_owned(), uuid::Uuid::new_v4().to_string()),
    ];
    (headers, body.to_string().into_bytes())
}

/// Sends one request to the emulator on a fresh connection; returns its answer.
async fn forward(upstream: &str, head: &Head, body: &[u8]) -> io::Result<Answered> {
    let mut up = TcpStream::connect(upstream).await?;
    let mut out = format!("{}\r\n", head.start);
    for (k, v) in &head.headers {
        let lower = k.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "expect"
        ) {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    up.write_all(out.as_bytes()).await?;
    up.write_all(body).await?;
    up.flush().await?;
    let mut buf = Vec::new();
    let head = read_head(&mut up, &mut buf)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no answer from the emulator"))?;
    let status: u16 = head
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if status == 204 || status == 304 {
        Vec::new()
    } else {
        read_body(&mut up, &mut buf, &head, false).await?
    };
    Ok((head.start, head.headers, body))
}

async fn respond(
    client: &mut TcpStream, status_line: &str, headers: &[(String, String)], body: &[u8],
) -> io::Result<()> {
    let mut out = format!("{status_line}\r\n");
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: keep-alive\r\n\r\n",
        body.len()
    ));
    client.write_all(out.as_bytes()).await?;
    client.write_all(body).await?;
    client.flush().await
}

/// Reads more bytes into `buf`; false at end of stream.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = r.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads a head from `buf` (filling it as needed); `None` at a clean end of stream.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Option<Head>> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let raw: Vec<u8> = buf.drain(..end + 4).collect();
            let text = String::from_utf8_lossy(&raw[..end]).into_owned();
            let mut lines = text.split("\r\n");
            let start = lines.next().unwrap_or_default().to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Ok(Some(Head { start, headers }));
        }
        if !fill(r, buf).await? {
            if buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a truncated head"));
        }
    }
}

/// Reads the body that follows `head`. A request without a length has no body; a response
/// without one lasts until the connection closes.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R, buf: &mut Vec<u8>, head: &Head, is_request: bool,
) -> io::Result<Vec<u8>> {
    if head.is_chunked() {
        return read_chunked(r, buf).await;
    }
    match head.content_length() {
        Some(n) => {
            while buf.len() < n {
                if !fill(r, buf).await? {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a truncated body"));
                }
            }
            Ok(buf.drain(..n).collect())
        }
        None if is_request => Ok(Vec::new()),
        None => {
            while fill(r, buf).await? {}
            Ok(std::mem::take(buf))
        }
    }
}

async fn read_chunked<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if !fill(r, buf).await? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a truncated chunk"));
            }
        };
        let line: Vec<u8> = buf.drain(..line_end + 2).collect();
        let size_text = String::from_utf8_lossy(&line[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if let Some(i) = find(buf, b"\r\n") {
                    let trailer: Vec<u8> = buf.drain(..i + 2).collect();
                    if trailer.len() == 2 {
                        return Ok(body);
                    }
                } else if !fill(r, buf).await? {
                    return Ok(body);
                }
            }
        }
        while buf.len() < size + 2 {
            if !fill(r, buf).await? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a truncated chunk"));
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

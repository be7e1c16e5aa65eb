//! One function process and the Runtime API it talks to: spawn, wait for init, invoke,
//! capture its log lines, measure its memory, kill it.

use crate::server::{Lifecycle, Outcome, Pending, ReportedError, RuntimeApi};
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{oneshot, watch, Notify};

/// `AWS_LAMBDA_LOG_FORMAT`, as set by the function's `LoggingConfig.LogFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    fn as_env(self) -> &'static str {
        match self {
            LogFormat::Text => "Text",
            LogFormat::Json => "JSON",
        }
    }
}

/// How to run a function: its binary, the settings Lambda would give it, and its own
/// environment variables.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub binary: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME` (default: the binary's file name).
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB (reported only; no limit is enforced).
    pub memory_mb: u32,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// The invocation timeout: `Lambda-Runtime-Deadline-Ms` is now + this; past it the
    /// invocation fails and the process is stopped, as Lambda resets the environment.
    pub timeout: Duration,
    pub log_format: LogFormat,
    /// `AWS_LAMBDA_LOG_LEVEL` (set by `ApplicationLogLevel` with JSON logs).
    pub log_level: Option<String>,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION` (the function's env can override them).
    pub region: String,
    /// The function's own variables (table names, `AWS_ENDPOINT_URL`, ...); applied last.
    pub env: BTreeMap<String, String>,
    /// Start from this process's environment instead of an empty one (Lambda gives a
    /// function only its configured variables; `false` is the faithful default).
    pub inherit_env: bool,
    /// Also copy every log line to this process's stderr, prefixed with the function name.
    pub echo_logs: bool,
}

impl FunctionConfig {
    pub fn new(binary: impl Into<PathBuf>) -> FunctionConfig {
        let binary = binary.into();
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "function".to_owned());
        FunctionConfig {
            binary,
            name,
            memory_mb: 128,
            version: "$LATEST".to_owned(),
            timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            log_level: None,
            region: "us-east-1".to_owned(),
            env: BTreeMap::new(),
            inherit_env: false,
            echo_logs: std::env::var_os("LAMBDA_SIM_ECHO_LOGS").is_some(),
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.to_owned());
        self
    }

    pub fn region(mut self, region: &str) -> Self {
        self.region = region.to_owned();
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }

    pub fn envs<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }

    pub fn echo_logs(mut self, echo: bool) -> Self {
        self.echo_logs = echo;
        self
    }

    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:123456789012:function:{}",
            self.region, self.name
        )
    }
}

/// Which pipe a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line the function wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: String,
    /// Since the process was started.
    pub at: Duration,
}

#[derive(Default)]
struct Logs {
    lines: Mutex<Vec<LogLine>>,
    notify: Notify,
}

impl Logs {
    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<LogLine>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How the process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Since the process was started.
    pub after: Duration,
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => write!(f, "killed by signal {sig}"),
            (None, None) => f.write_str("exited"),
        }
    }
}

/// Everything that can go wrong running a function.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("could not bind the runtime API on loopback: {0}")]
    Bind(#[source] std::io::Error),
    #[error("could not start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the function reported an init error: {0}")]
    InitError(ReportedError),
    #[error("the function stopped {phase} ({exit}); its last log lines:\n{tail}")]
    Exited {
        phase: &'static str,
        exit: ExitInfo,
        tail: String,
    },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: &'static str, after: Duration },
    #[error("invocation {request_id} failed: {error}")]
    FunctionError {
        request_id: String,
        error: ReportedError,
        duration: Duration,
    },
}

/// The result of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// The response payload as JSON (`Value::String` of the text when it is not JSON,
    /// `Value::Null` when empty).
    pub response: Value,
    pub raw: Vec<u8>,
    /// From `invoke` to the response: what a synchronous caller waits.
    pub duration: Duration,
    /// From the event being handed to the runtime (`GET /next` answered) to the response:
    /// what Lambda bills as the invocation's duration.
    pub handler_duration: Duration,
}

impl Invocation {
    /// `statusCode` of an API Gateway proxy response.
    pub fn http_status(&self) -> Option<u16> {
        self.response["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
    }

    /// A header of an API Gateway proxy response (names are compared case-insensitively).
    pub fn http_header(&self, name: &str) -> Option<&str> {
        let headers = self.response["headers"].as_object()?;
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    /// The body of an API Gateway proxy response, decoded when `isBase64Encoded`.
    pub fn http_body(&self) -> Option<String> {
        let body = self.response["body"].as_str()?;
        if self.response["isBase64Encoded"].as_bool() == Some(true) {
            let bytes = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            Some(body.to_owned())
        }
    }

    /// The body of an API Gateway proxy response, parsed as JSON.
    pub fn http_json(&self) -> Option<Value> {
        self.http_body().and_then(|b| serde_json::from_str(&b).ok())
    }
}

/// A function process in its own execution environment. Killed when dropped.
pub struct Function {
    config: FunctionConfig,
    pid: u32,
    started_at: Instant,
    api: RuntimeApi,
    logs: Arc<Logs>,
    exit: watch::Receiver<Option<ExitInfo>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

/// Starts `binary` with `env` (plus the variables Lambda sets) against a fresh Runtime API.
pub async fn spawn_function<K: Into<String>, V: Into<String>>(
    binary: impl Into<PathBuf>, env: impl IntoIterator<Item = (K, V)>,
) -> Result<Function, SimError> {
    Function::spawn(FunctionConfig::new(binary).envs(env)).await
}

impl Function {
    /// Binds a Runtime API on `127.0.0.1:0` and starts the process against it.
    pub async fn spawn(config: FunctionConfig) -> Result<Function, SimError> {
        let api = RuntimeApi::start(config.function_arn())
            .await
            .map_err(SimError::Bind)?;
        let mut cmd = tokio::process::Command::new(&config.binary);
        if !config.inherit_env {
            cmd.env_clear();
            cmd.env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()),
            );
        }
        let task_root = config
            .binary
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        cmd.envs(lambda_env(&config, api.addr, task_root))
            .envs(&config.env)
            .current_dir(task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started_at = Instant::now();
        let mut child = cmd.spawn().map_err(|source| SimError::Spawn {
            binary: config.binary.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();

        let logs = Arc::new(Logs::default());
        let echo = config.echo_logs.then(|| config.name.clone());
        let readers = [
            child
                .stdout
                .take()
                .map(|o| read_lines(o, Stream::Stdout, logs.clone(), started_at, echo.clone())),
            child
                .stderr
                .take()
                .map(|e| read_lines(e, Stream::Stderr, logs.clone(), started_at, echo.clone())),
        ];
        let (exit_tx, exit_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // Let the readers take the last lines before the exit is announced.
            for reader in readers.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            let (code, signal) = match status {
                Ok(s) => (s.code(), unix_signal(&s)),
                Err(_) => (None, None),
            };
            let _ = exit_tx.send(Some(ExitInfo {
                code,
                signal,
                after: started_at.elapsed(),
            }));
        });
        Ok(Function {
            config,
            pid,
            started_at,
            api,
            logs,
            exit: exit_rx,
            kill: Mutex::new(Some(kill_tx)),
        })
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `AWS_LAMBDA_RUNTIME_API` of this function.
    pub fn runtime_api(&self) -> SocketAddr {
        self.api.addr
    }

    /// When the process was started.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Process start → first `GET /next`, once the runtime has asked for work.
    pub fn init_duration(&self) -> Option<Duration> {
        self.api
            .lifecycle
            .borrow()
            .first_next
            .map(|t| t.saturating_duration_since(self.started_at))
    }

    /// How the process ended, if it has.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.exit.borrow().clone()
    }

    /// Waits for the end of init (the first `GET /next`) and returns its duration. Fails
    /// with the reported init error, or with the exit and the last log lines when the process
    /// stopped first.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Duration, SimError> {
        let mut lifecycle = self.api.lifecycle.clone();
        let mut exit = self.exit.clone();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let state: Lifecycle = lifecycle.borrow_and_update().clone();
            if let Some(error) = state.init_error {
                return Err(SimError::InitError(error));
            }
            if let Some(first) = state.first_next {
                return Ok(first.saturating_duration_since(self.started_at));
            }
            if let Some(info) = exit.borrow_and_update().clone() {
                // An init error posted just before exiting wins over the bare exit.
                if let Some(error) = self.api.lifecycle.borrow().init_error.clone() {
                    return Err(SimError::InitError(error));
                }
                return Err(self.exited("during init", info));
            }
            tokio::select! {
                _ = lifecycle.changed() => {}
                _ = exit.changed() => {}
                _ = &mut deadline => return Err(SimError::Timeout { what: "the end of init", after: timeout }),
            }
        }
    }

    /// Sends `event` to the function and waits for its answer (at most the configured
    /// timeout). Invocations queue up like events for one execution environment.
    pub async fn invoke(&self, event: &Value) -> Result<Invocation, SimError> {
        self.invoke_raw(serde_json::to_vec(event).unwrap_or_default())
            .await
    }

    /// [`invoke`](Self::invoke) with a raw payload.
    pub async fn invoke_raw(&self, payload: Vec<u8>) -> Result<Invocation, SimError> {
        if let Some(error) = self.api.lifecycle.borrow().init_error.clone() {
            return Err(SimError::InitError(error));
        }
        let mut exit = self.exit.clone();
        if let Some(info) = exit.borrow_and_update().clone() {
            return Err(self.exited("before the invocation", info));
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = self.config.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (reply_tx, reply_rx) = oneshot::channel();
        let start = Instant::now();
        let pending = Pending {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            trace_id: trace_id(),
            reply: reply_tx,
        };
        if self.api.queue.send(pending).is_err() {
            return Err(SimError::Timeout {
                what: "a runtime API that is shut down",
                after: Duration::ZERO,
            });
        }
        let reply = tokio::select! {
            biased;
            reply = reply_rx => reply.ok(),
            _ = exit.wait_for(Option::is_some) => None,
            _ = tokio::time::sleep(timeout) => {
                self.kill_now();
                return Err(SimError::Timeout { what: "the invocation's response", after: timeout });
            }
        };
        let Some(reply) = reply else {
            let info = self.wait_exit(Duration::from_secs(5)).await.unwrap_or(ExitInfo {
                code: None,
                signal: None,
                after: self.started_at.elapsed(),
            });
            return Err(self.exited("during the invocation", info));
        };
        let duration = reply.at.saturating_duration_since(start);
        let handler_duration = reply.at.saturating_duration_since(reply.handed_at);
        match reply.outcome {
            Outcome::Response(raw) => {
                let response = if raw.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&raw)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
                };
                Ok(Invocation {
                    request_id,
                    response,
                    raw,
                    duration,
                    handler_duration,
                })
            }
            Outcome::Error(error) => Err(SimError::FunctionError {
                request_id,
                error,
                duration,
            }),
        }
    }

    /// Every line written so far, both streams, in arrival order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lines().clone()
    }

    /// The text of every line written so far to `stream`.
    pub fn lines(&self, stream: Stream) -> Vec<String> {
        self.logs
            .lines()
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.clone())
            .collect()
    }

    /// Every line written so far, both streams, joined with newlines.
    pub fn log_text(&self) -> String {
        self.logs
            .lines()
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits (at most `timeout`) for a line matching `matches`, including lines already written.
    pub async fn wait_for_log(
        &self, timeout: Duration, matches: impl Fn(&LogLine) -> bool,
    ) -> Option<LogLine> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.logs.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(line) = self.logs.lines().iter().find(|l| matches(l)) {
                return Some(line.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Peak resident set size (`VmHWM` of `/proc/<pid>/status`), in KiB, while the process runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// Current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// Kills the process and waits (at most 5 s) for it to end.
    pub async fn shutdown(self) -> Option<ExitInfo> {
        self.kill_now();
        self.wait_exit(Duration::from_secs(5)).await
    }

    /// Sends the process `SIGKILL` now, whatever it is doing (the host died, the memory ran
    /// out): an invocation in flight ends with [`SimError::Exited`]. Returns once the process
    /// has ended (at most 5 s).
    pub async fn kill(&self) -> Option<ExitInfo> {
        self.kill_now();
        self.wait_exit(Duration::from_secs(5)).await
    }

    fn kill_now(&self) {
        let sender = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = sender {
            let _ = tx.send(());
        }
    }

    async fn wait_exit(&self, timeout: Duration) -> Option<ExitInfo> {
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(timeout, exit.wait_for(Option::is_some)).await;
        waited.ok().and_then(|r| r.ok().and_then(|v| v.clone()))
    }

    fn exited(&self, phase: &'static str, exit: ExitInfo) -> SimError {
        let lines = self.logs.lines();
        let tail = lines
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        SimError::Exited { phase, exit, tail }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The variables the Lambda service sets for a `provided.al2023` function.
fn lambda_env(config: &FunctionConfig, addr: SocketAddr, task_root: &Path) -> BTreeMap<String, String> {
    let stream = format!("sim/[{}]{:016x}", config.version, fastrand::u64(..));
    let root = task_root.to_string_lossy().into_owned();
    let mut env: BTreeMap<String, String> = [
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", config.version.clone()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_LAMBDA_LOG_FORMAT", config.log_format.as_env().to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("LAMBDA_TASK_ROOT", root.clone()),
        ("LAMBDA_RUNTIME_DIR", root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(level) = &config.log_level {
        env.insert("AWS_LAMBDA_LOG_LEVEL".to_owned(), level.clone());
    }
    env
}

/// An X-Ray trace header like Lambda's: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "Root=1-{epoch:08x}-{:012x}{:012x};Parent={:016x};Sampled=0",
        fastrand::u64(..) & 0xffff_ffff_ffff,
        fastrand::u64(..) & 0xffff_ffff_ffff,
        fastrand::u64(..)
    )
}

fn read_lines(
    pipe: impl AsyncRead + Unpin + Send + 'static, stream: Stream, logs: Arc<Logs>, started_at: Instant,
    echo: Option<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(text)) = lines.next_line().await {
            if let Some(name) = &echo {
                eprintln!("[{name}] {text}");
            }
            logs.lines().push(LogLine {
                stream,
                text,
                at: started_at.elapsed(),
            });
            logs.notify.notify_waiters();
        }
    })
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(unix)]
fn unix_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn unix_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

//! Where the functions' init and first request go: a fresh process (this executable, run as
//! `bench probe-init`) goes through the steps of a function's `main` with a clock around
//! each, then makes the same DynamoDB read twice. The parent runs it several times and
//! reports the medians next to the cold-start figures.

use crate::report::{Report, Row};
use crate::stats::{dur, ratio, summarize};
use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const AREA: &str = "cold start";
pub const USER_VAR: &str = "BENCH_PROBE_USER";
/// The variants, each in its own fresh process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What the functions do today: `aws_config::load()` with the default credentials chain.
    Default,
    /// `aws_config` with the environment's credentials provider only (what Lambda gives a
    /// function), so the default chain (IMDS, ECS, SSO, STS clients) is never built.
    EnvCredentials,
    /// `EnvCredentials` plus one shared HTTPS client whose trust store holds only the Amazon
    /// roots (embedded), so the system's certificate store is never read.
    TrimmedTrust,
}

/// The CAs AWS endpoints chain to (Amazon Root CA 1-4, Starfield Services Root G2).
const AMAZON_ROOTS: &[u8] = include_bytes!("../amazon-roots.pem");

fn trimmed_https_client() -> anyhow::Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder().with_trust_store(trust).build()?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::EnvCredentials => "env-credentials",
            Mode::TrimmedTrust => "trimmed-trust",
        }
    }

    pub fn parse(arg: Option<&str>) -> Mode {
        match arg {
            Some("env-credentials") => Mode::EnvCredentials,
            Some("trimmed-trust") => Mode::TrimmedTrust,
            _ => Mode::Default,
        }
    }
}

const STEPS: &[&str] = &[
    "telemetry",
    "sdk_config",
    "messaging_clients",
    "deletion_clients",
    "first_get",
    "second_get",
];

fn ms(d: Duration) -> Value {
    json!(d.as_secs_f64() * 1e3)
}

/// The child: prints one JSON line of step → milliseconds.
pub async fn probe(mode: Mode) -> anyhow::Result<()> {
    let user = std::env::var(USER_VAR).with_context(|| format!("{USER_VAR} is not set"))?;
    let mut out = serde_json::Map::new();
    let t = Instant::now();
    http_api::telemetry::init();
    out.insert("telemetry".into(), ms(t.elapsed()));
    let t = Instant::now();
    let sdk = match mode {
        Mode::Default => aws_adapters::env::sdk_config().await,
        Mode::EnvCredentials => {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
                .load()
                .await
        }
        Mode::TrimmedTrust => {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
                .http_client(trimmed_https_client()?)
                .load()
                .await
        }
    };
    out.insert("sdk_config".into(), ms(t.elapsed()));
    let t = Instant::now();
    let messaging = aws_adapters::env::messaging_from_env(&sdk)?;
    out.insert("messaging_clients".into(), ms(t.elapsed()));
    let t = Instant::now();
    let deletion = aws_adapters::env::deletion_from_env(&sdk)?;
    out.insert("deletion_clients".into(), ms(t.elapsed()));
    drop(deletion);
    for step in ["first_get", "second_get"] {
        let t = Instant::now();
        messaging
            .profiles
            .get(&user)
            .await
            .map_err(|e| anyhow!("GetItem: {e}"))?
            .context("the probe user exists")?;
        out.insert(step.into(), ms(t.elapsed()));
    }
    println!("{}", Value::Object(out));
    Ok(())
}

/// The parent: `runs` fresh processes per variant; one row per variant with the medians.
pub fn breakdown(env: &BTreeMap<String, String>, user: &str, runs: usize) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut today = Duration::ZERO;
    for mode in [Mode::Default, Mode::EnvCredentials, Mode::TrimmedTrust] {
        let m = medians(mode, env, user, runs)?;
        // message-user's init work: tracing, SDK config, its two clients.
        let init = m["telemetry"] + m["sdk_config"] + m["messaging_clients"];
        if mode == Mode::Default {
            today = init;
        }
        let variant = match mode {
            Mode::Default => "as built today (aws_config::load, default clients)",
            Mode::EnvCredentials => "env credentials provider only",
            Mode::TrimmedTrust => "env credentials + one shared HTTPS client trusting only the Amazon roots",
        };
        report.push(
            Row::new(
                AREA,
                format!("init work of message-user in a fresh process, {variant} (median of {runs})"),
                format!(
                    "{} = config {} + clients {} (deletion_from's 3 clients {}); first GetItem {}, second {}",
                    dur(init),
                    dur(m["sdk_config"]),
                    dur(m["messaging_clients"]),
                    dur(m["deletion_clients"]),
                    dur(m["first_get"]),
                    dur(m["second_get"])
                ),
            )
            .baseline(
                format!("as built today {}", dur(today)),
                ratio(init.as_secs_f64(), today.as_secs_f64()),
            ),
        );
    }
    Ok(report)
}

fn medians(
    mode: Mode,
    env: &BTreeMap<String, String>,
    user: &str,
    runs: usize,
) -> anyhow::Result<BTreeMap<&'static str, Duration>> {
    let exe = std::env::current_exe()?;
    let mut samples: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for _ in 0..runs {
        let output = std::process::Command::new(&exe)
            .args(["probe-init", mode.arg()])
            .envs(env)
            .env(USER_VAR, user)
            .env("AWS_LAMBDA_FUNCTION_NAME", "probe")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .output()
            .context("running the init probe")?;
        if !output.status.success() {
            return Err(anyhow!(
                "the init probe failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let doc: Value =
            serde_json::from_str(line.lines().last().unwrap_or_default()).context("probe output")?;
        for step in STEPS {
            let v = doc[*step].as_f64().unwrap_or_default();
            samples
                .entry(step)
                .or_default()
                .push(Duration::from_secs_f64(v / 1e3));
        }
    }
    Ok(samples.into_iter().map(|(k, v)| (k, summarize(&v).p50)).collect())
}

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
/// The variants, each in its own fresh process (with `AWS_LAMBDA_FUNCTION_NAME` set, as in
/// Lambda).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What the functions do in Lambda: `aws_adapters::env::sdk_config()` (environment
    /// credentials, one shared HTTPS client trusting only the embedded Amazon roots).
    Lambda,
    /// The same with `SDK_SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS=true`: `aws_config::load()`
    /// with the default credentials chain and the system trust store.
    SwitchedBack,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Lambda => "lambda",
            Mode::SwitchedBack => "switched-back",
        }
    }

    pub fn parse(arg: Option<&str>) -> Mode {
        match arg {
            Some("switched-back") => Mode::SwitchedBack,
            _ => Mode::Lambda,
        }
    }
}

const STEPS: &[&str] = &[
    "telemetry",
    "sdk_config",
    "messaging_clients",
    "messaging_again",
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
    aws_adapters::telemetry::init();
    out.insert("telemetry".into(), ms(t.elapsed()));
    let t = Instant::now();
    // The parent sets the switch-back setting for `SwitchedBack`; both go through the code
    // the functions' `main` runs.
    anyhow::ensure!(
        (mode == Mode::SwitchedBack)
            == std::env::var_os(aws_adapters::sdk::SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS).is_some(),
        "probe-init {}: the switch-back setting does not match the mode",
        mode.arg()
    );
    let sdk = aws_adapters::env::sdk_config().await;
    out.insert("sdk_config".into(), ms(t.elapsed()));
    let t = Instant::now();
    let messaging = aws_adapters::env::messaging_from_env(&sdk)?;
    out.insert("messaging_clients".into(), ms(t.elapsed()));
    // The same clients again: each service's static set-up (its endpoint partition table,
    // parsed and its regexes compiled by the first client of that service) is done now.
    let t = Instant::now();
    drop(aws_adapters::env::messaging_from_env(&sdk)?);
    out.insert("messaging_again".into(), ms(t.elapsed()));
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
    let mut shipped = Duration::ZERO;
    for mode in [Mode::Lambda, Mode::SwitchedBack] {
        let m = medians(mode, env, user, runs)?;
        // message-user's init work: tracing, SDK config, its two clients.
        let init = m["telemetry"] + m["sdk_config"] + m["messaging_clients"];
        if mode == Mode::Lambda {
            shipped = init;
        }
        let variant = match mode {
            Mode::Lambda => "as shipped (env credentials, one HTTPS client trusting the Amazon roots)",
            Mode::SwitchedBack => {
                "with SDK_SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS=true (aws_config::load: default chain, system trust store)"
            }
        };
        report.push(
            Row::new(
                AREA,
                format!("init work of message-user in a fresh process, {variant} (median of {runs})"),
                format!(
                    "{} = tracing {} + config {} + clients {} (the same clients again {}; deletion_from's 3 \
                     clients {}); first GetItem {}, second {}",
                    dur(init),
                    dur(m["telemetry"]),
                    dur(m["sdk_config"]),
                    dur(m["messaging_clients"]),
                    dur(m["messaging_again"]),
                    dur(m["deletion_clients"]),
                    dur(m["first_get"]),
                    dur(m["second_get"])
                ),
            )
            .baseline(
                format!("as shipped {}", dur(shipped)),
                ratio(init.as_secs_f64(), shipped.as_secs_f64()),
            ),
        );
    }
    Ok(report)
}

fn medians(
    mode: Mode, env: &BTreeMap<String, String>, user: &str, runs: usize,
) -> anyhow::Result<BTreeMap<&'static str, Duration>> {
    let exe = std::env::current_exe()?;
    let mut samples: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for _ in 0..runs {
        let mut command = std::process::Command::new(&exe);
        command.args(["probe-init", mode.arg()]).envs(env);
        command.env_remove(aws_adapters::sdk::SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS);
        if mode == Mode::SwitchedBack {
            command.env(aws_adapters::sdk::SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS, "true");
        }
        let output = command
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

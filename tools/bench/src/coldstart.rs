//! Cold start of each function's binary against the Lambda Runtime API simulator, with the
//! hello-world `lambda_http` binary (`bench-hello`) as the baseline of the same run.
//!
//! Each start: spawn the process (env as in `infra/template.yaml`, SDK pointed at the
//! emulator) → wait for its first `GET /next` (init) → the first real request (cold) → the
//! same request again (warm) → peak RSS (`VmHWM`) → kill. Functions are interleaved start by
//! start so that drift on the machine hits every one alike.

use crate::report::{Report, Row};
use crate::stats::{dur, mib, ratio, summarize};
use crate::world::{self, World};
use anyhow::{anyhow, bail, Context};
use domain::model::RequestMeta;
use domain::types::UserId;
use http_api::event::ApiEvent;
use lambda_sim::{cargo, Function, FunctionConfig, Invocation, LogFormat};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const AREA: &str = "cold start";
/// Targets: init within 1.3x the hello world, the cold first answer within 1.2x the warm
/// one, peak RSS within 40 MB (10^6 bytes), the zip within 5 MiB.
const INIT_RATIO_TARGET: f64 = 1.3;
const COLD_WARM_TARGET: f64 = 1.2;
const RSS_TARGET_MB: f64 = 40.0;
const ZIP_TARGET_MIB: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hello,
    Message,
    Delete,
    List,
    Worker,
}

struct Subject {
    package: &'static str,
    kind: Kind,
    /// `Timeout` of the function in `infra/template.yaml` (the simulator's deadline).
    timeout: Duration,
    /// What the request is, for the table.
    request: &'static str,
}

const SUBJECTS: &[Subject] = &[
    Subject {
        package: "bench-hello",
        kind: Kind::Hello,
        timeout: Duration::from_secs(10),
        request: "GET /hello",
    },
    Subject {
        package: "message-user",
        kind: Kind::Message,
        timeout: Duration::from_secs(15),
        request: "POST /admin/users/{id}/messages (201)",
    },
    Subject {
        package: "delete-user",
        kind: Kind::Delete,
        timeout: Duration::from_secs(29),
        request: "DELETE /admin/users/{id} of a user with 15 items (200)",
    },
    Subject {
        package: "list-users",
        kind: Kind::List,
        timeout: Duration::from_secs(10),
        request: "GET /admin/users?limit=25 (200)",
    },
    Subject {
        package: "deletion-worker",
        kind: Kind::Worker,
        timeout: Duration::from_secs(120),
        request: "SQS continuation of a paused deletion job (15 items)",
    },
];

#[derive(Default)]
struct Sample {
    init: Vec<Duration>,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    peak_rss_kib: Vec<u64>,
}

pub struct Options {
    pub runs: usize,
    /// Use the binaries next to this executable instead of asking cargo.
    pub no_build: bool,
}

/// The release (or debug) executables of every subject.
fn binaries(no_build: bool) -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    let profile = cargo::Profile::current();
    if no_build {
        let dir = std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .context("no executable dir")?;
        return SUBJECTS
            .iter()
            .map(|s| {
                let path = dir.join(s.package);
                if path.is_file() {
                    Ok((s.package, path))
                } else {
                    Err(anyhow!(
                        "{} is missing: build it (`cargo build --{} -p {}`)",
                        path.display(),
                        profile.name(),
                        s.package
                    ))
                }
            })
            .collect();
    }
    eprintln!(
        "bench: building the function binaries ({} profile)...",
        profile.name()
    );
    let pairs: Vec<(&str, &str)> = SUBJECTS.iter().map(|s| (s.package, s.package)).collect();
    let built = cargo::build_bins(&pairs, profile, true)?;
    Ok(SUBJECTS
        .iter()
        .filter_map(|s| built.get(s.package).map(|p| (s.package, p.clone())))
        .collect())
}

/// Users and requests in the emulator.
struct Fixtures {
    world: World,
    owner: String,
    admin: String,
    message_target: String,
    deletion: domain::deletion::Deletion,
}

impl Fixtures {
    async fn new(emulator: &test_support::Emulator) -> anyhow::Result<Fixtures> {
        let world = World::new(emulator).await;
        let owner = world::fresh_id("bench-owner-");
        let admin = world::fresh_id("bench-admin-");
        let message_target = world::fresh_id("bench-msg-");
        world.put_user(&owner, "owner", false).await?;
        world.put_user(&admin, "admin", false).await?;
        world.put_user(&message_target, "user", false).await?;
        let deletion = aws_adapters::env::deletion_from(&world.lookup(), emulator.sdk())?;
        Ok(Fixtures {
            world,
            owner,
            admin,
            message_target,
            deletion,
        })
    }

    /// A user with a Cognito account and 3 items in each of the 5 user-data tables.
    async fn deletable_user(&self) -> anyhow::Result<String> {
        let id = world::fresh_id("bench-del-");
        self.world.put_user(&id, "user", true).await?;
        for table in domain::cascade::CASCADE_PLAN
            .iter()
            .filter(|t| t.name != "admin_messages")
        {
            self.world.seed_user_items(table, &id, 3).await?;
        }
        Ok(id)
    }

    /// A deletion job that ran out of budget at once: the worker's real work.
    async fn paused_job(&self) -> anyhow::Result<(String, String)> {
        let id = self.deletable_user().await?;
        let meta = RequestMeta {
            caller: Some(self.admin.clone()),
            request_id: world::fresh_id("bench-req-"),
            source_ip: Some("203.0.113.10".into()),
            user_agent: Some("bench".into()),
            token_issued_at: None,
        };
        let target = UserId::parse(&id).map_err(|e| anyhow!("user id: {e}"))?;
        let outcome = self
            .deletion
            .delete(&meta, &target, false, tokio::time::Instant::now())
            .await
            .map_err(|e| anyhow!("pausing a deletion job: {e}"))?;
        Ok((id, outcome.job().job_id.clone()))
    }

    /// The cold and the warm event: the same request (for deletions: the same request for
    /// another user seeded alike).
    async fn events(&self, kind: Kind) -> anyhow::Result<[Value; 2]> {
        Ok(match kind {
            Kind::Hello => {
                let e = ApiEvent::new("GET", "/hello").caller("bench").to_value();
                [e.clone(), e]
            }
            Kind::Message => {
                let e = ApiEvent::new("POST", "/admin/users/{userId}/messages")
                    .path_param("userId", &self.message_target)
                    .caller(&self.owner)
                    .json(&json!({ "subject": "A message from the benchmark", "body": "Hello,\n\nthis is a benchmark." }))
                    .to_value();
                [e.clone(), e]
            }
            Kind::Delete => {
                let event = |target: &str| {
                    ApiEvent::new("DELETE", "/admin/users/{userId}")
                        .path_param("userId", target)
                        .caller(&self.admin)
                        .to_value()
                };
                [
                    event(&self.deletable_user().await?),
                    event(&self.deletable_user().await?),
                ]
            }
            Kind::List => {
                let e = ApiEvent::new("GET", "/admin/users")
                    .query("limit", "25")
                    .caller(&self.admin)
                    .to_value();
                [e.clone(), e]
            }
            Kind::Worker => [
                sqs_event(self.paused_job().await?),
                sqs_event(self.paused_job().await?),
            ],
        })
    }
}

fn sqs_event((user_id, job_id): (String, String)) -> Value {
    let body = json!({ "user_id": user_id, "job_id": job_id }).to_string();
    json!({
        "Records": [{
            "messageId": uuid::Uuid::new_v4().to_string(),
            "receiptHandle": "AQEBbench-receipt-handle",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1764068400000",
                "SenderId": "AROAEXAMPLEID:delete-user",
                "ApproximateFirstReceiveTimestamp": "1764068400050"
            },
            "messageAttributes": {},
            "md5OfBody": "5d0a3e9f1c2b4a6d8e0f1a2b3c4d5e6f",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:teleperson-deletion-queue",
            "awsRegion": "us-east-1"
        }]
    })
}

/// The answer must be the real success, or the figure means nothing.
fn check(kind: Kind, answer: &Invocation, function: &Function) -> anyhow::Result<()> {
    let ok = match kind {
        Kind::Hello | Kind::List => answer.http_status() == Some(200),
        Kind::Message => answer.http_status() == Some(201),
        Kind::Delete => {
            answer.http_status() == Some(200)
                && answer.http_json().is_some_and(|b| b["status"] == "completed")
        }
        Kind::Worker => answer.response["batchItemFailures"]
            .as_array()
            .is_some_and(Vec::is_empty),
    };
    if !ok {
        bail!(
            "{:?} answered {} instead of the expected success; its logs:\n{}",
            kind,
            answer.response,
            function.log_text()
        );
    }
    Ok(())
}

fn function_env(world: &World) -> BTreeMap<String, String> {
    let mut env = world.function_env();
    for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if let Ok(v) = std::env::var(name) {
            env.insert(name.to_owned(), v);
        }
    }
    env
}

async fn one_start(
    subject: &Subject, binary: &Path, env: &BTreeMap<String, String>, events: [Value; 2], sample: &mut Sample,
) -> anyhow::Result<()> {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let config = FunctionConfig::new(binary)
        .name(subject.package)
        .memory_mb(256)
        .timeout(subject.timeout)
        .log_format(LogFormat::Json)
        .log_level("INFO")
        .region(&region)
        .envs(env.clone());
    let function = Function::spawn(config).await?;
    let init = function
        .wait_ready(Duration::from_secs(30))
        .await
        .with_context(|| format!("{} did not start", subject.package))?;
    let [cold_event, warm_event] = events;
    let cold = function
        .invoke(&cold_event)
        .await
        .with_context(|| format!("{}: cold invocation", subject.package))?;
    check(subject.kind, &cold, &function)?;
    let warm = function
        .invoke(&warm_event)
        .await
        .with_context(|| format!("{}: warm invocation", subject.package))?;
    check(subject.kind, &warm, &function)?;
    let rss = function.peak_rss_kib().unwrap_or_default();
    function.shutdown().await;
    sample.init.push(init);
    sample.cold.push(cold.handler_duration);
    sample.warm.push(warm.handler_duration);
    sample.peak_rss_kib.push(rss);
    Ok(())
}

/// Size of the binary after `strip` (a copy; the release profile strips already) and of
/// a deployment zip holding it as `bootstrap` (deflate, like `cargo lambda build --output-format zip`).
fn sizes(binary: &Path) -> anyhow::Result<(u64, u64)> {
    let dir = std::env::temp_dir().join(format!("bench-size-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("bootstrap");
    std::fs::copy(binary, &copy)?;
    // Best effort: without `strip` on the machine, the profile's own stripping is measured.
    let _ = std::process::Command::new("strip").arg(&copy).status();
    let stripped = std::fs::metadata(&copy)?.len();
    let zip = dir.join("bootstrap.zip");
    let script = "import sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n    z.write(sys.argv[1], 'bootstrap')\n";
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&copy)
        .arg(&zip)
        .status()
        .context("python3 (for the zip size)")?;
    if !status.success() {
        bail!("zipping {} failed", binary.display());
    }
    let zipped = std::fs::metadata(&zip)?.len();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((stripped, zipped))
}

pub async fn run(emulator: &test_support::Emulator, options: &Options) -> anyhow::Result<Report> {
    let binaries = binaries(options.no_build)?;
    let fixtures = Fixtures::new(emulator).await?;
    let env = function_env(&fixtures.world);
    let mut samples: BTreeMap<&str, Sample> = BTreeMap::new();
    eprintln!(
        "bench: cold start, {} starts of each of {} binaries",
        options.runs,
        SUBJECTS.len()
    );
    for run in 0..options.runs {
        for subject in SUBJECTS {
            let events = fixtures.events(subject.kind).await?;
            let sample = samples.entry(subject.package).or_default();
            one_start(subject, &binaries[subject.package], &env, events, sample).await?;
        }
        eprint!("\rbench: cold start run {}/{}", run + 1, options.runs);
    }
    eprintln!();

    let mut report = Report::default();
    let hello = &samples["bench-hello"];
    let hello_init = summarize(&hello.init);
    let hello_rss = hello.peak_rss_kib.iter().copied().max().unwrap_or_default();
    let (hello_bin, hello_zip) = sizes(&binaries["bench-hello"])?;
    for subject in SUBJECTS {
        let s = &samples[subject.package];
        let name = subject.package;
        let init = summarize(&s.init);
        let cold = summarize(&s.cold);
        let warm = summarize(&s.warm);
        let rss_kib = s.peak_rss_kib.iter().copied().max().unwrap_or_default();
        let rss_mib = rss_kib as f64 / 1024.0;
        let (bin, zip) = sizes(&binaries[name])?;
        let is_hello = subject.kind == Kind::Hello;
        let init_ratio = ratio(init.p50.as_secs_f64(), hello_init.p50.as_secs_f64());
        let mut init_row = Row::new(
            AREA,
            format!(
                "{name}: init (process start → first GET /next), p50 of {}",
                init.n
            ),
            format!("{} (p90 {})", dur(init.p50), dur(init.p90)),
        )
        .baseline(format!("bench-hello {}", dur(hello_init.p50)), init_ratio);
        if !is_hello {
            init_row = init_row.target(format!("≤ {INIT_RATIO_TARGET}x"), init_ratio <= INIT_RATIO_TARGET);
        }
        report.push(init_row);
        let cw = ratio(cold.p50.as_secs_f64(), warm.p50.as_secs_f64());
        let mut cw_row = Row::new(
            AREA,
            format!("{name}: first response cold vs warm, p50 — {}", subject.request),
            format!("cold {} (p90 {})", dur(cold.p50), dur(cold.p90)),
        )
        .baseline(format!("warm {}", dur(warm.p50)), cw);
        if !is_hello {
            cw_row = cw_row.target(format!("cold ≤ {COLD_WARM_TARGET}x warm"), cw <= COLD_WARM_TARGET);
        }
        report.push(cw_row);
        let mut rss_row = Row::new(
            AREA,
            format!("{name}: peak RSS (VmHWM, max of {})", s.peak_rss_kib.len()),
            format!("{rss_mib:.1} MiB"),
        )
        .baseline(
            format!("bench-hello {:.1} MiB", hello_rss as f64 / 1024.0),
            ratio(rss_kib as f64, hello_rss as f64),
        );
        if !is_hello {
            let rss_mb = rss_kib as f64 * 1024.0 / 1e6;
            rss_row = rss_row.target(format!("≤ {RSS_TARGET_MB} MB"), rss_mb <= RSS_TARGET_MB);
        }
        report.push(rss_row);
        let zip_mib = zip as f64 / (1024.0 * 1024.0);
        let mut size_row = Row::new(
            AREA,
            format!("{name}: stripped binary / deployment zip"),
            format!("{} / zip {}", mib(bin), mib(zip)),
        )
        .baseline(
            format!("bench-hello {} / zip {}", mib(hello_bin), mib(hello_zip)),
            ratio(zip as f64, hello_zip as f64),
        );
        if !is_hello {
            size_row = size_row.target(format!("zip ≤ {ZIP_TARGET_MIB} MiB"), zip_mib <= ZIP_TARGET_MIB);
        }
        report.push(size_row);
    }
    report.extend(crate::probe::breakdown(
        &env,
        &fixtures.owner,
        options.runs.min(10),
    )?);
    report.note(format!(
        "Cold start: {} starts per binary through lambda-sim (the Lambda Runtime API on loopback), interleaved; \
         256 MB, JSON logs, the SDK pointed at the emulator; response times are the runtime's handling time \
         (event handed out → response posted), like Lambda's billed duration. The cold request is the first \
         after init, the warm one the same request right after it (for deletions: the same request for another \
         user seeded alike). The \"init work\" rows time the steps of message-user's main in fresh processes \
         (`bench probe-init`, with AWS_LAMBDA_FUNCTION_NAME set): as shipped, and switched back to the system \
         trust store and default credentials chain; \"the same clients again\" is a second set of the same \
         clients in the same process, without each service's one-time set-up.",
        options.runs
    ));
    Ok(report)
}

//! Handler overhead: `message_user::handle` and `delete_user::handle` on the in-memory
//! backend, each call timed whole (API Gateway v2 event JSON → `lambda_http::request::from_str`
//! → handler → response). The baseline is the event parsing alone, timed the same way.

use crate::interruptions::{self, Interruptions, Meter};
use crate::report::{Report, Row};
use crate::stats::{dur, ratio, summarize, Summary};
use anyhow::bail;
use delete_user::DeleteApp;
use domain::cascade::CASCADE_PLAN;
use domain::deletion::DeletionSettings;
use domain::memory::InMemoryBackend;
use domain::messaging::MessagingSettings;
use domain::model::Profile;
use http_api::event::ApiEvent;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const AREA: &str = "handler overhead";
const P99_TARGET: Duration = Duration::from_micros(50);
/// Untimed calls first (allocator, lazy statics).
const WARM_UP: usize = 200;
fn profile(id: &str, role: &str) -> Profile {
    Profile::active(
        id,
        role,
        Some(&format!("{id}@example.com")),
        &format!("Bench {id}"),
        "2025-01-01T00:00:00.000Z",
    )
}

fn parse(event: &str) -> anyhow::Result<lambda_http::Request> {
    lambda_http::request::from_str(event).map_err(|e| anyhow::anyhow!("not an API Gateway v2 event: {e}"))
}

/// The machine's interruptions are sampled for this long every this many requests (20 windows
/// over 10,000 requests: 0.5 s in all, spread over the handler's whole run).
const METER_EVERY: usize = 500;
const METER_WINDOW: Duration = Duration::from_millis(25);

/// What one handler's run measured.
struct Measured {
    handle: Summary,
    parse_only: Summary,
    machine: Interruptions,
}

/// One handler's timings: each call whole (the event parsed, then handled), and the event
/// parsing alone; only the requests past the warm-up are kept.
struct Timings {
    handle: Vec<Duration>,
    parse_only: Vec<Duration>,
    /// The machine's interruptions, sampled every [`METER_EVERY`] requests.
    machine: Meter,
}

impl Timings {
    fn with_capacity(n: usize) -> Timings {
        Timings {
            handle: Vec::with_capacity(n),
            parse_only: Vec::with_capacity(n),
            machine: Meter::default(),
        }
    }

    /// Times request `i`: `event` parsed and handled by `call`, which must answer `expected`
    /// (`name` says who did not), then the parsing alone.
    async fn request<F, Fut>(
        &mut self, i: usize, event: &str, name: &str, expected: u16, call: F,
    ) -> anyhow::Result<()>
    where
        F: FnOnce(lambda_http::Request) -> Fut,
        Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>>,
    {
        let started = Instant::now();
        let response = call(parse(event)?).await;
        let took = started.elapsed();
        if response.status() != expected {
            bail!("{name} answered {}", response.status());
        }
        let started = Instant::now();
        std::hint::black_box(parse(event)?);
        let parsed = started.elapsed();
        if i >= WARM_UP {
            self.handle.push(took);
            self.parse_only.push(parsed);
            if (i - WARM_UP).is_multiple_of(METER_EVERY) {
                self.machine.sample(METER_WINDOW);
            }
        }
        Ok(())
    }

    fn summaries(&self) -> Measured {
        Measured {
            handle: summarize(&self.handle),
            parse_only: summarize(&self.parse_only),
            machine: self.machine.found(),
        }
    }
}

async fn message_user(n: usize) -> anyhow::Result<Measured> {
    // One backend for the whole run: every message goes to user-1, whose history the handler
    // reads before each send (the in-memory outbox indexes it by recipient, as the table's
    // GSI does, so the read costs the same on the first request and the ten-thousandth).
    let backend = InMemoryBackend::new();
    backend.put_profile(profile("owner-1", "owner"));
    backend.put_profile(profile("user-1", "user"));
    let app = message_user::MessageApp {
        messaging: backend.messaging(MessagingSettings::default()),
        tokens: http_api::request::TokenRules::new(http_api::event::CLIENT_ID),
    };
    let event = ApiEvent::new("POST", "/admin/users/{userId}/messages")
        .path_param("userId", "user-1")
        .caller("owner-1")
        .json(&json!({ "subject": "About your account", "body": "Hello,\n\nwe have updated your plan.\n\nThe Teleperson team" }))
        .to_value()
        .to_string();
    let mut timings = Timings::with_capacity(n);
    for i in 0..WARM_UP + n {
        timings
            .request(i, &event, "message_user::handle", 201, |req| {
                message_user::handle(&app, req)
            })
            .await?;
    }
    Ok(timings.summaries())
}

async fn delete_user(n: usize) -> anyhow::Result<Measured> {
    // One backend for the whole run: each request erases a user of its own.
    let backend = InMemoryBackend::new();
    backend.put_profile(profile("admin-1", "admin"));
    // No pause before the index tables' re-query: it is a wait for DynamoDB's indexes
    // (250 ms), not work of the handler, and the in-memory indexes never lag.
    let deletion = backend.deletion(DeletionSettings {
        requery_pause: Duration::ZERO,
        ..DeletionSettings::default()
    });
    let app = DeleteApp {
        deletion,
        budget: Duration::from_secs(20),
        tokens: http_api::request::TokenRules::new(http_api::event::CLIENT_ID),
    };
    let tables: Vec<_> = CASCADE_PLAN
        .iter()
        .filter(|t| t.name != "admin_messages")
        .collect();
    let mut timings = Timings::with_capacity(n);
    for i in 0..WARM_UP + n {
        // A user with a Cognito account and one item in each user-data table (not timed).
        let target = format!("user-{i:06}");
        backend.put_profile(profile(&target, "user"));
        backend.put_auth_user(&target);
        for t in &tables {
            let mut item = BTreeMap::new();
            for k in t.key {
                item.insert((*k).to_owned(), format!("{target}-{k}"));
            }
            item.insert("user_id".to_owned(), target.clone());
            backend.put_item(t, item);
        }
        let event = ApiEvent::new("DELETE", "/admin/users/{userId}")
            .path_param("userId", &target)
            .caller("admin-1")
            .to_value()
            .to_string();
        timings
            .request(i, &event, "delete_user::handle", 200, |req| {
                delete_user::handle(&app, req)
            })
            .await?;
    }
    Ok(timings.summaries())
}

pub async fn run(n: usize) -> anyhow::Result<Report> {
    eprintln!("bench: handler overhead, {n} requests each");
    let mut report = Report::default();
    let msg = message_user(n).await?;
    let del = delete_user(n).await?;
    for (name, what, measured) in [
        ("message_user::handle", "POST .../messages → 201", msg),
        (
            "delete_user::handle",
            "DELETE /admin/users/{id} (5 items, completed) → 200",
            del,
        ),
    ] {
        let Measured {
            handle: s,
            parse_only: p,
            machine,
        } = measured;
        report.push(
            Row::new(AREA, format!("{name} ({what}), p50 of {}", s.n), dur(s.p50)).baseline(
                format!("event parsing alone {}", dur(p.p50)),
                ratio(s.p50.as_secs_f64(), p.p50.as_secs_f64()),
            ),
        );
        report.push(
            Row::new(
                AREA,
                format!("{name}, p99 of {}", s.n),
                format!("{} (max {})", dur(s.p99), dur(s.max)),
            )
            .baseline(
                format!("event parsing alone {}", dur(p.p99)),
                ratio(s.p99.as_secs_f64(), p.p99.as_secs_f64()),
            )
            .target(format!("≤ {}", dur(P99_TARGET)), s.p99 <= P99_TARGET),
        );
        let chance = machine.chance_within(s.p50);
        report.push(
            Row::new(
                AREA,
                format!(
                    "{name}: the machine's interruptions during its run (gaps > {} between two clock reads, {} windows of {})",
                    dur(interruptions::THRESHOLD),
                    n.div_ceil(METER_EVERY),
                    dur(METER_WINDOW)
                ),
                format!(
                    "{:.0} per second, p50 {}, p90 {} (max {}); {:.1}% of the time",
                    machine.per_second,
                    dur(machine.lengths.p50),
                    dur(machine.lengths.p90),
                    dur(machine.lengths.max),
                    machine.share * 100.0
                ),
            )
            .baseline(
                format!(
                    "a request as long as its p50 is interrupted {:.2}% of the time; a p99 leaves out 1%",
                    chance * 100.0
                ),
                chance / 0.01,
            ),
        );
    }
    report.note(format!(
        "Handler overhead: on domain::memory::InMemoryBackend (one per handler for the whole run; \
         its outbox indexes a recipient's history as the table's GSI does), one request at a time, {WARM_UP} untimed warm-up calls \
         first; each timing covers lambda_http::request::from_str of the API Gateway v2 event \
         JSON plus the handler call. No tracing subscriber is installed (in Lambda, log output adds to this). \
         Past 1.00x on an \"interruptions\" row, more than one request in a hundred is expected to include an \
         interruption of the machine's (the kernel's tick, an interrupt, or the hypervisor taking the virtual CPU, which \
         the guest does not count as steal time), so that handler's p99 measures the machine as much as the code."
    ));
    Ok(report)
}

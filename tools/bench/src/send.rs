//! Message send latency against the emulator: the `Messaging` use case on aws-adapters, as
//! `message-user` builds it. The baseline is one `GetItem` round trip to the emulator.

use crate::report::{Report, Row};
use crate::stats::{dur, ratio, summarize};
use crate::world::{self, World};
use anyhow::{anyhow, Context};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::messaging::SendInput;
use domain::model::RequestMeta;
use domain::types::{MessageBody, Subject, UserId};
use std::time::Instant;

const AREA: &str = "message send";
const WARM_UP: usize = 10;

pub async fn run(emulator: &test_support::Emulator, n: usize) -> anyhow::Result<Report> {
    eprintln!("bench: message send latency, {n} sends");
    let world = World::new(emulator).await;
    let owner = world::fresh_id("bench-owner-");
    let target = world::fresh_id("bench-msg-");
    world.put_user(&owner, "owner", false).await?;
    world.put_user(&target, "user", false).await?;
    let messaging = aws_adapters::env::messaging_from(&world.lookup(), emulator.sdk())?;
    let meta = RequestMeta {
        caller: Some(owner.clone()),
        request_id: "bench".into(),
        source_ip: Some("203.0.113.10".into()),
        user_agent: Some("bench".into()),
        token_issued_at: None,
    };
    let input = || -> anyhow::Result<SendInput> {
        Ok(SendInput {
            target: UserId::parse(&target).map_err(|e| anyhow!("user id: {e}"))?,
            subject: Subject::parse(Some("A message from the benchmark"))
                .map_err(|e| anyhow!("subject: {e}"))?,
            body: MessageBody::parse("Hello,\n\nthis is a benchmark.").map_err(|e| anyhow!("body: {e}"))?,
            idempotency_key: None,
        })
    };
    let mut sends = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        let input = input()?;
        let started = Instant::now();
        messaging
            .send(&meta, input)
            .await
            .map_err(|e| anyhow!("send failed: {e}"))?;
        if i >= WARM_UP {
            sends.push(started.elapsed());
        }
    }
    // The baseline: one round trip to the emulator, same client settings as the adapters.
    let client = aws_sdk_dynamodb::Client::new(emulator.sdk());
    let profiles = world.table("PROFILES_TABLE");
    let mut trips = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        let started = Instant::now();
        client
            .get_item()
            .table_name(&profiles)
            .key("user_id", AttributeValue::S(target.clone()))
            .send()
            .await
            .context("GetItem")?;
        if i >= WARM_UP {
            trips.push(started.elapsed());
        }
    }
    let s = summarize(&sends);
    let t = summarize(&trips);
    let mut report = Report::default();
    report.push(
        Row::new(
            AREA,
            format!(
                "Messaging::send via aws-adapters (DynamoDB + SESv2 in the emulator), p50 of {}",
                s.n
            ),
            dur(s.p50),
        )
        .baseline(
            format!("one GetItem round trip {}", dur(t.p50)),
            ratio(s.p50.as_secs_f64(), t.p50.as_secs_f64()),
        ),
    );
    report.push(
        Row::new(
            AREA,
            format!("Messaging::send, p99 of {}", s.n),
            format!("{} (max {})", dur(s.p99), dur(s.max)),
        )
        .baseline(
            format!("one GetItem round trip {}", dur(t.p99)),
            ratio(s.p99.as_secs_f64(), t.p99.as_secs_f64()),
        ),
    );
    report.note(
        "Message send: sequential sends to one user (no idempotency key, no rate limit) after 10 untimed ones; \
         the ratio says how many emulator round trips one send costs.",
    );
    Ok(report)
}

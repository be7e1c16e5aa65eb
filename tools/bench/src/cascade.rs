//! The cascade at DynamoDB's limit: erasing one user's items from the 5 user-data tables
//! through the capacity model ([`crate::dynamo_model`]: a round-trip latency and a write
//! capacity per partition, in front of the emulator), three ways, each on the same data volume
//! seeded afresh (straight into the emulator; only the erase is timed):
//!
//! - ours: the whole delete routine through its public use case (`Deletion::delete` with the
//!   aws-adapters DynamoDB adapters: audit, lock-out, tombstone, cascade with the job saved
//!   after every page, Cognito delete, completion);
//! - bare: `Query` pages of keys + `BatchWriteItem`s of 25 (as many in flight as our adapter
//!   today), table after table, with no job, no audit, no Cognito;
//! - bare in parallel: the same loop on the five tables at once (what the floor assumes);
//! - naive: `Query` pages of keys + one `DeleteItem` at a time.
//!
//! Each is compared with the floor: the largest partition's items divided by its capacity.

use crate::dynamo_model::{Model, Proxy, Stats};
use crate::report::{Report, Row};
use crate::stats::{dur, ratio};
use crate::world::{self, lookup, World};
use anyhow::{anyhow, bail, Context};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::cascade::{CascadeTable, CASCADE_PLAN};
use domain::deletion::DeleteOutcome;
use domain::model::RequestMeta;
use domain::types::UserId;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::dynalite::Dynalite;

const AREA: &str = "cascade";
/// The target: our erase within 1.15x the partition floor.
const FLOOR_TARGET: f64 = 1.15;
/// Writes billed per erased item (the cascade's deletes plus every bookkeeping write).
const WRITES_PER_ITEM_TARGET: f64 = 1.02;
/// DynamoDB's write capacity of one partition; the model scales it down for the emulator.
pub const DYNAMODB_PARTITION_WCU: f64 = 1000.0;
/// Bare reads the same pages and keeps as many batches in flight as our adapter does today
/// (`DeletionSettings::page_size`, the adapter's `BATCHES_IN_FLIGHT`).
const PAGE: i32 = 250;
const IN_FLIGHT: usize = 4;
const BACKOFF_BASE: Duration = Duration::from_millis(25);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// Above this share of one core, a store (moto: one Python process; dynalite: one Node.js
/// process) is close enough to saturation that it, not the model, may be what limits an erase.
const EMULATOR_BUSY_LIMIT: f64 = 0.8;

pub struct Options {
    /// Items per erase (spread evenly over the 5 tables).
    pub items: usize,
    /// Items for the naive loop (a sample when smaller than `items`; its time is scaled up).
    pub naive_items: usize,
    pub model: Model,
}

fn tables() -> Vec<&'static CascadeTable> {
    CASCADE_PLAN
        .iter()
        .filter(|t| t.name != "admin_messages")
        .collect()
}

type Key = HashMap<String, AttributeValue>;

/// The floor of erasing `per_table` items from each table: every table holds one user's rows
/// in one partition (its own partition key, or its `by_user` index's), so the largest
/// partition has `per_table` items, and partitions write in parallel at `wcu_per_s` each.
pub fn floor(per_table: &[usize], wcu_per_s: f64) -> Duration {
    let largest = per_table.iter().copied().max().unwrap_or(0);
    Duration::from_secs_f64(largest as f64 / wcu_per_s)
}

/// Capped exponential backoff with full jitter (the adapter's policy).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    Duration::from_millis(fastrand::u64(
        0..=u64::try_from(ceiling.as_millis()).unwrap_or(2_000),
    ))
}

fn throttled<E: ProvideErrorMetadata>(err: &E) -> bool {
    matches!(
        err.code(),
        Some("ProvisionedThroughputExceededException" | "ThrottlingException")
    )
}

/// One page of a user's keys.
async fn page(
    client: &Client, physical: &str, table: &CascadeTable, user: &str, start: Option<Key>,
) -> anyhow::Result<(Vec<Key>, Option<Key>)> {
    let (index, attr) = lookup(table);
    let mut names = HashMap::from([("#u".to_owned(), attr.to_owned())]);
    let mut projection = Vec::new();
    for (i, k) in table.key.iter().enumerate() {
        names.insert(format!("#k{i}"), (*k).to_owned());
        projection.push(format!("#k{i}"));
    }
    let out = client
        .query()
        .table_name(physical)
        .set_index_name(index.map(str::to_owned))
        .key_condition_expression("#u = :u")
        .set_expression_attribute_names(Some(names))
        .expression_attribute_values(":u", AttributeValue::S(user.to_owned()))
        .projection_expression(projection.join(", "))
        .limit(PAGE)
        .set_exclusive_start_key(start)
        .send()
        .await
        .context("Query")?;
    let keys = out
        .items()
        .iter()
        .map(|item| {
            item.iter()
                .filter(|(k, _)| table.key.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    Ok((keys, out.last_evaluated_key().cloned()))
}

/// One batch until every request went through (`UnprocessedItems` and throttling answers are
/// retried with backoff).
async fn batch(client: &Client, physical: &str, keys: Vec<Key>) -> anyhow::Result<()> {
    let mut requests: Vec<WriteRequest> = keys
        .into_iter()
        .map(|k| {
            Ok(WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(k)).build()?)
                .build())
        })
        .collect::<anyhow::Result<_>>()?;
    let mut attempt = 0u32;
    while !requests.is_empty() {
        attempt += 1;
        match client
            .batch_write_item()
            .request_items(physical, requests.clone())
            .send()
            .await
        {
            Ok(out) => {
                requests = out
                    .unprocessed_items()
                    .and_then(|m| m.get(physical))
                    .cloned()
                    .unwrap_or_default();
            }
            Err(e) if e.as_service_error().is_some_and(throttled) => {}
            Err(e) => return Err(e).context("BatchWriteItem"),
        }
        if !requests.is_empty() {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Ok(())
}

/// One table's part of bare: pages of keys, `BatchWriteItem`s of 25, nothing else.
async fn erase_bare_table(
    client: &Client, world: &World, table: &CascadeTable, user: &str,
) -> anyhow::Result<()> {
    let physical = world.table(table.env_var);
    let mut start = None;
    loop {
        let (keys, next) = page(client, &physical, table, user, start).await?;
        let batches: Vec<Vec<Key>> = keys.chunks(25).map(<[Key]>::to_vec).collect();
        futures::stream::iter(batches.into_iter().map(|b| batch(client, &physical, b)))
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        match next {
            Some(k) => start = Some(k),
            None => return Ok(()),
        }
    }
}

/// Bare: table after table.
async fn erase_bare(client: &Client, world: &World, user: &str) -> anyhow::Result<()> {
    for table in tables() {
        erase_bare_table(client, world, table, user).await?;
    }
    Ok(())
}

/// Bare in parallel: every table at once, each as in bare.
async fn erase_bare_parallel(client: &Client, world: &World, user: &str) -> anyhow::Result<()> {
    futures::future::try_join_all(
        tables()
            .into_iter()
            .map(|t| erase_bare_table(client, world, t, user)),
    )
    .await?;
    Ok(())
}

/// Naive: pages of keys, one `DeleteItem` at a time.
async fn erase_naive(client: &Client, world: &World, user: &str) -> anyhow::Result<()> {
    for table in tables() {
        let physical = world.table(table.env_var);
        let mut start = None;
        loop {
            let (keys, next) = page(client, &physical, table, user, start).await?;
            for key in keys {
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    match client
                        .delete_item()
                        .table_name(&physical)
                        .set_key(Some(key.clone()))
                        .send()
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.as_service_error().is_some_and(throttled) => {
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                        Err(e) => return Err(e).context("DeleteItem"),
                    }
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
    }
    Ok(())
}

/// Seeds `per_table` items in each table for a fresh user (with a profile and a Cognito
/// user), straight into the emulator; returns the id.
async fn seed(world: &World, per_table: usize) -> anyhow::Result<String> {
    let user = world::fresh_id("bench-cascade-");
    world.put_user(&user, "user", true).await?;
    let started = Instant::now();
    futures::future::try_join_all(
        tables()
            .iter()
            .map(|t| world.seed_user_items(t, &user, per_table)),
    )
    .await?;
    eprintln!(
        "bench: seeded {} items in {:.1} s",
        per_table * tables().len(),
        started.elapsed().as_secs_f64()
    );
    Ok(user)
}

async fn assert_erased(world: &World, user: &str) -> anyhow::Result<()> {
    for table in tables() {
        let left = world.count_user_items(table, user).await?;
        if left != 0 {
            bail!("{left} items of {user} are left in {}", table.name);
        }
    }
    Ok(())
}

/// The capacity model in front of every store an erase writes to: the emulator, and the
/// user-data tables' own store when they have one (dynalite).
struct Models {
    emulator: Proxy,
    user_data: Option<Proxy>,
}

impl Models {
    fn all(&self) -> impl Iterator<Item = &Proxy> {
        std::iter::once(&self.emulator).chain(self.user_data.as_ref())
    }

    /// [`Proxy::start_span`] on every proxy; their counts as one.
    fn start_span(&self) -> Stats {
        self.all()
            .map(Proxy::start_span)
            .fold(Stats::default(), Stats::merged)
    }

    fn stats(&self) -> Stats {
        self.all().map(Proxy::stats).fold(Stats::default(), Stats::merged)
    }
}

/// One erase: its time, what the model saw, and how busy the stores were.
struct Measured {
    items: usize,
    /// When the erase began, and how long it took.
    started: Instant,
    took: Duration,
    model: Stats,
    emulator_cpu: Option<Duration>,
    /// dynalite's, when it holds the user-data tables.
    dynalite_cpu: Option<Duration>,
    own_cpu: Option<Duration>,
}

impl Measured {
    /// "moto 31% / dynalite 40% / bench 12% of a core" during the erase.
    fn load(&self) -> String {
        let pct = |cpu: Duration| 100.0 * cpu.as_secs_f64() / self.took.as_secs_f64();
        let measured = [
            ("moto", self.emulator_cpu),
            ("dynalite", self.dynalite_cpu),
            ("bench", self.own_cpu),
        ]
        .into_iter()
        .filter_map(|(who, cpu)| cpu.map(|c| format!("{who} {:.0}%", pct(c))))
        .collect::<Vec<_>>();
        if measured.is_empty() {
            String::new()
        } else {
            format!("{} of a core", measured.join(" / "))
        }
    }

    /// The busiest store's share of one core during the erase (`None`: not measured).
    fn busiest_store_share(&self) -> Option<f64> {
        let share = |cpu: Duration| cpu.as_secs_f64() / self.took.as_secs_f64();
        let emulator = self.emulator_cpu.map(share)?;
        Some(self.dynalite_cpu.map(share).map_or(emulator, |d| d.max(emulator)))
    }

    fn writes_per_item(&self) -> f64 {
        self.model.accepted() as f64 / self.items as f64
    }

    /// "1,234 throttled writes (56 whole calls refused)".
    fn throttling(&self) -> String {
        format!(
            "{} writes turned away, {} calls refused whole",
            self.model.throttled(),
            self.model.exceptions
        )
    }

    /// Per table: first → last accepted write, in the order the tables were written; then the
    /// time from the erase's start to its first delete and from its last delete to its end
    /// (the routine's other steps, the index re-queries and the last saves).
    fn spans(&self, world: &World) -> String {
        let mut spans: Vec<(Instant, Instant, String)> = tables()
            .iter()
            .filter_map(|t| {
                let s = self.model.tables.get(&world.table(t.env_var))?;
                let (first, last) = (s.first?, s.last?);
                Some((first, last, format!("{} {}", t.name, dur(last - first))))
            })
            .collect();
        spans.sort();
        let edges = spans
            .iter()
            .map(|(first, _, _)| *first)
            .min()
            .zip(spans.iter().map(|(_, last, _)| *last).max())
            .map(|(first, last)| {
                format!(
                    " (first delete {} after the start, end {} after the last delete)",
                    dur(first.saturating_duration_since(self.started)),
                    dur((self.started + self.took).saturating_duration_since(last))
                )
            })
            .unwrap_or_default();
        let list = spans
            .into_iter()
            .map(|(_, _, s)| s)
            .collect::<Vec<_>>()
            .join(", ");
        format!("{list}{edges}")
    }
}

/// Times `erase` on a freshly seeded user and checks that nothing is left.
async fn measure<F, Fut>(
    world: &World, models: &Models, per_table: usize, erase: F,
) -> anyhow::Result<Measured>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let user = seed(world, per_table).await?;
    let before = models.start_span();
    let emulator_before = world::emulator_pid().and_then(|p| world::cpu_time(&p));
    let dynalite_before = world::dynalite_pid().and_then(|p| world::cpu_time(&p));
    let own_before = world::cpu_time("self");
    let started = Instant::now();
    erase(user.clone()).await?;
    let took = started.elapsed();
    let cpu_since =
        |before: Option<Duration>, now: Option<Duration>| before.zip(now).map(|(a, b)| b.saturating_sub(a));
    let measured = Measured {
        items: per_table * tables().len(),
        started,
        took,
        model: models.stats().since(&before),
        emulator_cpu: cpu_since(
            emulator_before,
            world::emulator_pid().and_then(|p| world::cpu_time(&p)),
        ),
        dynalite_cpu: cpu_since(
            dynalite_before,
            world::dynalite_pid().and_then(|p| world::cpu_time(&p)),
        ),
        own_cpu: cpu_since(own_before, world::cpu_time("self")),
    };
    assert_erased(world, &user).await?;
    Ok(measured)
}

/// The whole delete routine for `user`, checked: completed, and its counts add up.
async fn erase_ours(
    deletion: &domain::deletion::Deletion, admin: &str, user: &str, items: usize,
) -> anyhow::Result<()> {
    let meta = RequestMeta {
        caller: Some(admin.to_owned()),
        request_id: world::fresh_id("bench-req-"),
        source_ip: Some("203.0.113.10".into()),
        user_agent: Some("bench".into()),
        token_issued_at: None,
    };
    let target = UserId::parse(user).map_err(|e| anyhow!("user id: {e}"))?;
    // The whole routine, under a budget it never reaches.
    let outcome = deletion
        .delete(
            &meta,
            &target,
            false,
            tokio::time::Instant::now() + Duration::from_secs(3600),
        )
        .await
        .map_err(|e| anyhow!("the delete routine failed: {e}"))?;
    let DeleteOutcome::Completed(job) = outcome else {
        bail!("the delete routine did not complete")
    };
    let counted: u64 = job.counts().values().sum();
    if counted != items as u64 {
        bail!("the routine counted {counted} deleted items, {items} were seeded");
    }
    Ok(())
}

/// The model's added latency as a client sees it: `GetItem` through the proxy vs straight
/// to the emulator, p50 of `n` each.
async fn calibrate(
    world: &World, proxied: &Client, user: &str, n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let table = world.table("PROFILES_TABLE");
    let mut direct = Vec::with_capacity(n);
    let mut through = Vec::with_capacity(n);
    for _ in 0..n {
        for (client, out) in [(&world.dynamo, &mut direct), (proxied, &mut through)] {
            let t = Instant::now();
            client
                .get_item()
                .table_name(&table)
                .key("user_id", AttributeValue::S(user.to_owned()))
                .send()
                .await
                .context("GetItem (calibration)")?;
            out.push(t.elapsed());
        }
    }
    Ok((
        crate::stats::summarize(&direct).p50,
        crate::stats::summarize(&through).p50,
    ))
}

/// With `dynalite` (`DYNALITE_ENDPOINT`, which scripts/bench.sh sets), the user-data tables
/// live there: dynalite reads an index as a range and keeps up with five partitions written at
/// capacity, while moto, which answers an index query by walking the whole table, keeps the
/// job, the audit log, profiles, Cognito and SQS.
pub async fn run(
    emulator: &test_support::Emulator, dynalite: Option<&Dynalite>, options: &Options,
) -> anyhow::Result<Report> {
    let mut world = World::new(emulator).await;
    if let Some(store) = dynalite {
        world.put_user_data_in(store).await;
    }
    let model = options.model;
    let proxy = Proxy::start(model, emulator.endpoint(), emulator.dynamodb()).await?;
    // Every client of the erase talks to a proxy (the emulator's forwards Cognito and SQS
    // untouched but for the latency); seeding and checks go straight to the stores.
    let proxied_sdk = emulator.sdk().to_builder().endpoint_url(proxy.endpoint()).build();
    let proxied = Client::new(&proxied_sdk);
    let (user_data_proxy, user_data_sdk) = match dynalite {
        Some(store) => {
            let p = Proxy::start(model, store.endpoint(), Client::new(store.sdk())).await?;
            let sdk = store.sdk().to_builder().endpoint_url(p.endpoint()).build();
            (Some(p), sdk)
        }
        None => (None, proxied_sdk.clone()),
    };
    let models = Models {
        emulator: proxy,
        user_data: user_data_proxy,
    };
    let proxied_user_data = Client::new(&user_data_sdk);
    let admin = world::fresh_id("bench-admin-");
    world.put_user(&admin, "admin", false).await?;
    let mut deletion = aws_adapters::env::deletion_from(&world.lookup(), &proxied_sdk)?;
    if dynalite.is_some() {
        deletion.user_data = Arc::new(aws_adapters::env::user_data_from(
            &world.lookup(),
            &user_data_sdk,
        )?);
    }
    let store = if dynalite.is_some() { "dynalite" } else { "moto" };

    let per_table = options.items / tables().len();
    let items = per_table * tables().len();
    let naive_per_table = options.naive_items.min(items) / tables().len();
    let naive_items = naive_per_table * tables().len();
    let floor = floor(&vec![per_table; tables().len()], model.wcu_per_s);
    let (direct_rtt, proxied_rtt) = calibrate(&world, &proxied, &admin, 50).await?;

    eprintln!(
        "bench: cascade under the model ({} WCU/s per partition, {} latency): floor {:.1} s for {items} items",
        model.wcu_per_s,
        dur(model.latency),
        floor.as_secs_f64()
    );
    eprintln!("bench: cascade: ours (the delete routine), {items} items");
    let ours = measure(&world, &models, per_table, |u| {
        let (deletion, admin) = (&deletion, &admin);
        async move { erase_ours(deletion, admin, &u, items).await }
    })
    .await?;
    eprintln!("bench: cascade: ours took {:.1} s", ours.took.as_secs_f64());
    eprintln!("bench: cascade: bare BatchWriteItem loop, {items} items");
    let bare = measure(&world, &models, per_table, |u| {
        let (proxied, world) = (&proxied_user_data, &world);
        async move { erase_bare(proxied, world, &u).await }
    })
    .await?;
    eprintln!("bench: cascade: bare took {:.1} s", bare.took.as_secs_f64());
    eprintln!("bench: cascade: bare loop on the five tables in parallel, {items} items");
    let parallel = measure(&world, &models, per_table, |u| {
        let (proxied, world) = (&proxied_user_data, &world);
        async move { erase_bare_parallel(proxied, world, &u).await }
    })
    .await?;
    eprintln!(
        "bench: cascade: bare in parallel took {:.1} s",
        parallel.took.as_secs_f64()
    );
    eprintln!("bench: cascade: naive DeleteItem loop, {naive_items} items");
    let naive = measure(&world, &models, naive_per_table, |u| {
        let (proxied, world) = (&proxied_user_data, &world);
        async move { erase_naive(proxied, world, &u).await }
    })
    .await?;
    eprintln!("bench: cascade: naive took {:.1} s", naive.took.as_secs_f64());
    // A sample's time scaled to the full volume (below capacity, one at a time: linear).
    let naive_took = naive.took.mul_f64(items as f64 / naive_items as f64);

    let mut report = Report::default();
    let floor_text = format!(
        "floor {:.1} s ({per_table} items in the largest partition / {} WCU/s)",
        floor.as_secs_f64(),
        model.wcu_per_s
    );
    let vs_floor = |took: Duration| ratio(took.as_secs_f64(), floor.as_secs_f64());
    report.push(
        Row::new(
            AREA,
            format!(
                "erase one user's {items} items over 5 tables under the capacity model: our delete routine \
                 (Deletion::delete on aws-adapters)"
            ),
            format!(
                "{:.1} s ({:.0} items/s); {}",
                ours.took.as_secs_f64(),
                items as f64 / ours.took.as_secs_f64(),
                ours.throttling()
            ),
        )
        .baseline(floor_text.clone(), vs_floor(ours.took))
        .target(
            format!("≤ {FLOOR_TARGET}x floor"),
            vs_floor(ours.took) <= FLOOR_TARGET,
        ),
    );
    report.push(
        Row::new(
            AREA,
            format!(
                "the same erase: bare loop (Query pages of {PAGE} + BatchWriteItem of 25, {IN_FLIGHT} in flight, table \
                 after table)"
            ),
            format!(
                "{:.1} s ({:.0} items/s); {}",
                bare.took.as_secs_f64(),
                items as f64 / bare.took.as_secs_f64(),
                bare.throttling()
            ),
        )
        .baseline(floor_text.clone(), vs_floor(bare.took)),
    );
    report.push(
        Row::new(
            AREA,
            "the same erase: the bare loop on the five tables in parallel (reference for a parallel routine)",
            format!(
                "{:.1} s ({:.0} items/s); {}",
                parallel.took.as_secs_f64(),
                items as f64 / parallel.took.as_secs_f64(),
                parallel.throttling()
            ),
        )
        .baseline(floor_text.clone(), vs_floor(parallel.took)),
    );
    let sample = if naive_items < items {
        format!(" (timed on {naive_items} items, scaled)")
    } else {
        String::new()
    };
    report.push(
        Row::new(
            AREA,
            "the same erase: naive loop (Query pages + one DeleteItem at a time)",
            format!(
                "{:.1} s{sample} ({:.0} items/s); {}",
                naive_took.as_secs_f64(),
                naive_items as f64 / naive.took.as_secs_f64(),
                naive.throttling()
            ),
        )
        .baseline(floor_text, vs_floor(naive_took)),
    );
    report.push(
        Row::new(
            AREA,
            "our delete routine vs the bare loop (time)",
            format!("{:.1} s", ours.took.as_secs_f64()),
        )
        .baseline(
            format!("bare {:.1} s", bare.took.as_secs_f64()),
            ratio(ours.took.as_secs_f64(), bare.took.as_secs_f64()),
        ),
    );
    let wpi = ours.writes_per_item();
    report.push(
        Row::new(
            AREA,
            "writes per erased item, our delete routine (every write DynamoDB accepted during the erase / items)",
            format!("{wpi:.4} ({} writes for {items} items)", ours.model.accepted()),
        )
        .baseline(
            format!("bare {:.4}", bare.writes_per_item()),
            ratio(wpi, bare.writes_per_item()),
        )
        .target(format!("≤ {WRITES_PER_ITEM_TARGET}"), wpi <= WRITES_PER_ITEM_TARGET),
    );
    report.push(
        Row::new(
            AREA,
            "model check: GetItem through the model vs straight to the emulator, p50 of 50; load during each erase",
            format!(
                "{} through the model; ours: {}; bare: {}; bare in parallel: {}; naive: {}",
                dur(proxied_rtt),
                ours.load(),
                bare.load(),
                parallel.load(),
                naive.load()
            ),
        )
        .baseline(
            format!("direct {}", dur(direct_rtt)),
            ratio(proxied_rtt.as_secs_f64(), direct_rtt.as_secs_f64()),
        )
        .target(
            format!(
                "each store < {:.0}% of a core in every erase (else a store, not the model, set the pace)",
                EMULATOR_BUSY_LIMIT * 100.0
            ),
            [&ours, &bare, &parallel, &naive]
                .iter()
                .all(|m| m.busiest_store_share().is_some_and(|s| s < EMULATOR_BUSY_LIMIT)),
        ),
    );
    let stores = if dynalite.is_some() {
        "the user-data tables in dynalite (whose index queries are range reads), the job, audit log, \
         profiles, Cognito and SQS in moto"
    } else {
        "every table in moto (no DYNALITE_ENDPOINT)"
    };
    report.note(format!(
        "Cascade: {items} items ({per_table} in each of transactions, followed_companies, billing_records, sessions, \
         help_requests) seeded afresh straight into {store} before each erase; only the erase is timed, \
         through the capacity model: a proxy in front of each store ({stores}) adding {} to every request and \
         allowing {} WCU/s per partition (DynamoDB: {DYNAMODB_PARTITION_WCU}; scaled down so that no store is \
         the limit) as a token bucket of {} per table + partition key value and per GSI + its partition key \
         value; what does not fit comes back in UnprocessedItems, or as ProvisionedThroughputExceededException \
         (HTTP 400) when nothing in the call fits. One user's rows share one partition in each table (its own \
         key in transactions, followed_companies, billing_records; the by_user index in sessions and \
         help_requests), so the floor is the largest partition's items / its capacity. Per table, first to \
         last accepted delete — ours: {}; bare: {}; bare in parallel: {}.",
        dur(model.latency),
        model.wcu_per_s,
        model.depth(),
        ours.spans(&world),
        bare.spans(&world),
        parallel.spans(&world),
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_largest_partition_over_its_capacity() {
        assert_eq!(
            floor(&[4000, 4000, 4000, 4000, 4000], 250.0),
            Duration::from_secs(16)
        );
        assert_eq!(floor(&[100, 3000, 50], 1000.0), Duration::from_secs(3));
        assert_eq!(floor(&[], 1000.0), Duration::ZERO);
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
    }
}

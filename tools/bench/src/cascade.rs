//! Cascade throughput: erasing one user's items from the 5 user-data tables in the
//! emulator, three ways, each on the same data volume seeded afresh (only the erase is
//! timed):
//!
//! - ours: the whole delete routine (`Deletion::delete` on aws-adapters: audit, lock-out,
//!   tombstone, cascade with the job saved after every page, Cognito delete, completion);
//! - bare (ceiling): `Query` pages of keys + `BatchWriteItem`s of 25 (as many in flight as
//!   our adapter), with no job, no audit, no Cognito;
//! - naive (floor): `Query` pages of keys + one sequential `DeleteItem` per item.

use crate::report::{Report, Row};
use crate::world::{self, lookup, World};
use anyhow::{anyhow, bail, Context};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use domain::cascade::{CascadeTable, CASCADE_PLAN};
use domain::deletion::DeleteOutcome;
use domain::model::RequestMeta;
use domain::types::UserId;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const AREA: &str = "cascade";
const NAIVE_FLOOR_TARGET: f64 = 20.0;
const BARE_CEILING_TARGET: f64 = 0.8;
/// The same page size and batches in flight as our routine (`DeletionSettings::page_size`,
/// the adapter's `BATCHES_IN_FLIGHT`), so that "bare" differs only by the bookkeeping.
const PAGE: i32 = 250;
const IN_FLIGHT: usize = 4;

pub struct Options {
    /// Items per erase (spread evenly over the 5 tables).
    pub items: usize,
    /// Items for the naive loop (a sample when smaller than `items`).
    pub naive_items: usize,
    /// Erases of ours and of bare, alternating; the best of each counts.
    pub rounds: usize,
}

fn tables() -> Vec<&'static CascadeTable> {
    CASCADE_PLAN
        .iter()
        .filter(|t| t.name != "admin_messages")
        .collect()
}

type Key = HashMap<String, AttributeValue>;

/// One page of a user's keys.
async fn page(
    world: &World,
    table: &CascadeTable,
    user: &str,
    start: Option<Key>,
) -> anyhow::Result<(Vec<Key>, Option<Key>)> {
    let (index, attr) = lookup(table);
    let mut names = HashMap::from([("#u".to_owned(), attr.to_owned())]);
    let mut projection = Vec::new();
    for (i, k) in table.key.iter().enumerate() {
        names.insert(format!("#k{i}"), (*k).to_owned());
        projection.push(format!("#k{i}"));
    }
    let out = world
        .dynamo
        .query()
        .table_name(world.table(table.env_var))
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

async fn batch(world: &World, physical: &str, keys: Vec<Key>) -> anyhow::Result<()> {
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
        let out = world
            .dynamo
            .batch_write_item()
            .request_items(physical, requests)
            .send()
            .await
            .context("BatchWriteItem")?;
        requests = out
            .unprocessed_items()
            .and_then(|m| m.get(physical))
            .cloned()
            .unwrap_or_default();
        attempt += 1;
        if !requests.is_empty() {
            tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt.min(6)))).await;
        }
    }
    Ok(())
}

/// The ceiling: pages of keys, `BatchWriteItem`s of 25, nothing else.
async fn erase_bare(world: &World, user: &str) -> anyhow::Result<()> {
    for table in tables() {
        let physical = world.table(table.env_var);
        let mut start = None;
        loop {
            let (keys, next) = page(world, table, user, start).await?;
            let batches: Vec<Vec<Key>> = keys.chunks(25).map(<[Key]>::to_vec).collect();
            futures::stream::iter(batches.into_iter().map(|b| batch(world, &physical, b)))
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
    }
    Ok(())
}

/// The floor: pages of keys, one `DeleteItem` at a time.
async fn erase_naive(world: &World, user: &str) -> anyhow::Result<()> {
    for table in tables() {
        let physical = world.table(table.env_var);
        let mut start = None;
        loop {
            let (keys, next) = page(world, table, user, start).await?;
            for key in keys {
                world
                    .dynamo
                    .delete_item()
                    .table_name(&physical)
                    .set_key(Some(key))
                    .send()
                    .await
                    .context("DeleteItem")?;
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
    }
    Ok(())
}

/// Seeds `items` items for a fresh user (with a profile and a Cognito user); returns the id.
async fn seed(world: &World, items: usize) -> anyhow::Result<String> {
    let user = world::fresh_id("bench-cascade-");
    world.put_user(&user, "user", true).await?;
    let tables = tables();
    let per_table = items / tables.len();
    let started = Instant::now();
    futures::future::try_join_all(tables.iter().map(|t| world.seed_user_items(t, &user, per_table))).await?;
    eprintln!(
        "bench: seeded {} items in {:.1} s",
        per_table * tables.len(),
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

struct Measured {
    items: usize,
    took: Duration,
    /// CPU the emulator and this process used during the erase.
    emulator_cpu: Option<Duration>,
    own_cpu: Option<Duration>,
}

/// CPU clocks around an erase.
struct Clocks {
    started: Instant,
    emulator: Option<Duration>,
    own: Option<Duration>,
}

impl Clocks {
    fn start() -> Clocks {
        Clocks {
            started: Instant::now(),
            emulator: world::emulator_pid().and_then(|p| world::cpu_time(&p)),
            own: world::cpu_time("self"),
        }
    }

    fn stop(self, items: usize) -> Measured {
        let took = self.started.elapsed();
        let emulator_cpu = self
            .emulator
            .zip(world::emulator_pid().and_then(|p| world::cpu_time(&p)))
            .map(|(a, b)| b.saturating_sub(a));
        let own_cpu = self
            .own
            .zip(world::cpu_time("self"))
            .map(|(a, b)| b.saturating_sub(a));
        Measured {
            items,
            took,
            emulator_cpu,
            own_cpu,
        }
    }
}

impl Measured {
    fn rate(&self) -> f64 {
        self.items as f64 / self.took.as_secs_f64()
    }

    /// "emulator 97% / bench 12% of one core" during the erase.
    fn load(&self) -> String {
        let pct = |cpu: Duration| 100.0 * cpu.as_secs_f64() / self.took.as_secs_f64();
        match (self.emulator_cpu, self.own_cpu) {
            (Some(e), Some(o)) => format!("emulator {:.0}% / bench {:.0}% of a core", pct(e), pct(o)),
            (None, Some(o)) => format!("bench {:.0}% of a core", pct(o)),
            _ => String::new(),
        }
    }
}

async fn erase_ours(
    world: &World,
    deletion: &domain::deletion::Deletion,
    admin: &str,
    items: usize,
) -> anyhow::Result<Measured> {
    let user = seed(world, items).await?;
    let meta = RequestMeta {
        caller: Some(admin.to_owned()),
        request_id: world::fresh_id("bench-req-"),
        source_ip: Some("203.0.113.10".into()),
        user_agent: Some("bench".into()),
        token_issued_at: None,
    };
    let target = UserId::parse(&user).map_err(|e| anyhow!("user id: {e}"))?;
    let clocks = Clocks::start();
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
    let measured = clocks.stop(items);
    let DeleteOutcome::Completed(job) = outcome else {
        bail!("the delete routine did not complete")
    };
    let counted: u64 = job.counts().values().sum();
    if counted != items as u64 {
        bail!("the routine counted {counted} deleted items, {items} were seeded");
    }
    assert_erased(world, &user).await?;
    Ok(measured)
}

async fn erase_with<'a, F, Fut>(world: &'a World, items: usize, erase: F) -> anyhow::Result<Measured>
where
    F: FnOnce(&'a World, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let user = seed(world, items).await?;
    let clocks = Clocks::start();
    erase(world, user.clone()).await?;
    let measured = clocks.stop(items);
    assert_erased(world, &user).await?;
    Ok(measured)
}

fn best(runs: &[Measured]) -> Option<&Measured> {
    runs.iter().min_by_key(|m| m.took)
}

pub async fn run(emulator: &test_support::Emulator, options: &Options) -> anyhow::Result<Report> {
    let world = World::new(emulator).await;
    let admin = world::fresh_id("bench-admin-");
    world.put_user(&admin, "admin", false).await?;
    let deletion = aws_adapters::env::deletion_from(&world.lookup(), emulator.sdk())?;
    let per_table = options.items / tables().len();
    let items = per_table * tables().len();
    let naive_items = (options.naive_items.min(items) / tables().len()) * tables().len();
    let rounds = options.rounds.max(1);

    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for round in 1..=rounds {
        eprintln!("bench: cascade round {round}/{rounds}: ours (the delete routine), {items} items");
        ours.push(erase_ours(&world, &deletion, &admin, items).await?);
        eprintln!("bench: cascade round {round}/{rounds}: bare Query + BatchWriteItem, {items} items");
        bare.push(erase_with(&world, items, |w, u| async move { erase_bare(w, &u).await }).await?);
    }
    eprintln!("bench: cascade: naive sequential DeleteItem, {naive_items} items");
    let naive = erase_with(
        &world,
        naive_items,
        |w, u| async move { erase_naive(w, &u).await },
    )
    .await?;
    let (Some(ours), Some(bare)) = (best(&ours), best(&bare)) else {
        bail!("no cascade round ran")
    };

    let mut report = Report::default();
    let vs_naive = ours.rate() / naive.rate();
    let vs_bare = ours.rate() / bare.rate();
    let sample = if naive_items < items {
        format!(", naive on a sample of {naive_items}")
    } else {
        String::new()
    };
    let of = if rounds > 1 {
        format!("best of {rounds}, ")
    } else {
        String::new()
    };
    report.push(
        Row::new(
            AREA,
            format!("our delete routine ({of}{items} items over 5 tables{sample}): items/s vs naive DeleteItem loop"),
            format!("{:.0} items/s ({:.1} s)", ours.rate(), ours.took.as_secs_f64()),
        )
        .baseline(format!("naive {:.0} items/s ({:.1} s)", naive.rate(), naive.took.as_secs_f64()), vs_naive)
        .target(format!("≥ {NAIVE_FLOOR_TARGET}x naive"), vs_naive >= NAIVE_FLOOR_TARGET),
    );
    report.push(
        Row::new(
            AREA,
            format!("our delete routine ({of}{items} items): items/s vs bare Query + BatchWriteItem loop"),
            format!("{:.0} items/s", ours.rate()),
        )
        .baseline(
            format!(
                "bare {:.0} items/s ({:.1} s)",
                bare.rate(),
                bare.took.as_secs_f64()
            ),
            vs_bare,
        )
        .target(
            format!("≥ {BARE_CEILING_TARGET}x bare"),
            vs_bare >= BARE_CEILING_TARGET,
        ),
    );
    report.push(
        Row::new(
            AREA,
            "emulator check: bare loop (ceiling) vs naive loop (floor); CPU used during each erase",
            format!(
                "bare {:.0} items/s ({}); ours: {}",
                bare.rate(),
                bare.load(),
                ours.load()
            ),
        )
        .baseline(
            format!("naive {:.0} items/s ({})", naive.rate(), naive.load()),
            bare.rate() / naive.rate(),
        ),
    );
    report.note(format!(
        "Cascade: {items} items ({per_table} in each of transactions, followed_companies, billing_records, sessions, \
         help_requests) seeded afresh before each erase with concurrent BatchWriteItems; only the erase is timed. \
         Bare and ours read pages of {PAGE} keys and keep {IN_FLIGHT} batches of 25 in flight; ours also runs \
         every other step of the routine (audit, Cognito lock-out and delete, tombstone, completion) and saves the \
         job after each page. Ours and bare alternate for {rounds} round(s); the best of each is shown.{}",
        if naive_items < items {
            format!(" The naive loop ran on {naive_items} items (rates compare).")
        } else {
            String::new()
        }
    ));
    Ok(report)
}

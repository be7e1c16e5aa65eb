//! The emulator fixtures the benchmarks run against: tables from `infra/template.yaml`
//! (test-support), a Cognito pool, the deletion queue, a verified sender, seeded users.

use anyhow::{bail, Context};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use aws_sdk_dynamodb::Client;
use domain::cascade::{CascadeTable, Lookup};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use test_support::dynalite::Dynalite;
use test_support::{cognito, create_tables, create_user_data_tables, rows, ses, sqs, Emulator, TableSet};

pub type Item = HashMap<String, AttributeValue>;

pub const MAIL_FROM: &str = "no-reply@teleperson.com";
/// Batches of a seeding in flight at once.
const SEED_IN_FLIGHT: usize = 8;

/// The emulator `scripts/bench.sh` started (`AWS_ENDPOINT_URL`), checked first so that a
/// missing one fails with what to do.
pub fn emulator() -> anyhow::Result<Emulator> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(v) if !v.trim().is_empty() => Ok(Emulator::start_or_panic()),
        _ => bail!(
            "AWS_ENDPOINT_URL is not set: this benchmark needs the AWS emulator; run it with scripts/bench.sh \
             (which starts moto server), or start moto yourself and export AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_REGION"
        ),
    }
}

/// One set of tables with everything the functions need.
pub struct World {
    pub emulator: Emulator,
    pub tables: TableSet,
    pub pool: String,
    pub queue: String,
    /// The emulator's DynamoDB: every table the functions use.
    pub dynamo: Client,
    /// Where the user-data tables (the cascade plan's) are seeded and counted: the emulator,
    /// unless [`World::put_user_data_in`] moved them.
    pub user_data: Client,
}

impl World {
    pub async fn new(emulator: &Emulator) -> World {
        let tables = create_tables(emulator.sdk()).await;
        let pool = cognito::create_user_pool(emulator).await;
        let queue = sqs::create_queue(emulator).await;
        ses::verify_sender(emulator, MAIL_FROM).await;
        World {
            emulator: emulator.clone(),
            dynamo: emulator.dynamodb(),
            user_data: emulator.dynamodb(),
            tables,
            pool,
            queue,
        }
    }

    /// Creates the user-data tables (same names) in `store` and seeds and counts them there
    /// from now on; everything else stays in the emulator.
    pub async fn put_user_data_in(&mut self, store: &Dynalite) {
        create_user_data_tables(store.sdk(), &self.tables).await;
        self.user_data = Client::new(store.sdk());
    }

    /// The function settings (`infra/template.yaml`'s environment) for these resources.
    pub fn function_env(&self) -> BTreeMap<String, String> {
        let mut env = self.tables.vars().clone();
        env.insert("USER_POOL_ID".into(), self.pool.clone());
        env.insert("DELETION_QUEUE_URL".into(), self.queue.clone());
        env.insert("MAIL_FROM".into(), MAIL_FROM.into());
        // The app client the events' tokens come from (`http_api::event::CLIENT_ID`).
        env.insert("APP_CLIENT_ID".into(), http_api::event::CLIENT_ID.into());
        env
    }

    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        let env = self.function_env();
        move |name| env.get(name).cloned()
    }

    pub fn table(&self, env_var: &str) -> String {
        self.tables.name(env_var).to_owned()
    }

    /// A profile row; with `cognito`, also a Cognito user named `cognito-<id>`.
    pub async fn put_user(&self, id: &str, role: &str, cognito_user: bool) -> anyhow::Result<()> {
        let mut item: Item = [
            ("user_id", id.to_owned()),
            ("email", format!("{id}@example.com")),
            ("display_name", format!("Bench {id}")),
            ("role", role.to_owned()),
            ("created_at", "2025-01-01T00:00:00.000Z".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
        .collect();
        if cognito_user {
            let username = format!("cognito-{id}");
            item.insert("auth_username".into(), AttributeValue::S(username.clone()));
            cognito::create_user(&self.emulator, &self.pool, &username, None).await;
        }
        self.dynamo
            .put_item()
            .table_name(self.table("PROFILES_TABLE"))
            .set_item(Some(item))
            .send()
            .await
            .context("put_item on profiles")?;
        Ok(())
    }

    /// Seeds `n` items of `user` into a cascade table (rows shaped like the real ones).
    pub async fn seed_user_items(&self, table: &CascadeTable, user: &str, n: usize) -> anyhow::Result<()> {
        let items = (0..n).map(|i| row(table, user, i)).collect();
        seed_into(&self.user_data, &self.table(table.env_var), items).await
    }

    /// How many items of `user` a cascade table still holds.
    pub async fn count_user_items(&self, table: &CascadeTable, user: &str) -> anyhow::Result<u64> {
        let (index, attr) = lookup(table);
        let mut count = 0u64;
        let mut start = None;
        loop {
            let out = self
                .user_data
                .query()
                .table_name(self.table(table.env_var))
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#u = :u")
                .expression_attribute_names("#u", attr)
                .expression_attribute_values(":u", AttributeValue::S(user.to_owned()))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("Query (count)")?;
            count += u64::try_from(out.count()).unwrap_or(0);
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(count),
            }
        }
    }
}

/// Writes `items` with `BatchWriteItem`s of 25, several in flight.
async fn seed_into(client: &Client, table: &str, items: Vec<Item>) -> anyhow::Result<()> {
    let writes = rows::put_batches(&items)
        .into_iter()
        .map(|batch| rows::write_batch(client, table, batch));
    futures::stream::iter(writes)
        .buffer_unordered(SEED_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| anyhow::anyhow!("BatchWriteItem (seeding): {e}"))?;
    Ok(())
}

pub fn lookup(table: &CascadeTable) -> (Option<&'static str>, &'static str) {
    match table.lookup {
        Lookup::PartitionKey { attr } => (None, attr),
        Lookup::Index { index, attr } => (Some(index), attr),
    }
}

/// A row of a cascade table for `user`, shaped like the application's.
pub fn row(table: &CascadeTable, user: &str, i: usize) -> Item {
    let id = format!("{user}-{i:06}");
    let pairs: Vec<(&str, String)> = match table.name {
        "transactions" => vec![
            ("user_id", user.into()),
            ("transaction_id", id),
            ("amount_cents", "1250".into()),
        ],
        "followed_companies" => {
            vec![
                ("user_id", user.into()),
                ("company_id", id),
                ("followed_at", "2025-01-01".into()),
            ]
        }
        "billing_records" => vec![
            ("user_id", user.into()),
            ("record_id", id),
            ("plan", "pro".into()),
        ],
        "sessions" => vec![
            ("session_id", id),
            ("user_id", user.into()),
            ("device", "phone".into()),
        ],
        "help_requests" => vec![
            ("request_id", id),
            ("user_id", user.into()),
            ("topic", "billing".into()),
        ],
        _ => vec![
            ("message_id", id),
            ("recipient_id", user.into()),
            ("sender_id", "bench-owner".into()),
            ("created_at", format!("2025-01-01T00:00:00.{:03}Z", i % 1000)),
            ("status", "sent".into()),
            ("subject", "s".into()),
            ("body", "b".into()),
        ],
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
        .collect()
}

/// A fresh id that is a valid `UserId`.
pub fn fresh_id(prefix: &str) -> String {
    test_support::unique(prefix)
}

/// CPU time (user + system) of a process so far, from `/proc/<pid>/stat` (100 ticks/s).
pub fn cpu_time(pid: &str) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

/// The emulator's pid, when `scripts/bench.sh` passes it (`BENCH_EMULATOR_PID`).
pub fn emulator_pid() -> Option<String> {
    pid_from("BENCH_EMULATOR_PID")
}

/// dynalite's pid, when `scripts/bench.sh` passes it (`BENCH_DYNALITE_PID`).
pub fn dynalite_pid() -> Option<String> {
    pid_from("BENCH_DYNALITE_PID")
}

fn pid_from(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
}

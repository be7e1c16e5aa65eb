//! Shared fixtures of the integration tests: a per-test set of tables in the emulator, and
//! plain SDK reads and writes that check what the adapters stored (independently of them).
//!
//! Every test here needs the emulator: run them with `scripts/test.sh`. When
//! `DYNALITE_ENDPOINT` is set (the `dynalite` stage of `scripts/test.sh`), the user-data tables
//! (every table of the cascade plan) live in dynalite instead, and everything that reads or
//! writes them here, and the [`DynamoUserData`] of [`Harness::deletion`], goes there.

use aws_adapters::DynamoUserData;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::cascade::CASCADE_PLAN;
use domain::deletion::Deletion;
use domain::model::Profile;
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use test_support::dynalite::Dynalite;
use test_support::isolation::isolated;
use test_support::rows;
use test_support::{create_tables, create_user_data_tables, Emulator, TableSet, TestEnv};

pub use test_support::rows::{s, str_attr, user_attr, Item};

/// The emulator, a fresh set of tables for this test, and plain DynamoDB clients.
pub struct Harness {
    pub emulator: Emulator,
    /// The emulator's SDK settings with writes isolated as DynamoDB isolates them (see
    /// `test_support::isolation`): what every adapter of these tests is built from.
    pub sdk: SdkConfig,
    pub tables: TableSet,
    /// moto, for every table that is not user data.
    pub dynamo: Client,
    /// Where the user-data tables are: dynalite in the `dynalite` run, else moto.
    pub user_data_dynamo: Client,
    /// The SDK settings of that store.
    pub user_data_sdk: SdkConfig,
    /// `Some` in the `dynalite` run.
    pub dynalite: Option<Dynalite>,
    user_data_tables: BTreeSet<String>,
}

impl Harness {
    pub async fn new() -> Harness {
        let emulator = Emulator::start_or_panic();
        let sdk = isolated(emulator.sdk());
        let tables = create_tables(&sdk).await;
        let dynamo = Client::new(&sdk);
        let dynalite = Dynalite::from_env();
        let user_data_sdk = match &dynalite {
            Some(d) => {
                create_user_data_tables(d.sdk(), &tables).await;
                d.sdk().clone()
            }
            None => sdk.clone(),
        };
        let user_data_dynamo = Client::new(&user_data_sdk);
        let user_data_tables = CASCADE_PLAN
            .iter()
            .map(|t| tables.name(t.env_var).to_owned())
            .collect();
        Harness {
            emulator,
            sdk,
            tables,
            dynamo,
            user_data_dynamo,
            user_data_sdk,
            dynalite,
            user_data_tables,
        }
    }

    /// `moto`, or `dynalite` when the user-data tables live there.
    pub fn user_data_backend(&self) -> &'static str {
        if self.dynalite.is_some() {
            "dynalite"
        } else {
            "moto"
        }
    }

    /// The client for the store that holds `table`.
    pub fn client_for(&self, table: &str) -> &Client {
        if self.user_data_tables.contains(table) {
            &self.user_data_dynamo
        } else {
            &self.dynamo
        }
    }

    /// The user-data adapter over every cascade table, in the store that holds them.
    pub fn user_data(&self) -> DynamoUserData {
        self.user_data_on(self.user_data_dynamo.clone())
    }

    /// The user-data adapter over every cascade table with this client (one with faults).
    pub fn user_data_on(&self, client: Client) -> DynamoUserData {
        DynamoUserData::new(
            client,
            CASCADE_PLAN
                .iter()
                .map(|t| (t.name.to_owned(), self.table(t.env_var))),
        )
    }

    /// The delete routine exactly as `aws_adapters::env::deletion_from` builds it for the
    /// Lambdas, on these tables and `env`; its user-data adapter talks to the store that
    /// holds the user-data tables (the only difference, and only in the `dynalite` run).
    pub fn deletion(&self, env: &TestEnv) -> Deletion {
        let mut deletion = aws_adapters::env::deletion_from(&env.lookup(), &self.sdk)
            .expect("the delete routine is configured");
        if self.dynalite.is_some() {
            deletion.user_data = Arc::new(self.user_data());
        }
        deletion
    }

    pub fn table(&self, env_var: &str) -> String {
        self.tables.name(env_var).to_owned()
    }

    pub async fn put_profile(&self, profile: &Profile) {
        self.put(&self.table("PROFILES_TABLE"), rows::profile_item(profile))
            .await;
    }

    pub async fn put(&self, table: &str, item: Item) {
        self.client_for(table)
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put_item");
    }

    /// The raw row with this single-attribute key.
    pub async fn get(&self, table: &str, key: &str, value: &str) -> Option<Item> {
        rows::get(self.client_for(table), table, key, value).await
    }

    /// Every row of a table.
    pub async fn scan(&self, table: &str) -> Vec<Item> {
        rows::scan(self.client_for(table), table).await
    }

    /// Rows of a table whose string attribute `attr` equals `value`.
    pub async fn rows_where(&self, table: &str, attr: &str, value: &str) -> Vec<Item> {
        self.scan(table)
            .await
            .into_iter()
            .filter(|i| str_attr(i, attr) == Some(value))
            .collect()
    }

    /// Write many items with `BatchWriteItem` (25 per request, a few in flight).
    pub async fn seed(&self, table: &str, items: Vec<Item>) {
        let batches = rows::put_batches(&items);
        futures::stream::iter(batches.into_iter().map(|batch| self.write_all(table, batch)))
            .buffer_unordered(6)
            .try_collect::<Vec<()>>()
            .await
            .expect("seeding");
    }

    async fn write_all(&self, table: &str, batch: Vec<WriteRequest>) -> Result<(), String> {
        rows::write_batch(self.client_for(table), table, batch).await
    }

    /// Delete rows by key (test clean-up of shared fixtures).
    pub async fn delete_keys(&self, table: &str, keys: Vec<Item>) {
        for chunk in keys.chunks(25) {
            let batch = chunk
                .iter()
                .map(|k| {
                    let del = DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .expect("delete request");
                    WriteRequest::builder().delete_request(del).build()
                })
                .collect();
            self.write_all(table, batch).await.expect("delete");
        }
    }
}

pub fn item(pairs: &[(&str, &str)]) -> Item {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), s(*v))).collect()
}

/// A profile row as the dashboard's sign-up would write it.
pub fn profile(user_id: &str, email: Option<&str>, role: &str, name: &str) -> Profile {
    Profile::active(user_id, role, email, name, "2025-01-01T00:00:00.000Z")
}

/// A fresh user id.
pub fn user_id(prefix: &str) -> String {
    test_support::unique(&format!("{prefix}-"))
}

/// Every string value anywhere in a row (for "this row holds no email / subject / body").
pub fn all_strings(item: &Item) -> Vec<String> {
    fn walk(v: &AttributeValue, out: &mut Vec<String>) {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
            AttributeValue::M(m) => m.values().for_each(|v| walk(v, out)),
            AttributeValue::L(l) => l.iter().for_each(|v| walk(v, out)),
            AttributeValue::Ss(l) | AttributeValue::Ns(l) => out.extend(l.iter().cloned()),
            _ => {}
        }
    }
    let mut out: Vec<String> = item.keys().cloned().collect();
    item.values().for_each(|v| walk(v, &mut out));
    out
}

/// Row `i` of `user` in a cascade table, as the dashboard would write it.
pub fn user_data_row(table: &domain::cascade::CascadeTable, user: &str, i: usize) -> Item {
    let id = format!("{user}-{i:05}");
    match table.name {
        "transactions" => item(&[
            ("user_id", user),
            ("transaction_id", &id),
            ("amount_cents", "1250"),
        ]),
        "followed_companies" => item(&[
            ("user_id", user),
            ("company_id", &id),
            ("followed_at", "2025-01-01"),
        ]),
        "billing_records" => item(&[("user_id", user), ("record_id", &id), ("plan", "pro")]),
        "sessions" => item(&[("session_id", &id), ("user_id", user), ("device", "phone")]),
        "help_requests" => item(&[("request_id", &id), ("user_id", user), ("topic", "billing")]),
        "admin_messages" => item(&[
            ("message_id", &id),
            ("recipient_id", user),
            ("sender_id", "someone"),
            (
                "created_at",
                &format!("2025-01-01T00:00:{:02}.{:03}Z", (i / 1000) % 60, i % 1000),
            ),
            ("status", "sent"),
            ("subject", "s"),
            ("body", "b"),
        ]),
        other => panic!("no fixture rows for {other}"),
    }
}

/// The table key of a row of a cascade table.
pub fn key_of(table: &domain::cascade::CascadeTable, row: &Item) -> domain::model::ItemKey {
    table
        .key
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                str_attr(row, k).expect("a key attribute").to_owned(),
            )
        })
        .collect()
}

//! Shared fixtures of the integration tests: a per-test set of tables in the emulator, and
//! plain SDK reads and writes that check what the adapters stored (independently of them).
//!
//! Every test here needs the emulator: run them with `scripts/test.sh`.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::model::Profile;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use test_support::{create_tables, Emulator, TableSet};

pub type Item = HashMap<String, AttributeValue>;

/// The emulator, a fresh set of tables for this test, and a plain DynamoDB client.
pub struct Harness {
    pub emulator: Emulator,
    pub tables: TableSet,
    pub dynamo: Client,
}

impl Harness {
    pub async fn new() -> Harness {
        let emulator = Emulator::start_or_panic();
        let tables = create_tables(emulator.sdk()).await;
        let dynamo = emulator.dynamodb();
        Harness {
            emulator,
            tables,
            dynamo,
        }
    }

    pub fn table(&self, env_var: &str) -> String {
        self.tables.name(env_var).to_owned()
    }

    pub async fn put_profile(&self, profile: &Profile) {
        let mut item = Item::new();
        item.insert("user_id".into(), s(&profile.user_id));
        item.insert("display_name".into(), s(&profile.display_name));
        item.insert("role".into(), s(&profile.role));
        item.insert("created_at".into(), s(&profile.created_at));
        if let Some(e) = &profile.email {
            item.insert("email".into(), s(e));
        }
        if let Some(a) = &profile.auth_username {
            item.insert("auth_username".into(), s(a));
        }
        if let Some(d) = &profile.deleted_at {
            item.insert("deleted_at".into(), s(d));
        }
        self.put(&self.table("PROFILES_TABLE"), item).await;
    }

    pub async fn put(&self, table: &str, item: Item) {
        self.dynamo
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put_item");
    }

    /// The raw row with this single-attribute key.
    pub async fn get(&self, table: &str, key: &str, value: &str) -> Option<Item> {
        let out = self
            .dynamo
            .get_item()
            .table_name(table)
            .key(key, s(value))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item");
        out.item().cloned()
    }

    /// Every row of a table.
    pub async fn scan(&self, table: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamo
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return items,
            }
        }
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
        let batches: Vec<Vec<WriteRequest>> = items
            .chunks(25)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|item| {
                        let put = PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .expect("put request");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect()
            })
            .collect();
        futures::stream::iter(batches.into_iter().map(|batch| self.write_all(table, batch)))
            .buffer_unordered(6)
            .try_collect::<Vec<()>>()
            .await
            .expect("seeding");
    }

    async fn write_all(&self, table: &str, mut batch: Vec<WriteRequest>) -> Result<(), String> {
        while !batch.is_empty() {
            let out = self
                .dynamo
                .batch_write_item()
                .request_items(table, batch)
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
            batch = out
                .unprocessed_items()
                .and_then(|m| m.get(table))
                .cloned()
                .unwrap_or_default();
        }
        Ok(())
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

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub fn item(pairs: &[(&str, &str)]) -> Item {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), s(*v))).collect()
}

/// A profile row as the dashboard's sign-up would write it.
pub fn profile(user_id: &str, email: Option<&str>, role: &str, name: &str) -> Profile {
    Profile {
        user_id: user_id.to_owned(),
        email: email.map(str::to_owned),
        display_name: name.to_owned(),
        role: role.to_owned(),
        created_at: "2025-01-01T00:00:00.000Z".to_owned(),
        deleted_at: None,
        auth_username: None,
        deletion_job_id: None,
    }
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

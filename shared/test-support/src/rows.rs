//! Plain DynamoDB reads and writes that check what the adapters stored, independently of
//! them: raw rows, consistent scans and gets, batched puts, and a profile row as the
//! dashboard's sign-up writes it.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::cascade::{CascadeTable, Lookup};
use domain::model::Profile;
use std::collections::HashMap;

/// A raw DynamoDB row.
pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// The attribute that holds the user id in a cascade table (its partition key or its index's).
pub fn user_attr(table: &CascadeTable) -> &'static str {
    match table.lookup {
        Lookup::PartitionKey { attr } | Lookup::Index { attr, .. } => attr,
    }
}

/// The profile row of `p` (every attribute it has but `tokens_valid_after`).
pub fn profile_item(p: &Profile) -> Item {
    let mut item = Item::new();
    item.insert("user_id".into(), s(&p.user_id));
    item.insert("display_name".into(), s(&p.display_name));
    item.insert("role".into(), s(&p.role));
    item.insert("created_at".into(), s(&p.created_at));
    let optional = [
        ("email", &p.email),
        ("auth_username", &p.auth_username),
        ("deleted_at", &p.deleted_at),
        ("deletion_job_id", &p.deletion_job_id),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    item
}

/// The row of `table` with this single-attribute key (a consistent read).
pub async fn get(client: &Client, table: &str, key: &str, value: &str) -> Option<Item> {
    let out = client
        .get_item()
        .table_name(table)
        .key(key, s(value))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "get_item {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        });
    out.item().cloned()
}

/// Every row of `table` (consistent scans, page by page).
pub async fn scan(client: &Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "scan {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            });
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// `items` as `BatchWriteItem` puts, 25 to a batch.
pub fn put_batches(items: &[Item]) -> Vec<Vec<WriteRequest>> {
    let put = |item: &Item| {
        let request = PutRequest::builder().set_item(Some(item.clone())).build();
        WriteRequest::builder()
            .put_request(request.expect("a put request"))
            .build()
    };
    items
        .chunks(25)
        .map(|chunk| chunk.iter().map(put).collect())
        .collect()
}

/// Writes one batch to `table`, again and again until nothing is left unprocessed.
pub async fn write_batch(client: &Client, table: &str, batch: Vec<WriteRequest>) -> Result<(), String> {
    let mut left = batch;
    while !left.is_empty() {
        let written = client.batch_write_item().request_items(table, left).send().await;
        let out = written.map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        left = match out.unprocessed_items().and_then(|m| m.get(table)) {
            Some(unprocessed) => unprocessed.clone(),
            None => Vec::new(),
        };
    }
    Ok(())
}

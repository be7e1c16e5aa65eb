//! DynamoDB adapters, one per port. Table names come from the environment (see `env`).

pub(crate) mod audit_trail;
pub(crate) mod deletion_jobs;
pub(crate) mod delivery;
pub(crate) mod idempotency;
pub(crate) mod outbox;
pub(crate) mod profiles;
pub(crate) mod security_log;
pub(crate) mod user_data;

use crate::attrs::{put_opt, s, Item};
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use domain::model::SecurityEvent;
use domain::ports::StoreResult;

/// Names that a `SecurityEvent` field may not overwrite.
const EVENT_CORE: &[&str] = &[
    "expires_at",
    "event_id",
    "event_type",
    "actor_id",
    "target_id",
    "created_at",
    "request_id",
    "source_ip",
    "user_agent",
];

/// The stored shape of a `security_logs` row: the event-specific fields (`message_id`,
/// `target_role`, `target_email_sha256`, `job_id`, `action`, `reason`, `deleted`) are
/// top-level string attributes, next to the common ones.
pub(crate) fn event_item(event: &SecurityEvent) -> Item {
    let mut item = Item::new();
    item.insert("event_id".into(), s(&event.event_id));
    item.insert("event_type".into(), s(event.event_type.as_str()));
    put_opt(&mut item, "actor_id", event.actor_id.as_deref());
    item.insert("target_id".into(), s(&event.target_id));
    item.insert("created_at".into(), s(&event.created_at));
    item.insert("request_id".into(), s(&event.request_id));
    put_opt(&mut item, "source_ip", event.source_ip.as_deref());
    put_opt(&mut item, "user_agent", event.user_agent.as_deref());
    for (k, v) in &event.fields {
        if !EVENT_CORE.contains(&k.as_str()) {
            item.insert(k.clone(), s(v));
        }
    }
    // The table's TTL attribute: refusal rows go after a while, the other events never do.
    if let Some(at) = event.expires_at {
        item.insert("expires_at".into(), crate::attrs::n(at));
    }
    item
}

/// A strongly consistent `GetItem` of the row whose string key `key_name` is `key`.
pub(crate) async fn get_row(
    client: &Client, table: &str, key_name: &str, key: &str, dependency: &'static str,
) -> StoreResult<Option<Item>> {
    let out = client
        .get_item()
        .table_name(table)
        .key(key_name, s(key))
        .consistent_read(true)
        .send()
        .within_deadline()
        .await
        .map_err(|e| sdk(dependency, format!("GetItem on {table}"), e))?;
    Ok(out.item().cloned())
}

/// Every row of an index whose partition key `key_attr` is `key`, page after page, until
/// there is no next page or `enough` says the rows read so far are enough.
pub(crate) async fn query_index(
    client: &Client, table: &str, index: &str, key_attr: &str, key: &str, dependency: &'static str,
    enough: impl Fn(usize) -> bool,
) -> StoreResult<Vec<Item>> {
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":k", s(key))
            .set_exclusive_start_key(start)
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(dependency, format!("Query {index} on {table}"), e))?;
        rows.extend_from_slice(out.items());
        match out.last_evaluated_key() {
            Some(k) if !enough(rows.len()) => start = Some(k.clone()),
            _ => return Ok(rows),
        }
    }
}

/// One `TransactWriteItems`: `Ok(None)` when it applied; `Ok(Some(reasons))` when DynamoDB
/// cancelled it (one reason per item, in order, for the caller to read); any other failure
/// as a [`domain::ports::DependencyError`] named by `what`.
pub(crate) async fn transact(
    client: &Client, items: Vec<TransactWriteItem>, dependency: &'static str,
    what: &(dyn Fn() -> String + Sync),
) -> StoreResult<Option<Vec<CancellationReason>>> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .within_deadline()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(err) => match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(tce)) => {
                Ok(Some(tce.cancellation_reasons().to_vec()))
            }
            _ => Err(sdk(dependency, what(), err)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::model::{EventType, RequestMeta};

    #[test]
    fn event_fields_become_top_level_attributes_but_never_replace_the_common_ones() {
        let meta = RequestMeta {
            caller: Some("admin-1".into()),
            request_id: "req-1".into(),
            ..Default::default()
        };
        let event = SecurityEvent::new(
            "e1".into(),
            EventType::AdminDeletedUser,
            "u1",
            &meta,
            "2025-01-01T00:00:00.000Z",
        )
        .with("job_id", "j1")
        .with("target_id", "forged");
        let item = event_item(&event);
        assert_eq!(item["job_id"].as_s().unwrap(), "j1");
        assert_eq!(item["target_id"].as_s().unwrap(), "u1");
        assert_eq!(item["event_type"].as_s().unwrap(), "admin_deleted_user");
        assert!(!item.contains_key("source_ip"));
    }
}

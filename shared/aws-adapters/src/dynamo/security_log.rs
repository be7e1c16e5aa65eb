//! `security_logs` (`SECURITY_LOGS_TABLE`): the append-only audit trail.

use super::event_item;
use crate::attrs::s;
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use domain::model::SecurityEvent;
use domain::ports::{Appended, SecurityLog, StoreResult};
use std::collections::HashMap;

const DEP: &str = "security_logs";

#[derive(Clone, Debug)]
pub struct DynamoSecurityLog {
    pub(super) client: Client,
    pub(super) table: String,
}

impl DynamoSecurityLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSecurityLog {
            client,
            table: table.into(),
        }
    }
}

/// Conditional put on `event_id`: an event is never overwritten.
pub(crate) async fn put_event(client: &Client, table: &str, event: &SecurityEvent) -> StoreResult<Appended> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(event_item(event)))
        .condition_expression("attribute_not_exists(event_id)")
        .send()
        .within_deadline()
        .await;
    match result {
        Ok(_) => Ok(Appended::New),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(Appended::AlreadyRecorded)
        }
        Err(e) => Err(sdk(DEP, format!("PutItem on {table}"), e)),
    }
}

/// Request ids a refusal row of one caller and minute keeps; a flood beyond is counted in
/// `refusals_over` (approximately, under retries: the row stays small whatever happens).
const MAX_COUNTED_IDS: usize = 1000;

#[async_trait]
impl SecurityLog for DynamoSecurityLog {
    async fn append(&self, event: &SecurityEvent) -> StoreResult<Appended> {
        put_event(&self.client, &self.table, event).await
    }

    async fn count_refusal(&self, first: &SecurityEvent, request_id: &str) -> StoreResult<u64> {
        let row = event_item(first);
        let mut values = HashMap::new();
        let mut names = HashMap::new();
        let mut sets = Vec::new();
        // The row's own fields, written by whichever refusal creates it.
        for (i, (k, v)) in row.iter().filter(|(k, _)| k.as_str() != "event_id").enumerate() {
            names.insert(format!("#f{i}"), k.clone());
            values.insert(format!(":f{i}"), v.clone());
            sets.push(format!("#f{i} = if_not_exists(#f{i}, :f{i})"));
        }
        values.insert(":id".into(), AttributeValue::Ss(vec![request_id.to_owned()]));
        values.insert(":cap".into(), AttributeValue::N(MAX_COUNTED_IDS.to_string()));
        names.insert("#ids".into(), REFUSAL_IDS.to_owned());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(&first.event_id))
            .update_expression(format!("SET {} ADD #ids :id", sets.join(", ")))
            .condition_expression("attribute_not_exists(#ids) OR size(#ids) < :cap OR contains(#ids, :rid)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some({
                values.insert(":rid".into(), s(request_id));
                values
            }))
            .return_values(ReturnValue::AllNew)
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(out) => Ok(counted(out.attributes())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // Past the cap: count the rest without ids.
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("event_id", s(&first.event_id))
                    .update_expression("ADD #over :one")
                    .expression_attribute_names("#over", REFUSALS_OVER)
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .within_deadline()
                    .await
                    .map_err(|e| sdk(DEP, format!("UpdateItem (count a refusal) on {}", self.table), e))?;
                Ok(counted(out.attributes()))
            }
            Err(e) => Err(sdk(
                DEP,
                format!("UpdateItem (count a refusal) on {}", self.table),
                e,
            )),
        }
    }
}

/// The request ids the first refusal row of a caller and minute counts, and the refusals
/// counted beyond them.
pub(super) const REFUSAL_IDS: &str = "request_ids";
pub(super) const REFUSALS_OVER: &str = "refusals_over";

fn counted(row: Option<&HashMap<String, AttributeValue>>) -> u64 {
    let Some(row) = row else { return 0 };
    let ids = row
        .get(REFUSAL_IDS)
        .and_then(|v| v.as_ss().ok())
        .map_or(0, Vec::len) as u64;
    let over = row
        .get(REFUSALS_OVER)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    ids + over
}

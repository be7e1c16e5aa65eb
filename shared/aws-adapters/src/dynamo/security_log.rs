//! `security_logs` (`SECURITY_LOGS_TABLE`): the append-only audit trail.

use super::event_item;
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use domain::model::SecurityEvent;
use domain::ports::{Appended, SecurityLog, StoreResult};

const DEP: &str = "security_logs";

#[derive(Clone, Debug)]
pub struct DynamoSecurityLog {
    client: Client,
    table: String,
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

#[async_trait]
impl SecurityLog for DynamoSecurityLog {
    async fn append(&self, event: &SecurityEvent) -> StoreResult<Appended> {
        put_event(&self.client, &self.table, event).await
    }
}

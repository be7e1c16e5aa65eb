//! Delivery status from SES events, on `admin_messages` (found through the
//! `by_ses_message_id` index). A status only moves forward: the allowed previous statuses
//! are the write's condition, so out-of-order and repeated events change nothing.

use crate::attrs::{get_s, s};
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use domain::model::MessageStatus;
use domain::ports::{DeliveryLog, DeliveryUpdate, Recorded, StoreResult};
use std::collections::HashMap;

const DEP: &str = "admin_messages";
const BY_SES_MESSAGE_ID: &str = "by_ses_message_id";
const ALL_STATUSES: [MessageStatus; 6] = [
    MessageStatus::Pending,
    MessageStatus::Sent,
    MessageStatus::Failed,
    MessageStatus::Delivered,
    MessageStatus::Bounced,
    MessageStatus::Complained,
];

#[derive(Clone, Debug)]
pub struct DynamoDeliveryLog {
    client: Client,
    table: String,
}

impl DynamoDeliveryLog {
    pub fn new(client: Client, messages_table: impl Into<String>) -> Self {
        DynamoDeliveryLog {
            client,
            table: messages_table.into(),
        }
    }
}

#[async_trait]
impl DeliveryLog for DynamoDeliveryLog {
    async fn record_delivery(
        &self,
        ses_message_id: &str,
        update: DeliveryUpdate,
        at: &str,
    ) -> StoreResult<Recorded> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_SES_MESSAGE_ID)
            .key_condition_expression("ses_message_id = :sid")
            .expression_attribute_values(":sid", s(ses_message_id))
            .send()
            .await
            .map_err(|e| sdk(DEP, format!("Query {BY_SES_MESSAGE_ID} on {}", self.table), e))?;
        let ids: Vec<String> = found
            .items()
            .iter()
            .filter_map(|i| get_s(i, "message_id"))
            .map(str::to_owned)
            .collect();
        if ids.is_empty() {
            return Ok(Recorded::UnknownMessage);
        }
        let from: Vec<MessageStatus> = ALL_STATUSES
            .into_iter()
            .filter(|s| update.applies_to(*s))
            .collect();
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!(":from{i}")).collect();
        let mut values = HashMap::from([
            (":to".to_owned(), s(update.status().as_str())),
            (":at".to_owned(), s(at)),
            (":sid".to_owned(), s(ses_message_id)),
        ]);
        for (p, st) in placeholders.iter().zip(&from) {
            values.insert(p.clone(), s(st.as_str()));
        }
        let mut recorded = Recorded::Unchanged;
        for id in ids {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("message_id", s(&id))
                .update_expression("SET #status = :to, updated_at = :at")
                .condition_expression(format!(
                    "ses_message_id = :sid AND #status IN ({})",
                    placeholders.join(", ")
                ))
                .expression_attribute_names("#status", "status")
                .set_expression_attribute_values(Some(values.clone()))
                .send()
                .await;
            match result {
                Ok(_) => recorded = Recorded::Updated,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => {
                    return Err(sdk(
                        DEP,
                        format!("UpdateItem (delivery status) on {}", self.table),
                        e,
                    ))
                }
            }
        }
        Ok(recorded)
    }
}

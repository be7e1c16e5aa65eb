//! Delivery status from SES events, on `admin_messages`. An event names our message id in its
//! `message_id` tag: the row is updated by its key (a direct, consistent write, so an event
//! that arrives before the send's own bookkeeping still finds it). An event without the tag
//! finds its row through the `by_ses_message_id` index. A status only moves forward: the
//! allowed previous statuses are the write's condition, so out-of-order and repeated events
//! change nothing.

use super::outbox::PENDING_ATTR;
use crate::attrs::{get_s, s};
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use domain::model::MessageStatus;
use domain::ports::{DeliveryLog, DeliveryRecord, DeliveryUpdate, Recorded, StoreResult};
use std::collections::HashMap;

const DEP: &str = "admin_messages";
const BY_SES_MESSAGE_ID: &str = "by_ses_message_id";

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

    /// Our message ids of the rows with this provider id (the index is eventually consistent).
    async fn find(&self, ses_message_id: &str) -> StoreResult<Vec<String>> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_SES_MESSAGE_ID)
            .key_condition_expression("ses_message_id = :sid")
            .expression_attribute_values(":sid", s(ses_message_id))
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(DEP, format!("Query {BY_SES_MESSAGE_ID} on {}", self.table), e))?;
        Ok(found
            .items()
            .iter()
            .filter_map(|i| get_s(i, "message_id"))
            .map(str::to_owned)
            .collect())
    }

    /// Move one row forward; `None` when the row does not exist.
    async fn update(&self, message_id: &str, record: &DeliveryRecord) -> StoreResult<Option<bool>> {
        let update = record.update;
        let from: Vec<MessageStatus> = MessageStatus::ALL
            .into_iter()
            .filter(|s| update.applies_to(*s))
            .collect();
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!(":from{i}")).collect();
        let mut values = HashMap::from([
            (":to".to_owned(), s(update.status().as_str())),
            (":at".to_owned(), s(&record.at)),
            (":sid".to_owned(), s(&record.ses_message_id)),
        ]);
        for (p, st) in placeholders.iter().zip(&from) {
            values.insert(p.clone(), s(st.as_str()));
        }
        let mut set = "#status = :to, updated_at = :at, ses_message_id = if_not_exists(ses_message_id, :sid)"
            .to_owned();
        if update == DeliveryUpdate::Sent {
            set.push_str(", sent_at = if_not_exists(sent_at, :at)");
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("message_id", s(message_id))
            .update_expression(format!("SET {set} REMOVE #pending"))
            .condition_expression(format!(
                "attribute_exists(message_id) AND (attribute_not_exists(ses_message_id) OR ses_message_id = :sid) \
                 AND #status IN ({})",
                placeholders.join(", ")
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#pending", PENDING_ATTR)
            .set_expression_attribute_values(Some(values))
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(_) => Ok(Some(true)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let exists = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("message_id", s(message_id))
                    .consistent_read(true)
                    .projection_expression("message_id")
                    .send()
                    .within_deadline()
                    .await
                    .map_err(|e| sdk(DEP, format!("GetItem on {}", self.table), e))?
                    .item()
                    .is_some();
                Ok(exists.then_some(false))
            }
            Err(e) => Err(sdk(
                DEP,
                format!("UpdateItem (delivery status) on {}", self.table),
                e,
            )),
        }
    }
}

#[async_trait]
impl DeliveryLog for DynamoDeliveryLog {
    async fn record_delivery(&self, record: &DeliveryRecord) -> StoreResult<Recorded> {
        let ids = match &record.message_id {
            Some(id) => vec![id.clone()],
            None => self.find(&record.ses_message_id).await?,
        };
        let mut recorded = Recorded::UnknownMessage;
        for id in ids {
            match self.update(&id, record).await? {
                Some(true) => recorded = Recorded::Updated,
                Some(false) if recorded == Recorded::UnknownMessage => recorded = Recorded::Unchanged,
                _ => {}
            }
        }
        Ok(recorded)
    }
}

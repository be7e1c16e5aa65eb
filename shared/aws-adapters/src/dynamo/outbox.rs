//! `admin_messages` (`ADMIN_MESSAGES_TABLE`): the outbox of admin messages, with the send
//! lease on the recipient's profile and the audit event written in the same transactions.

use super::event_item;
use super::profiles::{millis, SENDS_IN_FLIGHT_ATTR, SEND_LEASE_ATTR};
use crate::attrs::{message_cursor_after, message_cursor_key, opt_s, put_opt, req_s, s, Item};
use crate::errors::{build, is_retryable_code, malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use chrono::{DateTime, Utc};
use domain::cursor::MessageCursor;
use domain::model::{AdminMessage, MessageStatus, Page, SecurityEvent};
use domain::ports::{DependencyError, MessageOutbox, Reserved, StoreResult};

const DEP: &str = "admin_messages";
const BY_RECIPIENT: &str = "by_recipient";

#[derive(Clone, Debug)]
pub struct DynamoMessageOutbox {
    client: Client,
    messages_table: String,
    profiles_table: String,
    security_logs_table: String,
}

impl DynamoMessageOutbox {
    pub fn new(
        client: Client,
        messages_table: impl Into<String>,
        profiles_table: impl Into<String>,
        security_logs_table: impl Into<String>,
    ) -> Self {
        DynamoMessageOutbox {
            client,
            messages_table: messages_table.into(),
            profiles_table: profiles_table.into(),
            security_logs_table: security_logs_table.into(),
        }
    }
}

fn message_item(m: &AdminMessage) -> Item {
    let mut item = Item::new();
    item.insert("message_id".into(), s(&m.message_id));
    item.insert("sender_id".into(), s(&m.sender_id));
    item.insert("recipient_id".into(), s(&m.recipient_id));
    item.insert("subject".into(), s(&m.subject));
    item.insert("body".into(), s(&m.body));
    item.insert("status".into(), s(m.status.as_str()));
    item.insert("created_at".into(), s(&m.created_at));
    // `ses_message_id` is an index key: it is absent, never empty.
    put_opt(
        &mut item,
        "ses_message_id",
        m.ses_message_id.as_deref().filter(|v| !v.is_empty()),
    );
    put_opt(&mut item, "error_code", m.error_code.as_deref());
    put_opt(&mut item, "sent_at", m.sent_at.as_deref());
    put_opt(&mut item, "updated_at", m.updated_at.as_deref());
    item
}

pub(crate) fn message_from(item: &Item) -> StoreResult<AdminMessage> {
    let status = req_s(item, "status", DEP)?;
    Ok(AdminMessage {
        message_id: req_s(item, "message_id", DEP)?,
        sender_id: opt_s(item, "sender_id").unwrap_or_default(),
        recipient_id: req_s(item, "recipient_id", DEP)?,
        subject: opt_s(item, "subject").unwrap_or_default(),
        body: opt_s(item, "body").unwrap_or_default(),
        status: MessageStatus::parse(&status)
            .ok_or_else(|| malformed(DEP, format!("unknown message status {status:?}")))?,
        ses_message_id: opt_s(item, "ses_message_id"),
        error_code: opt_s(item, "error_code"),
        created_at: opt_s(item, "created_at").unwrap_or_default(),
        sent_at: opt_s(item, "sent_at"),
        updated_at: opt_s(item, "updated_at"),
    })
}

/// The reason code of the `i`-th action of a cancelled transaction.
fn reason(reasons: &[CancellationReason], i: usize) -> Option<&str> {
    reasons.get(i).and_then(|r| r.code()).filter(|c| *c != "None")
}

fn cancelled_retryable(reasons: &[CancellationReason]) -> bool {
    reasons.iter().filter_map(|r| r.code()).any(|c| {
        matches!(
            c,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        ) || is_retryable_code(Some(c))
    })
}

fn cancelled(what: String, reasons: &[CancellationReason]) -> DependencyError {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    DependencyError::new(
        DEP,
        cancelled_retryable(reasons),
        anyhow::anyhow!("transaction cancelled ({})", codes.join(", ")).context(what),
    )
}

/// An update whose condition says the work is already done (or must not happen) is a success.
fn condition_failed_is_done(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    what: impl FnOnce() -> String,
) -> StoreResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk(DEP, what(), e)),
    }
}

#[async_trait]
impl MessageOutbox for DynamoMessageOutbox {
    async fn reserve(&self, message: &AdminMessage, lease_until: DateTime<Utc>) -> StoreResult<Reserved> {
        let what = || {
            format!(
                "TransactWriteItems (reserve) on {} and {}",
                self.messages_table, self.profiles_table
            )
        };
        let put = Put::builder()
            .table_name(&self.messages_table)
            .set_item(Some(message_item(message)))
            .condition_expression("attribute_not_exists(message_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let lease = Update::builder()
            .table_name(&self.profiles_table)
            .key("user_id", s(&message.recipient_id))
            .update_expression("SET #lease = :lease ADD #inflight :one")
            .condition_expression("attribute_exists(email) AND attribute_not_exists(deleted_at)")
            .expression_attribute_names("#lease", SEND_LEASE_ATTR)
            .expression_attribute_names("#inflight", SENDS_IN_FLIGHT_ATTR)
            .expression_attribute_values(":one", crate::attrs::n(1))
            .expression_attribute_values(":lease", crate::attrs::n(millis(lease_until)))
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(lease).build())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Reserved::Reserved),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(tce)) = err.as_service_error() else {
            return Err(sdk(DEP, what(), err));
        };
        let reasons = tce.cancellation_reasons();
        if reason(reasons, 0) == Some("ConditionalCheckFailed") {
            let row = match reasons[0].item() {
                Some(item) => Some(item.clone()),
                None => self.raw_get(&message.message_id).await?,
            };
            if let Some(row) = row {
                return Ok(Reserved::Exists(message_from(&row)?));
            }
        }
        if reason(reasons, 1) == Some("ConditionalCheckFailed") {
            return Ok(Reserved::RecipientGone);
        }
        Err(cancelled(what(), reasons))
    }

    async fn mark_sent(
        &self,
        message_id: &str,
        ses_message_id: &str,
        at: &str,
        event: &SecurityEvent,
    ) -> StoreResult<()> {
        let what = || {
            format!(
                "TransactWriteItems (mark sent) on {} and {}",
                self.messages_table, self.security_logs_table
            )
        };
        let update = self
            .sent_update(message_id, ses_message_id, at)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let put = Put::builder()
            .table_name(&self.security_logs_table)
            .set_item(Some(event_item(event)))
            .condition_expression("attribute_not_exists(event_id)")
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(tce)) = err.as_service_error() else {
            return Err(sdk(DEP, what(), err));
        };
        let reasons = tce.cancellation_reasons();
        let row_missing = reason(reasons, 0) == Some("ConditionalCheckFailed");
        let event_exists = reason(reasons, 1) == Some("ConditionalCheckFailed");
        if !(row_missing || event_exists) || cancelled_retryable(reasons) {
            return Err(cancelled(what(), reasons));
        }
        // A retry: the audit event is written already. Finish the row on its own.
        if event_exists && !row_missing {
            let result = self
                .client
                .update_item()
                .table_name(&self.messages_table)
                .key("message_id", s(message_id))
                .update_expression(
                    "SET #status = :sent, ses_message_id = :sid, sent_at = :at, updated_at = :at",
                )
                .condition_expression("attribute_exists(message_id)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":sent", s(MessageStatus::Sent.as_str()))
                .expression_attribute_values(":sid", s(ses_message_id))
                .expression_attribute_values(":at", s(at))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(sdk(
                    DEP,
                    format!("UpdateItem (mark sent) on {}", self.messages_table),
                    e,
                )),
            };
        }
        // The row is gone (the recipient's data was erased meanwhile). The mail went out,
        // so the audit event is still written.
        if !event_exists {
            crate::dynamo::security_log::put_event(&self.client, &self.security_logs_table, event).await?;
        }
        Ok(())
    }

    async fn release(&self, recipient_id: &str) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.profiles_table)
            .key("user_id", s(recipient_id))
            .update_expression("ADD #inflight :minus_one")
            // Never below zero, and never on a tombstone (anonymise removed the counter).
            .condition_expression("#inflight > :zero")
            .expression_attribute_names("#inflight", SENDS_IN_FLIGHT_ATTR)
            .expression_attribute_values(":minus_one", crate::attrs::n(-1))
            .expression_attribute_values(":zero", crate::attrs::n(0))
            .send()
            .await;
        condition_failed_is_done(result, || {
            format!("UpdateItem (release send lease) on {}", self.profiles_table)
        })
    }

    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .update_expression("SET #status = :failed, error_code = :code, updated_at = :at")
            // Never turn a sent message back into a failed one.
            .condition_expression("attribute_exists(message_id) AND #status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(MessageStatus::Failed.as_str()))
            .expression_attribute_values(":pending", s(MessageStatus::Pending.as_str()))
            .expression_attribute_values(":code", s(error_code))
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        condition_failed_is_done(result, || {
            format!("UpdateItem (mark failed) on {}", self.messages_table)
        })
    }

    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>> {
        self.raw_get(message_id)
            .await?
            .as_ref()
            .map(message_from)
            .transpose()
    }

    async fn history(
        &self,
        recipient_id: &str,
        limit: usize,
        cursor: Option<&MessageCursor>,
    ) -> StoreResult<Page<AdminMessage>> {
        let limit = limit.max(1);
        let start = cursor.map(|c| message_cursor_key(recipient_id, c));
        // One more than asked: tells whether another page exists without an empty last page.
        let out = self
            .client
            .query()
            .table_name(&self.messages_table)
            .index_name(BY_RECIPIENT)
            .key_condition_expression("recipient_id = :r")
            .expression_attribute_values(":r", s(recipient_id))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk(DEP, format!("Query {BY_RECIPIENT} on {}", self.messages_table), e))?;
        let rows = out.items();
        let items = rows
            .iter()
            .take(limit)
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let last = if rows.len() > limit {
            rows.get(limit - 1)
        } else {
            out.last_evaluated_key().filter(|_| !items.is_empty())
        };
        let next = last
            .map(|key| message_cursor_after(key, DEP))
            .transpose()?
            .map(|c| c.to_string());
        Ok(Page { items, next })
    }
}

impl DynamoMessageOutbox {
    fn sent_update(
        &self,
        message_id: &str,
        ses_message_id: &str,
        at: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .update_expression("SET #status = :sent, ses_message_id = :sid, sent_at = :at, updated_at = :at")
            .condition_expression("attribute_exists(message_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", s(MessageStatus::Sent.as_str()))
            .expression_attribute_values(":sid", s(ses_message_id))
            .expression_attribute_values(":at", s(at))
    }

    async fn raw_get(&self, message_id: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(DEP, format!("GetItem on {}", self.messages_table), e))?;
        Ok(out.item().cloned())
    }
}

//! `admin_messages` (`ADMIN_MESSAGES_TABLE`): the outbox of admin messages, with the send
//! lease on the recipient's profile and the audit event written in the same transactions.
//!
//! Stored shape: the message's fields as string attributes; `attempt` once SES may be called;
//! while the row is `pending`, `pending_queue = "pending"`, the key of the sparse index
//! `pending` (with `created_at`) that the sweep reads.

use super::event_item;
use super::profiles::{millis, DELETION_JOB_ATTR, SENDS_IN_FLIGHT_ATTR, SEND_LEASE_ATTR};
use crate::attrs::{get_s, message_cursor_after, message_cursor_key, opt_s, put_opt, req_s, s, Item};
use crate::deadline::WithinDeadline;
use crate::errors::{build, is_retryable_code, malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use chrono::{DateTime, Utc};
use domain::cursor::MessageCursor;
use domain::model::{timestamp, AdminMessage, MessageStatus, Page, SecurityEvent};
use domain::ports::{Attempt, DependencyError, MessageOutbox, Reserved, StoreResult};

const DEP: &str = "admin_messages";
const BY_RECIPIENT: &str = "by_recipient";
/// The sparse index of pending rows.
pub(crate) const PENDING_INDEX: &str = "pending";
/// Present (with this value) only while a row is pending.
pub(crate) const PENDING_ATTR: &str = "pending_queue";
const PENDING_VALUE: &str = "pending";
use domain::model::NOT_SENT;

#[derive(Clone, Debug)]
pub struct DynamoMessageOutbox {
    client: Client,
    messages_table: String,
    profiles_table: String,
    security_logs_table: String,
}

impl DynamoMessageOutbox {
    pub fn new(
        client: Client, messages_table: impl Into<String>, profiles_table: impl Into<String>,
        security_logs_table: impl Into<String>,
    ) -> Self {
        DynamoMessageOutbox {
            client,
            messages_table: messages_table.into(),
            profiles_table: profiles_table.into(),
            security_logs_table: security_logs_table.into(),
        }
    }

    /// The `UpdateItem` that moves a row out of `pending` (and so out of the sparse `pending`
    /// index) to `status`, with `error_code` when given: only while the row is still pending
    /// and `also` (an extra condition, `" AND ..."`, or empty) holds.
    async fn leave_pending(
        &self, message_id: &str, status: MessageStatus, error_code: Option<&str>, also: &str, at: &str,
    ) -> Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .condition_expression(format!("#status = :pending{also}"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#pending", PENDING_ATTR)
            .expression_attribute_values(":to", s(status.as_str()))
            .expression_attribute_values(":pending", s(MessageStatus::Pending.as_str()))
            .expression_attribute_values(":at", s(at));
        let set_code = match error_code {
            Some(code) => {
                update = update.expression_attribute_values(":code", s(code));
                ", error_code = :code"
            }
            None => "",
        };
        update
            .update_expression(format!(
                "SET #status = :to{set_code}, updated_at = :at REMOVE #pending"
            ))
            .send()
            .within_deadline()
            .await
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
    if m.status == MessageStatus::Pending {
        item.insert(PENDING_ATTR.into(), s(PENDING_VALUE));
    }
    // `ses_message_id` is an index key: it is absent, never empty.
    put_opt(
        &mut item,
        "ses_message_id",
        m.ses_message_id.as_deref().filter(|v| !v.is_empty()),
    );
    put_opt(&mut item, "error_code", m.error_code.as_deref());
    put_opt(&mut item, "sent_at", m.sent_at.as_deref());
    put_opt(&mut item, "updated_at", m.updated_at.as_deref());
    put_opt(&mut item, "attempt", m.attempt.as_deref());
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
        attempt: opt_s(item, "attempt"),
    })
}

/// The reason code of the `i`-th action of a cancelled transaction.
pub(crate) fn reason(reasons: &[CancellationReason], i: usize) -> Option<&str> {
    reasons.get(i).and_then(|r| r.code()).filter(|c| *c != "None")
}

pub(crate) fn cancelled_retryable(reasons: &[CancellationReason]) -> bool {
    reasons.iter().filter_map(|r| r.code()).any(|c| {
        matches!(
            c,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        ) || is_retryable_code(Some(c))
    })
}

pub(crate) fn cancelled(dep: &'static str, what: String, reasons: &[CancellationReason]) -> DependencyError {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    DependencyError::new(
        dep,
        cancelled_retryable(reasons),
        anyhow::anyhow!("transaction cancelled ({})", codes.join(", ")).context(what),
    )
}

/// An update whose condition says the work is already done (or must not happen) is a success.
fn condition_failed_is_done(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>, what: impl FnOnce() -> String,
) -> StoreResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
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
        // A new row, or a pending row SES was never called for (a retry that took the key
        // over): written again with the same content.
        let put = Put::builder()
            .table_name(&self.messages_table)
            .set_item(Some(message_item(message)))
            .condition_expression(
                "attribute_not_exists(message_id) OR (#status = :pending AND attribute_not_exists(attempt))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(MessageStatus::Pending.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let lease = Update::builder()
            .table_name(&self.profiles_table)
            .key("user_id", s(&message.recipient_id))
            .update_expression("SET #lease = :lease ADD #inflight :id")
            .condition_expression(
                "attribute_exists(email) AND attribute_not_exists(deleted_at) AND attribute_not_exists(#job)",
            )
            .expression_attribute_names("#lease", SEND_LEASE_ATTR)
            .expression_attribute_names("#inflight", SENDS_IN_FLIGHT_ATTR)
            .expression_attribute_names("#job", DELETION_JOB_ATTR)
            .expression_attribute_values(":id", AttributeValue::Ss(vec![message.message_id.clone()]))
            .expression_attribute_values(":lease", crate::attrs::n(millis(lease_until)))
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(lease).build(),
        ];
        let Some(reasons) = super::transact(&self.client, items, DEP, &what).await? else {
            return Ok(Reserved::Reserved);
        };
        let reasons = reasons.as_slice();
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
        Err(cancelled(DEP, what(), reasons))
    }

    async fn begin_attempt(
        &self, message_id: &str, attempt: &str, event: &SecurityEvent,
    ) -> StoreResult<Attempt> {
        let what = || {
            format!(
                "TransactWriteItems (begin attempt) on {} and {}",
                self.messages_table, self.security_logs_table
            )
        };
        // Only a pending row with no attempt, or with this same attempt (an SDK retry of this
        // very write), is marked.
        let mark = Update::builder()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .update_expression("SET attempt = :attempt")
            .condition_expression(
                "#status = :pending AND (attribute_not_exists(attempt) OR attempt = :attempt)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(MessageStatus::Pending.as_str()))
            .expression_attribute_values(":attempt", s(attempt))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let audit = Put::builder()
            .table_name(&self.security_logs_table)
            .set_item(Some(event_item(event)))
            .condition_expression("attribute_not_exists(event_id)")
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        let items = vec![
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().put(audit).build(),
        ];
        let Some(reasons) = super::transact(&self.client, items, DEP, &what).await? else {
            return Ok(Attempt::Began);
        };
        let reasons = reasons.as_slice();
        if cancelled_retryable(reasons) {
            return Err(cancelled(DEP, what(), reasons));
        }
        if reason(reasons, 0) == Some("ConditionalCheckFailed") {
            let row = match reasons[0].item() {
                Some(item) => Some(item.clone()),
                None => self.raw_get(message_id).await?,
            };
            let Some(row) = row else {
                return Ok(Attempt::NotPending);
            };
            if get_s(&row, "status") != Some(MessageStatus::Pending.as_str()) {
                return Ok(Attempt::NotPending);
            }
            return Ok(match get_s(&row, "attempt") {
                Some(a) if a == attempt => Attempt::Began,
                _ => Attempt::Taken,
            });
        }
        if reason(reasons, 1) == Some("ConditionalCheckFailed") {
            // The event exists, so an attempt was marked in the same transaction: ours
            // (a retry that had applied, answered as a failure by a store that does not replay
            // transactions) or another one's.
            return Ok(
                match self
                    .raw_get(message_id)
                    .await?
                    .as_ref()
                    .and_then(|r| get_s(r, "attempt"))
                {
                    Some(a) if a == attempt => Attempt::Began,
                    _ => Attempt::Taken,
                },
            );
        }
        Err(cancelled(DEP, what(), reasons))
    }

    async fn mark_sent(&self, message_id: &str, ses_message_id: &str, at: &str) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .update_expression(
                "SET #status = :sent, ses_message_id = :sid, sent_at = :at, updated_at = :at REMOVE #pending",
            )
            .condition_expression("#status IN (:pending, :unconfirmed)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#pending", PENDING_ATTR)
            .expression_attribute_values(":sent", s(MessageStatus::Sent.as_str()))
            .expression_attribute_values(":pending", s(MessageStatus::Pending.as_str()))
            .expression_attribute_values(":unconfirmed", s(MessageStatus::Unconfirmed.as_str()))
            .expression_attribute_values(":sid", s(ses_message_id))
            .expression_attribute_values(":at", s(at))
            .send()
            .within_deadline()
            .await;
        if condition_failed_is_done(result, || {
            format!("UpdateItem (mark sent) on {}", self.messages_table)
        })? {
            return Ok(());
        }
        // An SES event moved the row on first (or the row was erased with its recipient):
        // keep its status, record what it lacks.
        let result = self
            .client
            .update_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .update_expression(
                "SET ses_message_id = if_not_exists(ses_message_id, :sid), sent_at = if_not_exists(sent_at, :at)",
            )
            .condition_expression("attribute_exists(message_id)")
            .expression_attribute_values(":sid", s(ses_message_id))
            .expression_attribute_values(":at", s(at))
            .send()
            .within_deadline()
            .await;
        condition_failed_is_done(result, || {
            format!("UpdateItem (mark sent) on {}", self.messages_table)
        })
        .map(drop)
    }

    async fn release(&self, recipient_id: &str, message_id: &str) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.profiles_table)
            .key("user_id", s(recipient_id))
            .update_expression("DELETE #inflight :id")
            // Never on a row that is gone or a tombstone (anonymise removed the set).
            .condition_expression("attribute_exists(#inflight)")
            .expression_attribute_names("#inflight", SENDS_IN_FLIGHT_ATTR)
            .expression_attribute_values(":id", AttributeValue::Ss(vec![message_id.to_owned()]))
            .send()
            .within_deadline()
            .await;
        condition_failed_is_done(result, || {
            format!("UpdateItem (release send lease) on {}", self.profiles_table)
        })
        .map(drop)
    }

    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()> {
        // Never turn a sent message back into a failed one.
        let result = self
            .leave_pending(message_id, MessageStatus::Failed, Some(error_code), "", at)
            .await;
        condition_failed_is_done(result, || {
            format!("UpdateItem (mark failed) on {}", self.messages_table)
        })
        .map(drop)
    }

    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>> {
        self.raw_get(message_id)
            .await?
            .as_ref()
            .map(message_from)
            .transpose()
    }

    async fn history(
        &self, recipient_id: &str, limit: usize, cursor: Option<&MessageCursor>,
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
            .within_deadline()
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

    async fn stale_pending(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut start = None;
        while ids.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.messages_table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("#pending = :pending AND created_at < :before")
                .expression_attribute_names("#pending", PENDING_ATTR)
                .expression_attribute_values(":pending", s(PENDING_VALUE))
                .expression_attribute_values(":before", s(timestamp(before)))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .within_deadline()
                .await
                .map_err(|e| {
                    sdk(
                        DEP,
                        format!("Query {PENDING_INDEX} on {}", self.messages_table),
                        e,
                    )
                })?;
            ids.extend(
                out.items()
                    .iter()
                    .filter_map(|i| get_s(i, "message_id").map(str::to_owned)),
            );
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        Ok(ids)
    }

    async fn settle_stale(&self, message_id: &str, at: &str) -> StoreResult<Option<MessageStatus>> {
        let what = || {
            format!(
                "UpdateItem (settle a stale pending row) on {}",
                self.messages_table
            )
        };
        // SES may have been called for a row with an attempt: unconfirmed.
        let unconfirmed = self
            .leave_pending(
                message_id,
                MessageStatus::Unconfirmed,
                None,
                " AND attribute_exists(attempt)",
                at,
            )
            .await;
        if condition_failed_is_done(unconfirmed, what)? {
            return Ok(Some(MessageStatus::Unconfirmed));
        }
        // Never handed to SES (its request died before the attempt): failed.
        let failed = self
            .leave_pending(
                message_id,
                MessageStatus::Failed,
                Some(NOT_SENT),
                " AND attribute_not_exists(attempt)",
                at,
            )
            .await;
        Ok(condition_failed_is_done(failed, what)?.then_some(MessageStatus::Failed))
    }
}

impl DynamoMessageOutbox {
    async fn raw_get(&self, message_id: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.messages_table)
            .key("message_id", s(message_id))
            .consistent_read(true)
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(DEP, format!("GetItem on {}", self.messages_table), e))?;
        Ok(out.item().cloned())
    }
}

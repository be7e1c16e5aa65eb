//! The read side of `security_logs`: the audit trail, newest first, through its indexes only
//! (never a scan).
//!
//! - a target filter reads `by_target` (target_id, created_at);
//! - else an actor filter reads `by_actor` (actor_id, created_at);
//! - else a type filter reads `by_type` (event_type, created_at);
//! - no filter merges the `by_type` reads of every event type.
//!
//! The other filters are filter expressions on the chosen index. Rows come newest first by
//! `created_at`; rows of one millisecond are ordered by `event_id` here, so a page that ends
//! inside such a group reads the whole group first. The erasure receipts come from
//! `by_email_hash` (target_email_sha256, created_at), which only `admin_deleted_user` rows
//! are in.

use super::security_log::DynamoSecurityLog;
use super::EVENT_CORE;
use crate::attrs::{get_n, get_s, s, Item};
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::model::{EventType, SecurityEvent};
use domain::ports::{AuditPage, AuditQuery, AuditTrail, DependencyError, StoreResult};
use std::collections::{BTreeMap, HashMap};

const DEP: &str = "security_logs";
pub const BY_TARGET: &str = "by_target";
pub const BY_ACTOR: &str = "by_actor";
pub const BY_TYPE: &str = "by_type";
pub const BY_EMAIL_HASH: &str = "by_email_hash";

/// One index partition to read, and the filters the index key does not cover.
struct Read<'a> {
    index: &'static str,
    key_attr: &'static str,
    key: &'a str,
    filters: Vec<(&'static str, &'a str)>,
}

impl DynamoSecurityLog {
    /// The newest rows of one index partition that pass `read`'s filters and come after the
    /// query's cursor: at most `want`, and whether more follow.
    async fn read_partition(
        &self, read: &Read<'_>, query: &AuditQuery, want: usize,
    ) -> StoreResult<(Vec<SecurityEvent>, bool)> {
        let mut names = HashMap::from([("#k".to_owned(), read.key_attr.to_owned())]);
        let mut values = HashMap::from([(":k".to_owned(), s(read.key))]);
        let mut key_condition = "#k = :k".to_owned();
        if let Some(cursor) = &query.after {
            names.insert("#c".into(), "created_at".into());
            values.insert(":c".into(), s(cursor.created_at()));
            key_condition.push_str(" AND #c <= :c");
        }
        let mut filter = Vec::new();
        for (i, (attr, value)) in read.filters.iter().enumerate() {
            names.insert(format!("#f{i}"), (*attr).to_owned());
            values.insert(format!(":f{i}"), s(*value));
            filter.push(format!("#f{i} = :f{i}"));
        }
        let mut rows: Vec<SecurityEvent> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(read.index)
                .key_condition_expression(&key_condition)
                .set_filter_expression((!filter.is_empty()).then(|| filter.join(" AND ")))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(want + 1).unwrap_or(i32::MAX).max(25))
                .set_exclusive_start_key(start.take())
                .send()
                .within_deadline()
                .await
                .map_err(|e| sdk(DEP, format!("Query {} on {}", read.index, self.table), e))?;
            let last_read = out.last_evaluated_key().cloned();
            for item in out.items() {
                let Some(event) = event_from_item(item)? else {
                    continue;
                };
                if query
                    .after
                    .as_ref()
                    .is_none_or(|c| c.is_before(&event.created_at, &event.event_id))
                {
                    rows.push(event);
                }
            }
            rows.sort_by(|a, b| (&b.created_at, &b.event_id).cmp(&(&a.created_at, &a.event_id)));
            let Some(next) = last_read else {
                let more = rows.len() > want;
                rows.truncate(want);
                return Ok((rows, more));
            };
            // Enough rows, unless the page ended inside the millisecond of the last one kept
            // (a row of it still unread may sort before it).
            if rows.len() > want {
                let boundary = &rows[want - 1].created_at;
                let ended_inside = get_s(&next, "created_at") == Some(boundary.as_str());
                if !ended_inside {
                    rows.truncate(want);
                    return Ok((rows, true));
                }
            }
            start = Some(next);
        }
    }
}

#[async_trait]
impl AuditTrail for DynamoSecurityLog {
    async fn list(&self, query: &AuditQuery) -> StoreResult<AuditPage> {
        let want = query.limit.clamp(1, AuditQuery::MAX_LIMIT);
        let type_name = query.event_type.map(EventType::as_str);
        let read = if let Some(target) = query.target.as_deref() {
            let mut filters = Vec::new();
            filters.extend(query.actor.as_deref().map(|a| ("actor_id", a)));
            filters.extend(type_name.map(|t| ("event_type", t)));
            Some(Read {
                index: BY_TARGET,
                key_attr: "target_id",
                key: target,
                filters,
            })
        } else if let Some(actor) = query.actor.as_deref() {
            let filters = type_name.map(|t| ("event_type", t)).into_iter().collect();
            Some(Read {
                index: BY_ACTOR,
                key_attr: "actor_id",
                key: actor,
                filters,
            })
        } else {
            type_name.map(|t| Read {
                index: BY_TYPE,
                key_attr: "event_type",
                key: t,
                filters: Vec::new(),
            })
        };
        let (mut items, more) = match read {
            Some(read) => self.read_partition(&read, query, want).await?,
            None => {
                // No filter: every type's newest rows, merged.
                let reads: Vec<Read<'_>> = EventType::ALL
                    .iter()
                    .map(|t| Read {
                        index: BY_TYPE,
                        key_attr: "event_type",
                        key: t.as_str(),
                        filters: Vec::new(),
                    })
                    .collect();
                let parts =
                    futures::future::try_join_all(reads.iter().map(|r| self.read_partition(r, query, want)))
                        .await?;
                let mut more = false;
                let mut items = Vec::new();
                for (rows, part_more) in parts {
                    more |= part_more;
                    items.extend(rows);
                }
                items.sort_by(|a, b| (&b.created_at, &b.event_id).cmp(&(&a.created_at, &a.event_id)));
                more |= items.len() > want;
                (items, more)
            }
        };
        items.truncate(want);
        Ok(AuditPage { items, more })
    }

    async fn erasure_receipts(&self, email_sha256: &str, limit: usize) -> StoreResult<Vec<SecurityEvent>> {
        let read = Read {
            index: BY_EMAIL_HASH,
            key_attr: "target_email_sha256",
            key: email_sha256,
            filters: vec![("event_type", EventType::AdminDeletedUser.as_str())],
        };
        let query = AuditQuery {
            limit,
            ..AuditQuery::default()
        };
        Ok(self.read_partition(&read, &query, limit.max(1)).await?.0)
    }
}

/// A stored row → the event. `Ok(None)`: a row of an event type this version does not know
/// (skipped, not an error: a newer writer may add types).
pub(crate) fn event_from_item(item: &Item) -> StoreResult<Option<SecurityEvent>> {
    let required = |name: &str| {
        get_s(item, name).map(str::to_owned).ok_or_else(|| {
            DependencyError::new(DEP, false, anyhow::anyhow!("a security_logs row without {name}"))
        })
    };
    let Some(event_type) = get_s(item, "event_type").and_then(EventType::parse) else {
        tracing::warn!(
            event_id = get_s(item, "event_id"),
            "a security_logs row of an unknown event type"
        );
        return Ok(None);
    };
    let mut fields = BTreeMap::new();
    for (name, value) in item {
        if EVENT_CORE.contains(&name.as_str()) {
            continue;
        }
        if let AttributeValue::S(text) = value {
            fields.insert(name.clone(), text.clone());
        }
    }
    // A refusal row counts the refusals of its caller's minute: the ids it keeps and those
    // counted beyond them.
    let ids = item
        .get(super::security_log::REFUSAL_IDS)
        .and_then(|v| v.as_ss().ok())
        .map_or(0, Vec::len) as u64;
    let over: u64 = get_n(item, super::security_log::REFUSALS_OVER).unwrap_or(0);
    if ids + over > 1 {
        fields.insert("refusals".into(), (ids + over).to_string());
    }
    Ok(Some(SecurityEvent {
        event_id: required("event_id")?,
        event_type,
        actor_id: get_s(item, "actor_id").map(str::to_owned),
        target_id: required("target_id")?,
        created_at: required("created_at")?,
        request_id: required("request_id")?,
        source_ip: get_s(item, "source_ip").map(str::to_owned),
        user_agent: get_s(item, "user_agent").map(str::to_owned),
        fields,
        expires_at: get_n(item, "expires_at"),
    }))
}

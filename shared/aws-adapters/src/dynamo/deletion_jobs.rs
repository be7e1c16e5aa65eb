//! `deletion_jobs` (`DELETION_JOBS_TABLE`): one job per target user, saved with optimistic
//! concurrency on `version`.
//!
//! Stored shape: the job's scalar fields as top-level attributes (strings, `version` a
//! number), `progress`, `late_progress` and `lease` as JSON strings, `status` (derived from
//! the step, for people reading the table), the per-table counts as maps `deleted` and
//! `late`, and, while the job is not done, `open_state` (`in_progress` or `late_pass`) with
//! `due_at`: the keys of the sparse index `open_jobs` that the sweep reads. `save_token`
//! names the save that wrote the row, so a retried save that had applied is recognised.

use super::outbox::{cancelled, cancelled_retryable, reason};
use super::profiles::DELETION_JOB_ATTR;
use super::{get_row, transact};
use crate::attrs::{get_s, n, s, Item};
use crate::deadline::WithinDeadline;
use crate::errors::{build, malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use domain::job::{DeletionJob, Step};
use domain::ports::{Created, DeletionJobs, OpenJob, Saved, StoreResult};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const DEP: &str = "deletion_jobs";
/// Attempts of the job-creation transaction while it meets a concurrent one.
const CREATE_ATTEMPTS: u32 = 4;
/// The sparse index of jobs that are not done.
pub(crate) const OPEN_INDEX: &str = "open_jobs";
pub(crate) const OPEN_ATTR: &str = "open_state";
const IN_PROGRESS: &str = "in_progress";
const LATE_PASS: &str = "late_pass";
/// Attributes written for readers or for the index only; never read back into the job.
const DERIVED: &[&str] = &["deleted", "late", "status", OPEN_ATTR, "due_at", "save_token"];
/// Attributes holding JSON.
const JSON: &[&str] = &["progress", "late_progress", "lease"];

#[derive(Clone, Debug)]
pub struct DynamoDeletionJobs {
    client: Client,
    table: String,
    profiles_table: String,
}

impl DynamoDeletionJobs {
    pub fn new(client: Client, table: impl Into<String>, profiles_table: impl Into<String>) -> Self {
        DynamoDeletionJobs {
            client,
            table: table.into(),
            profiles_table: profiles_table.into(),
        }
    }
}

fn counts_map(counts: BTreeMap<String, u64>) -> AttributeValue {
    AttributeValue::M(
        counts
            .into_iter()
            .map(|(t, c)| (t, n(c)))
            .collect::<HashMap<_, _>>(),
    )
}

pub(crate) fn job_item(job: &DeletionJob, save_token: &str) -> StoreResult<Item> {
    let value =
        serde_json::to_value(job).map_err(|e| malformed(DEP, format!("a job does not serialise: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(malformed(DEP, "a job does not serialise to an object"));
    };
    let mut item = Item::new();
    for (k, v) in fields {
        let attr = match v {
            Value::Null => continue,
            Value::String(v) => s(v),
            Value::Number(v) => n(v),
            Value::Bool(v) => AttributeValue::Bool(v),
            other => s(other.to_string()),
        };
        item.insert(k, attr);
    }
    item.insert("status".into(), s(job.status().as_str()));
    item.insert("deleted".into(), counts_map(job.counts()));
    if job.step >= Step::LatePass {
        item.insert("late".into(), counts_map(job.late_counts()));
    }
    if let Some(due) = job.sweep_due_at() {
        let state = if job.step == Step::LatePass {
            LATE_PASS
        } else {
            IN_PROGRESS
        };
        item.insert(OPEN_ATTR.into(), s(state));
        item.insert("due_at".into(), s(due));
    }
    item.insert("save_token".into(), s(save_token));
    Ok(item)
}

pub(crate) fn job_from(item: &Item) -> StoreResult<DeletionJob> {
    let mut fields = serde_json::Map::new();
    for (k, v) in item {
        if DERIVED.contains(&k.as_str()) {
            continue;
        }
        let value = match v {
            AttributeValue::S(text) if JSON.contains(&k.as_str()) => serde_json::from_str(text)
                .map_err(|e| malformed(DEP, format!("the job's `{k}` is not valid JSON: {e}")))?,
            AttributeValue::S(text) => Value::String(text.clone()),
            AttributeValue::N(num) => serde_json::from_str(num)
                .map_err(|_| malformed(DEP, format!("`{k}` of a job is not a number")))?,
            AttributeValue::Bool(b) => Value::Bool(*b),
            _ => continue,
        };
        fields.insert(k.clone(), value);
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| malformed(DEP, format!("a job row does not parse: {e}")))
}

#[async_trait]
impl DeletionJobs for DynamoDeletionJobs {
    async fn create(&self, job: &DeletionJob) -> StoreResult<Created> {
        let what = || {
            format!(
                "TransactWriteItems (create job) on {} and {}",
                self.table, self.profiles_table
            )
        };
        let token = uuid::Uuid::new_v4().to_string();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(job_item(job, &token)?))
            .condition_expression("attribute_not_exists(user_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        // From this transaction on, every route treats the target as deleted.
        let mark = Update::builder()
            .table_name(&self.profiles_table)
            .key("user_id", s(&job.user_id))
            .update_expression("SET #job = :job")
            .condition_expression("attribute_exists(user_id)")
            .expression_attribute_names("#job", DELETION_JOB_ATTR)
            .expression_attribute_values(":job", s(&job.job_id))
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        // The actor is not being deleted themself: two owners deleting each other at once
        // make exactly one job.
        let actor = ConditionCheck::builder()
            .table_name(&self.profiles_table)
            .key("user_id", s(&job.actor_id))
            .condition_expression("attribute_not_exists(#job) AND attribute_not_exists(deleted_at)")
            .expression_attribute_names("#job", DELETION_JOB_ATTR)
            .build()
            .map_err(|e| build(DEP, what(), e))?;
        // Two transactions on the same items at once (two owners deleting each other) cancel
        // one with TransactionConflict: try again, so that the loser meets the winner's
        // write and is refused for it, instead of answering 503.
        let mut attempt = 0;
        let reasons = loop {
            attempt += 1;
            let items = vec![
                TransactWriteItem::builder().put(put.clone()).build(),
                TransactWriteItem::builder().update(mark.clone()).build(),
                TransactWriteItem::builder()
                    .condition_check(actor.clone())
                    .build(),
            ];
            let Some(reasons) = transact(&self.client, items, DEP, &what).await? else {
                return Ok(Created::Created);
            };
            let conflict = reasons.iter().any(|r| r.code() == Some("TransactionConflict"));
            if conflict && attempt < CREATE_ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_millis(20 + fastrand::u64(0..80))).await;
                continue;
            }
            break reasons;
        };
        let reasons = reasons.as_slice();
        if cancelled_retryable(reasons) {
            return Err(cancelled(DEP, what(), reasons));
        }
        if reason(reasons, 0) == Some("ConditionalCheckFailed") {
            let existing = match reasons[0].item() {
                Some(item) => Some(job_from(item)?),
                None => self.get(&job.user_id).await?,
            };
            return existing
                .map(Created::Exists)
                .ok_or_else(|| malformed(DEP, "the job existed for the condition but cannot be read"));
        }
        if reason(reasons, 2) == Some("ConditionalCheckFailed") {
            return Ok(Created::ActorDeleted);
        }
        Err(cancelled(DEP, what(), reasons))
    }

    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>> {
        let row = get_row(&self.client, &self.table, "user_id", user_id, DEP).await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved> {
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job, &token)?))
            // The version read, or this very save applied by an attempt whose answer was lost.
            .condition_expression("#version = :previous OR save_token = :token")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":previous", n(job.version.saturating_sub(1)))
            .expression_attribute_values(":token", s(&token))
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(_) => Ok(Saved::Saved),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Saved::Conflict)
            }
            Err(e) => Err(sdk(DEP, format!("PutItem (save) on {}", self.table), e)),
        }
    }

    async fn open(&self, limit: usize) -> StoreResult<Vec<OpenJob>> {
        let mut open = Vec::new();
        for state in [IN_PROGRESS, LATE_PASS] {
            let already = open.len();
            let rows = super::query_index(
                &self.client,
                &self.table,
                OPEN_INDEX,
                OPEN_ATTR,
                state,
                DEP,
                |n| already + n >= limit,
            )
            .await?;
            open.extend(rows.iter().filter_map(|i| {
                Some(OpenJob {
                    user_id: get_s(i, "user_id")?.to_owned(),
                    job_id: get_s(i, "job_id")?.to_owned(),
                    created_at: get_s(i, "created_at").unwrap_or_default().to_owned(),
                    due_at: get_s(i, "due_at")?.to_owned(),
                    completed: state == LATE_PASS,
                })
            }));
        }
        open.sort_by(|a, b| a.due_at.cmp(&b.due_at));
        open.truncate(limit);
        Ok(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::job::{Lease, TableProgress};

    fn job() -> DeletionJob {
        DeletionJob {
            user_id: "u1".into(),
            job_id: "j1".into(),
            step: Step::Cascade,
            actor_id: "admin".into(),
            target_role: "user".into(),
            target_email_sha256: Some("ab".repeat(32)),
            auth_username: None,
            created_at: "2025-01-01T00:00:00.000Z".into(),
            updated_at: "2025-01-01T00:00:01.000Z".into(),
            locked_out_at: Some("2025-01-01T00:00:00.500Z".into()),
            completed_at: None,
            late_pass_due_at: None,
            late_pass_done_at: None,
            request_id: "r1".into(),
            source_ip: Some("203.0.113.9".into()),
            user_agent: None,
            progress: BTreeMap::from([(
                "transactions".to_owned(),
                TableProgress {
                    deleted: 250,
                    cursor: Some(BTreeMap::from([
                        ("user_id".into(), "u1".into()),
                        ("transaction_id".into(), "t9".into()),
                    ])),
                    pending: vec![BTreeMap::from([
                        ("user_id".into(), "u1".into()),
                        ("transaction_id".into(), "t8".into()),
                    ])],
                    ..TableProgress::default()
                },
            )]),
            late_progress: BTreeMap::new(),
            version: 7,
            lease: Some(Lease {
                owner: "runner".into(),
                until: "2025-01-01T00:01:00.000Z".into(),
            }),
        }
    }

    #[test]
    fn a_job_round_trips_through_its_stored_shape() {
        let item = job_item(&job(), "t").unwrap();
        assert!(item["progress"].as_s().is_ok(), "progress is a JSON string");
        assert_eq!(item["version"].as_n().unwrap(), "7");
        assert_eq!(item["status"].as_s().unwrap(), "in_progress");
        let counts = item["deleted"].as_m().unwrap();
        assert_eq!(counts["transactions"].as_n().unwrap(), "250");
        assert_eq!(counts["sessions"].as_n().unwrap(), "0");
        assert!(!item.contains_key("auth_username"));
        assert!(!item.contains_key("late"));
        assert_eq!(job_from(&item).unwrap(), job());
    }

    #[test]
    fn an_open_job_carries_the_keys_of_the_sparse_index_and_a_done_one_does_not() {
        let item = job_item(&job(), "t").unwrap();
        assert_eq!(item[OPEN_ATTR].as_s().unwrap(), "in_progress");
        assert_eq!(item["due_at"].as_s().unwrap(), "2025-01-01T00:03:00.000Z");
        let mut late = job();
        late.step = Step::LatePass;
        late.late_pass_due_at = Some("2025-01-01T01:00:00.500Z".into());
        let item = job_item(&late, "t").unwrap();
        assert_eq!(item[OPEN_ATTR].as_s().unwrap(), "late_pass");
        assert_eq!(item["due_at"].as_s().unwrap(), "2025-01-01T01:00:00.500Z");
        assert_eq!(item["status"].as_s().unwrap(), "completed");
        let mut done = late;
        done.step = Step::Done;
        let item = job_item(&done, "t").unwrap();
        assert!(!item.contains_key(OPEN_ATTR) && !item.contains_key("due_at"));
        assert_eq!(job_from(&item).unwrap(), done);
    }
}

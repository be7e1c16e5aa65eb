//! `deletion_jobs` (`DELETION_JOBS_TABLE`): one job per target user, saved with optimistic
//! concurrency on `version`.
//!
//! Stored shape: the job's scalar fields as top-level attributes (strings, `version` a
//! number), `progress` as a JSON string, and the per-table counts as a map `deleted` for
//! people reading the table.

use crate::attrs::{n, s, Item};
use crate::errors::{malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use domain::job::DeletionJob;
use domain::ports::{Created, DeletionJobs, Saved, StoreResult};
use serde_json::Value;
use std::collections::HashMap;

const DEP: &str = "deletion_jobs";
const PROGRESS: &str = "progress";
const COUNTS: &str = "deleted";

#[derive(Clone, Debug)]
pub struct DynamoDeletionJobs {
    client: Client,
    table: String,
}

impl DynamoDeletionJobs {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDeletionJobs {
            client,
            table: table.into(),
        }
    }
}

pub(crate) fn job_item(job: &DeletionJob) -> StoreResult<Item> {
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
    let counts: HashMap<String, AttributeValue> = job.counts().into_iter().map(|(t, c)| (t, n(c))).collect();
    item.insert(COUNTS.into(), AttributeValue::M(counts));
    Ok(item)
}

pub(crate) fn job_from(item: &Item) -> StoreResult<DeletionJob> {
    let mut fields = serde_json::Map::new();
    for (k, v) in item {
        if k == COUNTS {
            continue;
        }
        let value = match v {
            AttributeValue::S(text) if k == PROGRESS => serde_json::from_str(text)
                .map_err(|e| malformed(DEP, format!("the job's progress is not valid JSON: {e}")))?,
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
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)?))
            .condition_expression("attribute_not_exists(user_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Created::Created),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(ccf)) = err.as_service_error() else {
            return Err(sdk(DEP, format!("PutItem (create) on {}", self.table), err));
        };
        let existing = match ccf.item() {
            Some(item) => Some(job_from(item)?),
            None => self.get(&job.user_id).await?,
        };
        existing
            .map(Created::Exists)
            .ok_or_else(|| malformed(DEP, "the job existed for the condition but cannot be read"))
    }

    async fn get(&self, user_id: &str) -> StoreResult<Option<DeletionJob>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("user_id", s(user_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(DEP, format!("GetItem on {}", self.table), e))?;
        out.item().map(job_from).transpose()
    }

    async fn save(&self, job: &DeletionJob) -> StoreResult<Saved> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)?))
            .condition_expression("#version = :previous")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":previous", n(job.version.saturating_sub(1)))
            .send()
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::job::{JobStatus, Step, TableProgress};
    use std::collections::BTreeMap;

    fn job() -> DeletionJob {
        DeletionJob {
            user_id: "u1".into(),
            job_id: "j1".into(),
            status: JobStatus::InProgress,
            step: Step::Cascade,
            actor_id: "admin".into(),
            target_role: "user".into(),
            target_email_sha256: Some("ab".repeat(32)),
            auth_username: None,
            created_at: "2025-01-01T00:00:00.000Z".into(),
            updated_at: "2025-01-01T00:00:01.000Z".into(),
            completed_at: None,
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
                    exhausted: false,
                    done: false,
                },
            )]),
            version: 7,
            lease_owner: Some("runner".into()),
            lease_until: Some("2025-01-01T00:01:00.000Z".into()),
        }
    }

    #[test]
    fn a_job_round_trips_through_its_stored_shape() {
        let item = job_item(&job()).unwrap();
        assert!(item["progress"].as_s().is_ok(), "progress is a JSON string");
        assert_eq!(item["version"].as_n().unwrap(), "7");
        let counts = item["deleted"].as_m().unwrap();
        assert_eq!(counts["transactions"].as_n().unwrap(), "250");
        assert_eq!(counts["sessions"].as_n().unwrap(), "0");
        assert!(!item.contains_key("auth_username"));
        assert_eq!(job_from(&item).unwrap(), job());
    }
}

//! `profiles` (`PROFILES_TABLE`): read, anonymise into the tombstone, list.

use crate::attrs::{get_n, get_s, opt_s, req_s, s, user_cursor_after, user_cursor_key, Item};
use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use domain::model::{timestamp, Page, Profile};
use domain::ports::{Anonymised, ListQuery, Profiles, StoreResult};

const DEP: &str = "profiles";
/// Scan pages read per `list` call at most (each up to `SCAN_PAGE` rows).
const MAX_SCAN_PAGES: usize = 20;
const SCAN_PAGE: i32 = 200;

/// When the latest send lease runs out (see `DynamoMessageOutbox::reserve`), epoch ms.
pub(crate) const SEND_LEASE_ATTR: &str = "send_lease_until";
/// The message ids of the sends in flight to this user (a string set: adding or removing
/// the same id twice, as an SDK retry of an applied write does, counts once). DynamoDB drops
/// the attribute when the last id goes. The lease bounds a send that crashed before its
/// release.
pub(crate) const SENDS_IN_FLIGHT_ATTR: &str = "send_leases";
/// The deletion job of this user, set when the job is created (see `DynamoDeletionJobs`).
pub(crate) const DELETION_JOB_ATTR: &str = "deletion_job_id";
/// Epoch seconds: tokens issued before are refused (set by the token-revocation function).
pub(crate) const TOKENS_VALID_AFTER_ATTR: &str = "tokens_valid_after";
/// The index of profiles by role: finds the owners.
const BY_ROLE: &str = "by_role";

#[derive(Clone, Debug)]
pub struct DynamoProfiles {
    client: Client,
    table: String,
}

impl DynamoProfiles {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoProfiles {
            client,
            table: table.into(),
        }
    }
}

pub(crate) fn profile_from(item: &Item) -> StoreResult<Profile> {
    Ok(Profile {
        user_id: req_s(item, "user_id", DEP)?,
        email: opt_s(item, "email"),
        display_name: opt_s(item, "display_name").unwrap_or_default(),
        role: opt_s(item, "role").unwrap_or_default(),
        created_at: opt_s(item, "created_at").unwrap_or_default(),
        deleted_at: opt_s(item, "deleted_at"),
        auth_username: opt_s(item, "auth_username"),
        deletion_job_id: opt_s(item, DELETION_JOB_ATTR),
        tokens_valid_after: get_n(item, TOKENS_VALID_AFTER_ATTR),
    })
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// What a profile row says about anonymising it now.
fn state_of(item: Option<&Item>, now: DateTime<Utc>) -> Option<Anonymised> {
    let Some(item) = item else {
        return Some(Anonymised::Missing);
    };
    if item.contains_key("deleted_at") {
        return Some(Anonymised::Done);
    }
    let in_flight = item
        .get(SENDS_IN_FLIGHT_ATTR)
        .and_then(|v| v.as_ss().ok())
        .is_some_and(|ids| !ids.is_empty());
    match get_n::<i64>(item, SEND_LEASE_ATTR) {
        Some(until) if until >= millis(now) && in_flight => Some(Anonymised::SendInFlight {
            until: from_millis(until),
        }),
        // The condition failed for a reason that no longer holds: try again.
        _ => None,
    }
}

fn matches(p: &Profile, query: &ListQuery, needle: Option<&str>) -> bool {
    if !query.include_deleted && p.is_tombstone() {
        return false;
    }
    needle.is_none_or(|n| {
        p.display_name.to_lowercase().contains(n)
            || p.email.as_deref().is_some_and(|e| e.to_lowercase().contains(n))
    })
}

#[async_trait]
impl Profiles for DynamoProfiles {
    async fn get(&self, user_id: &str) -> StoreResult<Option<Profile>> {
        self.raw_get(user_id)
            .await?
            .as_ref()
            .map(profile_from)
            .transpose()
    }

    async fn anonymise(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Anonymised> {
        for _ in 0..3 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("user_id", s(user_id))
                .update_expression(
                    "SET display_name = :name, deleted_at = if_not_exists(deleted_at, :at) \
                     REMOVE email, auth_username, #lease, #inflight",
                )
                .condition_expression(
                    "attribute_exists(user_id) AND (attribute_exists(deleted_at) \
                     OR attribute_not_exists(#lease) OR #lease < :now \
                     OR attribute_not_exists(#inflight))",
                )
                .expression_attribute_names("#lease", SEND_LEASE_ATTR)
                .expression_attribute_names("#inflight", SENDS_IN_FLIGHT_ATTR)
                .expression_attribute_values(":name", s(Profile::TOMBSTONE_NAME))
                .expression_attribute_values(":at", s(timestamp(now)))
                .expression_attribute_values(":now", AttributeValue::N(millis(now).to_string()))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .within_deadline()
                .await;
            let err = match result {
                Ok(_) => return Ok(Anonymised::Done),
                Err(err) => err,
            };
            let Some(UpdateItemError::ConditionalCheckFailedException(ccf)) = err.as_service_error() else {
                return Err(sdk(DEP, format!("UpdateItem (anonymise) on {}", self.table), err));
            };
            let old = match ccf.item() {
                Some(item) => Some(item.clone()),
                // Not every DynamoDB answers with the old item: read it.
                None => self.raw_get(user_id).await?,
            };
            if let Some(state) = state_of(old.as_ref(), now) {
                return Ok(state);
            }
        }
        Err(crate::errors::malformed(
            DEP,
            "anonymise kept failing its condition on a row that satisfies it",
        ))
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<Profile>> {
        let limit = query.limit.max(1);
        let needle = query
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let mut start = query.cursor.as_ref().map(user_cursor_key);
        let mut items = Vec::new();
        for _ in 0..MAX_SCAN_PAGES {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.clone())
                .limit(SCAN_PAGE)
                .send()
                .within_deadline()
                .await
                .map_err(|e| sdk(DEP, format!("Scan on {}", self.table), e))?;
            let rows = out.items();
            for (i, row) in rows.iter().enumerate() {
                let profile = profile_from(row)?;
                if !matches(&profile, query, needle.as_deref()) {
                    continue;
                }
                items.push(profile);
                if items.len() == limit {
                    let more = i + 1 < rows.len() || out.last_evaluated_key().is_some();
                    let next = match more {
                        true => Some(user_cursor_after(row, DEP)?.to_string()),
                        false => None,
                    };
                    return Ok(Page { items, next });
                }
            }
            match out.last_evaluated_key() {
                Some(lek) => start = Some(lek.clone()),
                None => return Ok(Page { items, next: None }),
            }
        }
        // Stop reading after a bounded amount of work; the cursor continues the scan.
        let next = start
            .map(|key| user_cursor_after(&key, DEP))
            .transpose()?
            .map(|c| c.to_string());
        Ok(Page { items, next })
    }

    async fn revoke_tokens(&self, user_id: &str, after: i64) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("user_id", s(user_id))
            .update_expression("SET #tva = :after")
            // Only ever forward (events come at least once, in any order).
            .condition_expression(
                "attribute_exists(user_id) AND (attribute_not_exists(#tva) OR #tva < :after)",
            )
            .expression_attribute_names("#tva", TOKENS_VALID_AFTER_ATTR)
            .expression_attribute_values(":after", AttributeValue::N(after.to_string()))
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // A later cut-off is there already, or there is no profile.
                Ok(self.raw_get(user_id).await?.is_some())
            }
            Err(e) => Err(sdk(
                DEP,
                format!("UpdateItem (revoke tokens) on {}", self.table),
                e,
            )),
        }
    }

    async fn active_owners(&self) -> StoreResult<Vec<String>> {
        let rows = super::query_index(&self.client, &self.table, BY_ROLE, "role", "owner", DEP, |_| {
            false
        })
        .await?;
        Ok(rows
            .iter()
            .filter(|i| !i.contains_key("deleted_at") && !i.contains_key(DELETION_JOB_ATTR))
            .filter_map(|i| get_s(i, "user_id").map(str::to_owned))
            .collect())
    }
}

impl DynamoProfiles {
    async fn raw_get(&self, user_id: &str) -> StoreResult<Option<Item>> {
        super::get_row(&self.client, &self.table, "user_id", user_id, DEP).await
    }
}

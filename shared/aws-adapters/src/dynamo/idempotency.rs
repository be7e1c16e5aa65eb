//! `IDEMPOTENCY_TABLE`: idempotency keys (`pk` = `idem#<caller>#<key>`) and rate-limit
//! windows (`pk` = `rate#<bucket>`). Every write is conditional and carries a token of the
//! request that made it (`owner`, a use id), so a write that applied although its answer
//! was lost is recognised when it is retried. `expires_at` (epoch seconds) is the table's
//! TTL attribute.

use crate::attrs::{get_n, n, opt_s, s, Item};
use crate::deadline::WithinDeadline;
use crate::errors::{malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use domain::ports::{
    Claim, ClaimRequest, DependencyError, Idempotency, IdempotencyRecord, RateDecision, RateLimiter,
    StoreResult,
};
use std::time::Duration;

const DEP: &str = "idempotency";
const RATE_DEP: &str = "rate_limits";
const IN_FLIGHT: &str = "in_flight";
const DONE: &str = "done";

fn is_ccf<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    crate::errors::service_code(e) == Some("ConditionalCheckFailedException")
}

#[derive(Clone, Debug)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoIdempotency {
            client,
            table: table.into(),
        }
    }

    fn pk(scope: &str, key: &str) -> String {
        format!("idem#{scope}#{key}")
    }

    async fn read(&self, pk: &str) -> StoreResult<Option<Item>> {
        super::get_row(&self.client, &self.table, "pk", pk, DEP).await
    }
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn record_from(item: &Item) -> StoreResult<IdempotencyRecord> {
    let fingerprint = opt_s(item, "fingerprint").unwrap_or_default();
    match opt_s(item, "state").as_deref() {
        Some(DONE) => Ok(IdempotencyRecord::Done {
            fingerprint,
            status: get_n(item, "status").unwrap_or(200),
            response: opt_s(item, "response").unwrap_or_default(),
        }),
        Some(IN_FLIGHT) => Ok(IdempotencyRecord::InFlight {
            fingerprint,
            message_id: opt_s(item, "message_id").unwrap_or_default(),
            lease_until: from_millis(get_n(item, "lease_until").unwrap_or(0)),
        }),
        _ => Err(malformed(DEP, "an idempotency row has no known state")),
    }
}

fn live(item: &Item, now: DateTime<Utc>) -> bool {
    get_n::<i64>(item, "expires_at").is_some_and(|e| e > now.timestamp())
}

/// The stored owner token, when the row has one.
fn owner_of(item: &Item) -> Option<&str> {
    crate::attrs::get_s(item, "owner")
}

#[async_trait]
impl Idempotency for DynamoIdempotency {
    async fn claim(&self, claim: &ClaimRequest<'_>) -> StoreResult<Claim> {
        let pk = Self::pk(claim.scope, claim.key);
        let now = claim.now;
        for _ in 0..3 {
            // 1. A new (or expired) key: take it with this request's message id.
            let fresh = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression(
                    "SET #state = :in_flight, fingerprint = :fp, message_id = :mid, lease_until = :lease, \
                     expires_at = :exp, #owner = :owner REMOVE #status, #response",
                )
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now_s")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#response", "response")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":in_flight", s(IN_FLIGHT))
                .expression_attribute_values(":fp", s(claim.fingerprint))
                .expression_attribute_values(":mid", s(claim.message_id))
                .expression_attribute_values(":lease", n(claim.lease_until.timestamp_millis()))
                .expression_attribute_values(":exp", n(claim.expires_at.timestamp()))
                .expression_attribute_values(":owner", s(claim.owner))
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .send()
                .within_deadline()
                .await;
            match fresh {
                Ok(_) => {
                    return Ok(Claim::Claimed {
                        message_id: claim.message_id.to_owned(),
                    })
                }
                Err(e) if is_ccf(&e) => {}
                Err(e) => return Err(sdk(DEP, format!("UpdateItem (claim) on {}", self.table), e)),
            }
            // 2. The same request, abandoned by a runner whose lease ran out: take it over and
            //    keep its message id, so that no second message row appears (and the row's
            //    attempt marker decides whether SES may still be called).
            let takeover = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression("SET lease_until = :lease, #owner = :owner")
                .condition_expression(
                    "#state = :in_flight AND lease_until <= :now_ms AND fingerprint = :fp AND expires_at > :now_s",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":in_flight", s(IN_FLIGHT))
                .expression_attribute_values(":fp", s(claim.fingerprint))
                .expression_attribute_values(":lease", n(claim.lease_until.timestamp_millis()))
                .expression_attribute_values(":owner", s(claim.owner))
                .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .within_deadline()
                .await;
            let current = match takeover {
                Ok(out) => {
                    let id = out
                        .attributes()
                        .and_then(|a| opt_s(a, "message_id"))
                        .unwrap_or_else(|| claim.message_id.to_owned());
                    return Ok(Claim::Claimed { message_id: id });
                }
                Err(e) if is_ccf(&e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) if c.item().is_some() => {
                        c.item().cloned()
                    }
                    _ => self.read(&pk).await?,
                },
                Err(e) => return Err(sdk(DEP, format!("UpdateItem (take over) on {}", self.table), e)),
            };
            // 3. Someone holds it. When that is this very request (a write of ours that applied
            //    although its answer was lost), the claim is ours; else report what they hold.
            match current {
                Some(item) if live(&item, now) => {
                    if owner_of(&item) == Some(claim.owner) {
                        if let IdempotencyRecord::InFlight { message_id, .. } = record_from(&item)? {
                            return Ok(Claim::Claimed { message_id });
                        }
                    }
                    return Ok(Claim::Taken(record_from(&item)?));
                }
                // Released or expired between the writes: try again.
                _ => continue,
            }
        }
        Err(crate::errors::malformed(
            DEP,
            "the idempotency key kept changing under three claims",
        ))
    }

    async fn complete(
        &self, scope: &str, key: &str, owner: &str, status: u16, response: &str,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(scope, key)))
            .update_expression(
                "SET #state = :done, #status = :status, #response = :response REMOVE lease_until",
            )
            .condition_expression("#state = :in_flight AND #owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#response", "response")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":in_flight", s(IN_FLIGHT))
            .expression_attribute_values(":status", n(status))
            .expression_attribute_values(":response", s(response))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Completed already (a retry), or taken over: nothing to do.
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(sdk(DEP, format!("UpdateItem (complete) on {}", self.table), e)),
        }
    }

    async fn release(&self, scope: &str, key: &str, owner: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(scope, key)))
            .condition_expression("#state = :in_flight AND #owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":in_flight", s(IN_FLIGHT))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .within_deadline()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(sdk(DEP, format!("DeleteItem (release) on {}", self.table), e)),
        }
    }

    async fn get(
        &self, scope: &str, key: &str, now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        match self.read(&Self::pk(scope, key)).await? {
            Some(item) if live(&item, now) => Ok(Some(record_from(&item)?)),
            _ => Ok(None),
        }
    }
}

/// Sliding-window limits in the idempotency table: one row per bucket (`rate#<bucket>`)
/// holding the uses inside the window (`<epoch ms>|<use id>`), written with optimistic
/// concurrency on `version`. A use is counted once even when the write that added it is
/// retried after it had applied: the retry finds its own use id there.
#[derive(Clone, Debug)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

impl DynamoRateLimiter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRateLimiter {
            client,
            table: table.into(),
        }
    }
}

/// Attempts of one `take` under contention.
const RATE_ATTEMPTS: usize = 6;

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn take(
        &self, bucket: &str, limit: u32, window: Duration, now: DateTime<Utc>, use_id: &str,
    ) -> StoreResult<RateDecision> {
        let pk = format!("rate#{bucket}");
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let now_ms = now.timestamp_millis();
        for attempt in 0..RATE_ATTEMPTS {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .consistent_read(true)
                .send()
                .within_deadline()
                .await
                .map_err(|e| sdk(RATE_DEP, format!("GetItem (rate limit) on {}", self.table), e))?;
            let item = out.item();
            let version: u64 = item.and_then(|i| get_n(i, "version")).unwrap_or(0);
            let mut uses: Vec<(i64, String)> = item
                .and_then(|i| i.get("uses"))
                .and_then(|v| v.as_l().ok())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_s().ok())
                .filter_map(|v| v.split_once('|'))
                .filter_map(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
                .filter(|(ms, _)| *ms > now_ms.saturating_sub(window_ms))
                .collect();
            if uses.iter().any(|(_, id)| id == use_id) {
                return Ok(RateDecision::Allowed);
            }
            if uses.len() >= limit as usize {
                let oldest = uses.iter().map(|(ms, _)| *ms).min().unwrap_or(now_ms);
                let retry = u64::try_from((oldest + window_ms - now_ms).max(1)).unwrap_or(1);
                return Ok(RateDecision::Limited {
                    retry_after: Duration::from_millis(retry),
                });
            }
            uses.push((now_ms, use_id.to_owned()));
            let list = uses
                .iter()
                .map(|(ms, id)| s(format!("{ms}|{id}")))
                .collect::<Vec<AttributeValue>>();
            let expires = now.timestamp() + i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2) + 60;
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("uses", AttributeValue::L(list))
                .item("version", n(version + 1))
                .item("expires_at", n(expires))
                .condition_expression("attribute_not_exists(pk) OR #version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(version))
                .send()
                .within_deadline()
                .await;
            match written {
                Ok(_) => return Ok(RateDecision::Allowed),
                // Another use got in first (or this very write applied and its answer was
                // lost): read again.
                Err(e) if is_ccf(&e) => {
                    tokio::time::sleep(Duration::from_millis(5 + fastrand::u64(0..20) * attempt as u64))
                        .await;
                }
                Err(e) => {
                    return Err(sdk(
                        RATE_DEP,
                        format!("PutItem (rate limit) on {}", self.table),
                        e,
                    ))
                }
            }
        }
        Err(DependencyError::new(
            RATE_DEP,
            true,
            anyhow::anyhow!("the rate-limit row kept changing under {RATE_ATTEMPTS} attempts"),
        ))
    }
}

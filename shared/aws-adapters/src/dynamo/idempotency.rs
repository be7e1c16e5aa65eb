//! `IDEMPOTENCY_TABLE`: idempotency keys (`pk` = `idem#<caller>#<key>`) and rate-limit
//! windows (`pk` = `rate#<bucket>#<window>`). Claims and counts are conditional writes only,
//! never read-then-write. `expires_at` (epoch seconds) is the table's TTL attribute.

use crate::attrs::{get_n, n, opt_s, s, Item};
use crate::errors::{malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use domain::ports::{Claim, Idempotency, IdempotencyRecord, RateDecision, RateLimiter, StoreResult};
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(DEP, format!("GetItem on {}", self.table), e))?;
        Ok(out.item().cloned())
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

#[async_trait]
impl Idempotency for DynamoIdempotency {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        message_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Claim> {
        let pk = Self::pk(scope, key);
        for _ in 0..3 {
            // 1. A new (or expired) key: take it with this request's message id.
            let fresh = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression(
                    "SET #state = :in_flight, fingerprint = :fp, message_id = :mid, lease_until = :lease, \
                     expires_at = :exp REMOVE #status, #response",
                )
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now_s")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#response", "response")
                .expression_attribute_values(":in_flight", s(IN_FLIGHT))
                .expression_attribute_values(":fp", s(fingerprint))
                .expression_attribute_values(":mid", s(message_id))
                .expression_attribute_values(":lease", n(lease_until.timestamp_millis()))
                .expression_attribute_values(":exp", n(expires_at.timestamp()))
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .send()
                .await;
            match fresh {
                Ok(_) => {
                    return Ok(Claim::Claimed {
                        message_id: message_id.to_owned(),
                    })
                }
                Err(e) if is_ccf(&e) => {}
                Err(e) => return Err(sdk(DEP, format!("UpdateItem (claim) on {}", self.table), e)),
            }
            // 2. The same request, abandoned by a runner whose lease ran out: take it over and
            //    keep its message id, so that no second message row appears.
            let takeover = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression("SET lease_until = :lease")
                .condition_expression(
                    "#state = :in_flight AND lease_until <= :now_ms AND fingerprint = :fp AND expires_at > :now_s",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":in_flight", s(IN_FLIGHT))
                .expression_attribute_values(":fp", s(fingerprint))
                .expression_attribute_values(":lease", n(lease_until.timestamp_millis()))
                .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let current = match takeover {
                Ok(out) => {
                    let id = out
                        .attributes()
                        .and_then(|a| opt_s(a, "message_id"))
                        .unwrap_or_else(|| message_id.to_owned());
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
            // 3. Someone else holds it: report what they hold.
            match current {
                Some(item) if live(&item, now) => return Ok(Claim::Taken(record_from(&item)?)),
                // Released or expired between the writes: try again.
                _ => continue,
            }
        }
        Err(crate::errors::malformed(
            DEP,
            "the idempotency key kept changing under three claims",
        ))
    }

    async fn complete(&self, scope: &str, key: &str, status: u16, response: &str) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(scope, key)))
            .update_expression(
                "SET #state = :done, #status = :status, #response = :response REMOVE lease_until",
            )
            .condition_expression("#state = :in_flight")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":in_flight", s(IN_FLIGHT))
            .expression_attribute_values(":status", n(status))
            .expression_attribute_values(":response", s(response))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Completed already (a retry) or released: nothing to do.
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(sdk(DEP, format!("UpdateItem (complete) on {}", self.table), e)),
        }
    }

    async fn release(&self, scope: &str, key: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(scope, key)))
            .condition_expression("#state = :in_flight")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_flight", s(IN_FLIGHT))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(sdk(DEP, format!("DeleteItem (release) on {}", self.table), e)),
        }
    }

    async fn get(
        &self,
        scope: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        match self.read(&Self::pk(scope, key)).await? {
            Some(item) if live(&item, now) => Ok(Some(record_from(&item)?)),
            _ => Ok(None),
        }
    }
}

/// Fixed-window counters in the idempotency table.
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

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn take(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let w = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
        let slot = now.timestamp().div_euclid(w);
        let window_end = (slot + 1).saturating_mul(w);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("rate#{bucket}#{slot}")))
            .update_expression("ADD #count :one SET expires_at = if_not_exists(expires_at, :exp)")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            // Kept one window past its end, then TTL removes it.
            .expression_attribute_values(":exp", n(window_end.saturating_add(w)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if is_ccf(&e) => {
                let retry = u64::try_from((window_end - now.timestamp()).max(1)).unwrap_or(1);
                Ok(RateDecision::Limited {
                    retry_after: Duration::from_secs(retry),
                })
            }
            Err(e) => Err(sdk(
                RATE_DEP,
                format!("UpdateItem (rate limit) on {}", self.table),
                e,
            )),
        }
    }
}

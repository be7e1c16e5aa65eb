//! The user-data tables of the cascade plan: read a user's keys page by page, delete them in
//! `BatchWriteItem`s of at most 25, count them.

use crate::attrs::{from_item_key, s, to_item_key};
use crate::deadline::WithinDeadline;
use crate::errors::{malformed, sdk};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, Select, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::cascade::{CascadeTable, Lookup};
use domain::model::ItemKey;
use domain::ports::{Count, DependencyError, KeysPage, StoreResult, UserData};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// DynamoDB's limit for one `BatchWriteItem` (moto accepts more; AWS refuses them).
pub const MAX_BATCH_WRITE: usize = 25;
/// DynamoDB's limit for one `BatchGetItem`.
pub const MAX_BATCH_GET: usize = 100;
/// Batches of one `delete` call in flight at once: where a table starts, and the bounds the
/// adaptive limit moves in (halved when DynamoDB pushes back, one more after a call without).
const BATCHES_IN_FLIGHT: usize = 4;
const MIN_IN_FLIGHT: usize = 1;
const MAX_IN_FLIGHT: usize = 16;
/// Tries of one batch while DynamoDB hands back `UnprocessedItems`.
const MAX_ATTEMPTS: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(25);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct DynamoUserData {
    client: Client,
    /// Cascade plan name (`transactions`, ...) → physical table name.
    tables: BTreeMap<String, String>,
    /// Per physical table, the batches one `delete` keeps in flight (additive increase,
    /// multiplicative decrease on throttling), shared by every caller of this adapter.
    in_flight: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl DynamoUserData {
    /// `tables`: for each table of the cascade plan, its plan name and physical table name.
    pub fn new(client: Client, tables: impl IntoIterator<Item = (String, String)>) -> Self {
        DynamoUserData {
            client,
            tables: tables.into_iter().collect(),
            in_flight: std::sync::Arc::default(),
        }
    }

    fn physical(&self, table: &CascadeTable) -> StoreResult<&str> {
        self.tables.get(table.name).map(String::as_str).ok_or_else(|| {
            malformed(
                table.name,
                format!("no physical table is configured for {}", table.name),
            )
        })
    }

    /// The batches a `delete` on `physical` may keep in flight now.
    fn limit(&self, physical: &str) -> usize {
        let map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.get(physical).copied().unwrap_or(BATCHES_IN_FLIGHT)
    }

    /// Adapt the limit after a call: halve it when DynamoDB pushed back, else one more.
    fn adapt(&self, physical: &str, pushed_back: bool) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let limit = map.entry(physical.to_owned()).or_insert(BATCHES_IN_FLIGHT);
        *limit = if pushed_back {
            (*limit / 2).max(MIN_IN_FLIGHT)
        } else {
            (*limit + 1).min(MAX_IN_FLIGHT)
        };
    }

    /// Write one batch (≤ 25) until DynamoDB has processed every request. Sets `pushed_back`
    /// when DynamoDB handed items back or refused the whole call (its capacity was exceeded).
    ///
    /// A call refused as throttled (`ProvisionedThroughputExceededException` after the SDK's
    /// own tries) is an attempt that processed nothing: the batch waits and is sent again
    /// here. Failing it instead would fail the whole page, and the page's retry would send
    /// again every key of the batches that had already gone through.
    async fn write_batch(
        &self, dep: &'static str, physical: &str, mut requests: Vec<WriteRequest>,
        pushed_back: &std::sync::atomic::AtomicBool,
    ) -> StoreResult<()> {
        // Attempts in a row in which DynamoDB processed nothing; an attempt that processed some
        // of the batch starts the count again. Bounded: each such attempt takes at least one of
        // the batch's 25 requests, so a batch makes at most 25 + MAX_ATTEMPTS attempts.
        let mut attempt = 0;
        while attempt < MAX_ATTEMPTS {
            attempt += 1;
            debug_assert!(requests.len() <= MAX_BATCH_WRITE);
            let sent = requests.len();
            let out = match self
                .client
                .batch_write_item()
                .request_items(physical, requests.clone())
                .send()
                .within_deadline()
                .await
                .map_err(|e| sdk(dep, format!("BatchWriteItem on {physical}"), e))
            {
                Ok(out) => out,
                Err(err) if err.throttled && attempt < MAX_ATTEMPTS => {
                    pushed_back.store(true, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(full_jitter(attempt)).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            requests = out
                .unprocessed_items()
                .and_then(|m| m.get(physical))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            pushed_back.store(true, std::sync::atomic::Ordering::Relaxed);
            if requests.len() < sent {
                // The partition is taking writes, just not all of them: come back as soon as
                // it has capacity again (a partition keeps at most a moment of unused
                // capacity, so a long wait here would waste it).
                attempt = 0;
                tokio::time::sleep(full_jitter(1)).await;
            } else if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(full_jitter(attempt)).await;
            }
        }
        Err(DependencyError::throttled(
            dep,
            anyhow::anyhow!(
                "{} delete requests on {physical} still unprocessed after {MAX_ATTEMPTS} attempts",
                requests.len()
            ),
        ))
    }
}

/// Capped exponential backoff with full jitter: uniform in `[0, min(cap, base · 2^attempt)]`.
pub(crate) fn full_jitter(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=ms))
}

/// Deduplicated keys (a batch may not name one item twice), in batches of at most 25.
pub(crate) fn batches(keys: &[ItemKey]) -> Vec<Vec<ItemKey>> {
    let unique: BTreeSet<&ItemKey> = keys.iter().collect();
    let unique: Vec<ItemKey> = unique.into_iter().cloned().collect();
    unique.chunks(MAX_BATCH_WRITE).map(<[ItemKey]>::to_vec).collect()
}

fn delete_request(key: &ItemKey) -> StoreResult<WriteRequest> {
    let delete = DeleteRequest::builder()
        .set_key(Some(from_item_key(key)))
        .build()
        .map_err(|e| crate::errors::build("user_data", "building a DeleteRequest", e))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

fn lookup_parts(table: &CascadeTable) -> (Option<&'static str>, &'static str) {
    match table.lookup {
        Lookup::PartitionKey { attr } => (None, attr),
        Lookup::Index { index, attr } => (Some(index), attr),
    }
}

#[async_trait]
impl UserData for DynamoUserData {
    async fn page(
        &self, table: &CascadeTable, user_id: &str, cursor: Option<&ItemKey>, limit: usize,
    ) -> StoreResult<KeysPage> {
        let physical = self.physical(table)?;
        let (index, attr) = lookup_parts(table);
        let mut names = HashMap::from([("#u".to_owned(), attr.to_owned())]);
        let mut projection = Vec::new();
        for (i, k) in table.key.iter().enumerate() {
            names.insert(format!("#k{i}"), (*k).to_owned());
            projection.push(format!("#k{i}"));
        }
        let out = self
            .client
            .query()
            .table_name(physical)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#u = :u")
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":u", s(user_id))
            .projection_expression(projection.join(", "))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor.map(from_item_key))
            // A table's own key can be read consistently; an index cannot.
            .set_consistent_read(index.is_none().then_some(true))
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(table.name, format!("Query on {physical}"), e))?;
        let keys = out
            .items()
            .iter()
            .map(|item| {
                let key = to_item_key(item, table.name)?;
                Ok(key
                    .into_iter()
                    .filter(|(k, _)| table.key.contains(&k.as_str()))
                    .collect())
            })
            .collect::<StoreResult<Vec<ItemKey>>>()?;
        let next = out
            .last_evaluated_key()
            .map(|k| to_item_key(k, table.name))
            .transpose()?;
        Ok(KeysPage { keys, next })
    }

    async fn delete(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<()> {
        let physical = self.physical(table)?;
        let requests = batches(keys)
            .iter()
            .map(|batch| batch.iter().map(delete_request).collect::<StoreResult<Vec<_>>>())
            .collect::<StoreResult<Vec<_>>>()?;
        let pushed_back = std::sync::atomic::AtomicBool::new(false);
        let result = futures::stream::iter(
            requests
                .into_iter()
                .map(|batch| self.write_batch(table.name, physical, batch, &pushed_back)),
        )
        .buffer_unordered(self.limit(physical))
        .try_collect::<Vec<()>>()
        .await;
        let throttled = matches!(&result, Err(e) if e.throttled);
        self.adapt(
            physical,
            throttled || pushed_back.load(std::sync::atomic::Ordering::Relaxed),
        );
        result.map(drop)
    }

    async fn existing(&self, table: &CascadeTable, keys: &[ItemKey]) -> StoreResult<Vec<ItemKey>> {
        let physical = self.physical(table)?;
        let unique: BTreeSet<&ItemKey> = keys.iter().collect();
        let unique: Vec<&ItemKey> = unique.into_iter().collect();
        let mut names = HashMap::new();
        let mut projection = Vec::new();
        for (i, k) in table.key.iter().enumerate() {
            names.insert(format!("#k{i}"), (*k).to_owned());
            projection.push(format!("#k{i}"));
        }
        let mut found = Vec::new();
        for chunk in unique.chunks(MAX_BATCH_GET) {
            let mut wanted: Vec<_> = chunk.iter().map(|k| from_item_key(k)).collect();
            for attempt in 1..=MAX_ATTEMPTS {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .consistent_read(true)
                    .projection_expression(projection.join(", "))
                    .set_expression_attribute_names(Some(names.clone()))
                    .build()
                    .map_err(|e| crate::errors::build(table.name, "building a BatchGetItem", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(physical, request)
                    .send()
                    .within_deadline()
                    .await
                    .map_err(|e| sdk(table.name, format!("BatchGetItem on {physical}"), e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(physical))
                    .into_iter()
                    .flatten()
                {
                    found.push(to_item_key(item, table.name)?);
                }
                wanted = out
                    .unprocessed_keys()
                    .and_then(|m| m.get(physical))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if wanted.is_empty() {
                    break;
                }
                if attempt == MAX_ATTEMPTS {
                    return Err(DependencyError::throttled(
                        table.name,
                        anyhow::anyhow!(
                            "{} keys of {physical} still unprocessed after {MAX_ATTEMPTS} attempts",
                            wanted.len()
                        ),
                    ));
                }
                tokio::time::sleep(full_jitter(attempt)).await;
            }
        }
        Ok(found)
    }

    async fn count(&self, table: &CascadeTable, user_id: &str, cap: u64) -> StoreResult<Count> {
        let physical = self.physical(table)?;
        let (index, attr) = lookup_parts(table);
        let mut count = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(physical)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#u = :u")
                .expression_attribute_names("#u", attr)
                .expression_attribute_values(":u", s(user_id))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .within_deadline()
                .await
                .map_err(|e| sdk(table.name, format!("Query (count) on {physical}"), e))?;
            count += u64::try_from(out.count()).unwrap_or(0);
            if count > cap {
                return Ok(Count {
                    count: cap,
                    capped: true,
                });
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(Count { count, capped: false }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! `BatchWriteItem` on the wire, against a fake HTTP client (moto accepts batches of 26,
    //! so only a check of the requests themselves proves the cap).

    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use domain::cascade::CASCADE_PLAN;
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    type Responder = dyn Fn(&Value, usize) -> (u16, Value) + Send + Sync;

    /// Records every request body and answers with `respond(body, call_number)`: a status
    /// and a JSON body.
    #[derive(Clone)]
    struct Fake {
        bodies: Arc<Mutex<Vec<Value>>>,
        respond: Arc<Responder>,
    }

    impl std::fmt::Debug for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Fake")
        }
    }

    impl HttpConnector for Fake {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body: Value = request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            let n = {
                let mut bodies = self.bodies.lock().unwrap();
                bodies.push(body.clone());
                bodies.len()
            };
            let (status, answer) = (self.respond)(&body, n);
            let answer = answer.to_string();
            let status = StatusCode::try_from(status).unwrap();
            HttpConnectorFuture::ready(Ok(Response::new(status, SdkBody::from(answer))))
        }
    }

    fn client(fake: Fake) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://dynamodb.invalid")
            .http_client(http_client_fn(move |_, _| SharedHttpConnector::new(fake.clone())))
            .build();
        Client::from_conf(config)
    }

    fn transactions() -> &'static CascadeTable {
        CASCADE_PLAN.iter().find(|t| t.name == "transactions").unwrap()
    }

    fn keys(n: usize) -> Vec<ItemKey> {
        (0..n)
            .map(|i| {
                ItemKey::from([
                    ("user_id".into(), "u1".into()),
                    ("transaction_id".into(), format!("t{i:05}")),
                ])
            })
            .collect()
    }

    fn requests_in(body: &Value) -> Vec<Value> {
        body["RequestItems"]["phys-transactions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn adapter(fake: Fake) -> DynamoUserData {
        DynamoUserData::new(
            client(fake),
            [("transactions".to_owned(), "phys-transactions".to_owned())],
        )
    }

    #[tokio::test]
    async fn batch_write_item_requests_never_carry_more_than_25_deletes() {
        let fake = Fake {
            bodies: Arc::default(),
            respond: Arc::new(|_, _| (200, json!({ "UnprocessedItems": {} }))),
        };
        let user_data = adapter(fake.clone());
        let mut all = keys(1_003);
        all.extend(keys(40)); // duplicates are sent once
        user_data.delete(transactions(), &all).await.unwrap();

        let bodies = fake.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 41, "1,003 keys make 40 batches of 25 and one of 3");
        let mut seen = BTreeSet::new();
        for body in bodies.iter() {
            let reqs = requests_in(body);
            assert!(
                !reqs.is_empty() && reqs.len() <= MAX_BATCH_WRITE,
                "a batch of {}",
                reqs.len()
            );
            for r in reqs {
                let id = r["DeleteRequest"]["Key"]["transaction_id"]["S"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(r["DeleteRequest"]["Key"]["user_id"]["S"], "u1");
                assert!(seen.insert(id), "every key is sent once");
            }
        }
        assert_eq!(seen.len(), 1_003);
    }

    #[tokio::test]
    async fn unprocessed_items_are_sent_again_until_none_are_left() {
        // The first two answers hand back the last 10 requests of the batch unprocessed.
        let respond = |body: &Value, call: usize| {
            let reqs = requests_in(body);
            if call <= 2 {
                let left: Vec<Value> = reqs[reqs.len().saturating_sub(10)..].to_vec();
                (200, json!({ "UnprocessedItems": { "phys-transactions": left } }))
            } else {
                (200, json!({ "UnprocessedItems": {} }))
            }
        };
        let fake = Fake {
            bodies: Arc::default(),
            respond: Arc::new(respond),
        };
        adapter(fake.clone())
            .delete(transactions(), &keys(25))
            .await
            .unwrap();
        let sizes: Vec<usize> = fake
            .bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| requests_in(b).len())
            .collect();
        assert_eq!(sizes, vec![25, 10, 10]);
    }

    #[tokio::test]
    async fn items_that_stay_unprocessed_end_in_a_retryable_error() {
        let respond = |body: &Value, _| {
            (
                200,
                json!({ "UnprocessedItems": { "phys-transactions": requests_in(body) } }),
            )
        };
        let fake = Fake {
            bodies: Arc::default(),
            respond: Arc::new(respond),
        };
        tokio::time::pause();
        let err = adapter(fake.clone())
            .delete(transactions(), &keys(3))
            .await
            .unwrap_err();
        assert!(err.retryable);
        assert_eq!(fake.bodies.lock().unwrap().len(), MAX_ATTEMPTS as usize);
    }

    fn transaction_ids(body: &Value) -> Vec<String> {
        requests_in(body)
            .iter()
            .map(|r| {
                r["DeleteRequest"]["Key"]["transaction_id"]["S"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_refused_whole_as_throttled_is_sent_again_alone_and_the_delete_succeeds() {
        // The second batch of three (t00025..t00049) is refused with HTTP 400
        // ProvisionedThroughputExceededException on its first 4 calls (more than the SDK's own
        // 3 tries); every other call goes through.
        let refused = Arc::new(Mutex::new(0usize));
        let respond = {
            let refused = refused.clone();
            move |body: &Value, _| {
                let second = transaction_ids(body).first().is_some_and(|id| id == "t00025");
                let mut n = refused.lock().unwrap();
                if second && *n < 4 {
                    *n += 1;
                    (
                        400,
                        json!({
                            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                            "message": "The level of configured provisioned throughput for the table was exceeded."
                        }),
                    )
                } else {
                    (200, json!({ "UnprocessedItems": {} }))
                }
            }
        };
        let fake = Fake {
            bodies: Arc::default(),
            respond: Arc::new(respond),
        };
        tokio::time::pause();
        let user_data = adapter(fake.clone());
        user_data.delete(transactions(), &keys(75)).await.unwrap();

        let bodies = fake.bodies.lock().unwrap();
        assert_eq!(*refused.lock().unwrap(), 4);
        assert_eq!(
            bodies.len(),
            3 + 4,
            "three batches, and the refused one again four times"
        );
        let mut sent: BTreeMap<String, usize> = BTreeMap::new();
        for id in bodies.iter().flat_map(transaction_ids) {
            *sent.entry(id).or_default() += 1;
        }
        assert_eq!(sent.len(), 75);
        for (id, times) in &sent {
            let expected = if ("t00025".."t00050").contains(&id.as_str()) {
                5
            } else {
                1
            };
            assert_eq!(*times, expected, "{id}: only the refused batch is sent again");
        }
        drop(bodies);
        assert_eq!(
            user_data.limit("phys-transactions"),
            BATCHES_IN_FLIGHT / 2,
            "the refusal counts as DynamoDB pushing back"
        );
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 0..40 {
            assert!(full_jitter(attempt) <= BACKOFF_CAP);
        }
    }
}

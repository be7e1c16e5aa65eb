//! A DynamoDB capacity model on loopback: an HTTP proxy in front of the emulator that adds
//! what the emulator lacks and the cascade's speed depends on.
//!
//! - **Latency**: every request is answered no sooner than `latency` after it arrived, plus the
//!   emulator's own time (a network round trip, default 4 ms).
//! - **Write capacity per partition**: DynamoDB writes at most 1,000 WCU per second to one
//!   partition, and all of one user's rows in `transactions`, `followed_companies` and
//!   `billing_records` share one partition key value, hence one partition. Every write takes
//!   1 WCU (every item here is under 1 KB) from a token bucket per table + partition key value,
//!   refilled at `wcu_per_s` and holding at most [`Model::depth`]; a table's GSI is a second
//!   bucket per GSI partition key value (`sessions` and `help_requests` are keyed by their own
//!   ids, but their `by_user` index puts one user's rows in one index partition, and DynamoDB
//!   throttles the table's write when the index cannot take it).
//! - **Throttling as DynamoDB answers it** (BatchWriteItem API reference): the requests of a
//!   `BatchWriteItem` that do not fit come back in `UnprocessedItems`; when none fits, the
//!   whole call fails with HTTP 400 `ProvisionedThroughputExceededException`, as does a
//!   `PutItem`, `DeleteItem`, `UpdateItem` or `TransactWriteItems` that does not fit.
//!
//! Reads are not limited (3,000 RCU per partition, and a page of 250 small keys is a few RCU).
//! The old item of a `DeleteRequest`/`DeleteItem` on a table with a GSI is looked up in the
//! emulator (to find its index partition) while the latency runs. Forwarded bodies keep the
//! original signature headers: moto does not check signatures.

use aws_sdk_dynamodb::types::{AttributeValue, KeySchemaElement, KeyType, KeysAndAttributes};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the model imposes.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// Added to every request's answer.
    pub latency: Duration,
    /// Write capacity of one partition (DynamoDB: 1,000).
    pub wcu_per_s: f64,
}

impl Model {
    /// Tokens a bucket holds at most: a tenth of a second of capacity, and never less than one
    /// full `BatchWriteItem` (25). A deeper bucket would let an erase beat
    /// items / capacity by its depth.
    pub fn depth(&self) -> f64 {
        (self.wcu_per_s / 10.0).max(25.0)
    }
}

/// One partition: a table's (or a table's GSI's) partition key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub table: String,
    pub index: Option<String>,
    /// The partition key's wire value (`{"S":"u1"}`).
    pub key: String,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The token buckets, one per partition, created full.
#[derive(Debug)]
pub struct Capacity {
    rate: f64,
    depth: f64,
    buckets: HashMap<Partition, Bucket>,
}

impl Capacity {
    pub fn new(model: &Model) -> Capacity {
        Capacity {
            rate: model.wcu_per_s,
            depth: model.depth(),
            buckets: HashMap::new(),
        }
    }

    fn level(&mut self, p: &Partition, now: Instant) -> &mut Bucket {
        let (rate, depth) = (self.rate, self.depth);
        let b = self.buckets.entry(p.clone()).or_insert(Bucket {
            tokens: depth,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(depth);
        b.at = b.at.max(now);
        b
    }

    /// Takes one unit from each of `partitions` (a write and its index writes), all or none.
    pub fn try_take(&mut self, partitions: &[Partition], now: Instant) -> bool {
        let fits = partitions.iter().all(|p| self.level(p, now).tokens >= 1.0);
        if fits {
            for p in partitions {
                self.level(p, now).tokens -= 1.0;
            }
        }
        fits
    }
}

/// A table's partition key and its GSIs' partition keys.
#[derive(Debug, Clone, Default)]
pub struct TableMeta {
    pub hash_key: String,
    /// (index name, its partition key attribute)
    pub indexes: Vec<(String, String)>,
}

fn hash_of(schema: &[KeySchemaElement]) -> Option<String> {
    schema
        .iter()
        .find(|k| k.key_type() == &KeyType::Hash)
        .map(|k| k.attribute_name().to_owned())
}

/// The partitions one write touches: the table's, and each index the item is in (`item`:
/// the new item of a put, the old item of a delete).
pub fn partitions_of(
    table: &str, meta: &TableMeta, key_or_item: &Map<String, Value>, item: Option<&Map<String, Value>>,
) -> Vec<Partition> {
    let mut out = vec![Partition {
        table: table.to_owned(),
        index: None,
        key: key_or_item
            .get(&meta.hash_key)
            .map(Value::to_string)
            .unwrap_or_default(),
    }];
    if let Some(item) = item {
        for (index, attr) in &meta.indexes {
            if let Some(v) = item.get(attr) {
                out.push(Partition {
                    table: table.to_owned(),
                    index: Some(index.clone()),
                    key: v.to_string(),
                });
            }
        }
    }
    out
}

/// Per table: writes that went through, writes that were turned away, and when the first and
/// last accepted write arrived.
#[derive(Debug, Clone, Default)]
pub struct TableStats {
    pub accepted: u64,
    pub throttled: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub tables: BTreeMap<String, TableStats>,
    /// Whole calls answered with `ProvisionedThroughputExceededException`.
    pub exceptions: u64,
    pub requests: u64,
}

impl Stats {
    pub fn accepted(&self) -> u64 {
        self.tables.values().map(|t| t.accepted).sum()
    }

    pub fn throttled(&self) -> u64 {
        self.tables.values().map(|t| t.throttled).sum()
    }

    /// The counts of two proxies (in front of different stores, so of different tables) as one.
    pub fn merged(mut self, other: Stats) -> Stats {
        self.tables.extend(other.tables);
        self.exceptions += other.exceptions;
        self.requests += other.requests;
        self
    }

    /// What happened between `before` (an earlier snapshot, taken right after
    /// [`Proxy::start_span`]) and `self`.
    pub fn since(&self, before: &Stats) -> Stats {
        let mut tables = BTreeMap::new();
        for (name, t) in &self.tables {
            let b = before.tables.get(name).cloned().unwrap_or_default();
            let accepted = t.accepted - b.accepted;
            let throttled = t.throttled - b.throttled;
            if accepted == 0 && throttled == 0 {
                continue;
            }
            tables.insert(
                name.clone(),
                TableStats {
                    accepted,
                    throttled,
                    first: t.first,
                    last: t.last,
                },
            );
        }
        Stats {
            tables,
            exceptions: self.exceptions - before.exceptions,
            requests: self.requests - before.requests,
        }
    }
}

/// What a lookup found of an item about to be deleted (`None`: no such item).
type OldItem = Option<Map<String, Value>>;

struct Shared {
    model: Model,
    upstream: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
    dynamo: aws_sdk_dynamodb::Client,
    capacity: Mutex<Capacity>,
    meta: Mutex<HashMap<String, TableMeta>>,
    /// Old items already looked up, by table and key, until their delete goes through: a
    /// delete handed back unprocessed comes again, and need not be looked up again.
    old: Mutex<HashMap<(String, String), OldItem>>,
    stats: Mutex<Stats>,
}

/// The running proxy.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (the emulator, `http://...`);
    /// `direct` is a DynamoDB client of the emulator itself (table descriptions, old items).
    pub async fn start(
        model: Model, upstream: &str, direct: aws_sdk_dynamodb::Client,
    ) -> anyhow::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            model,
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            dynamo: direct,
            capacity: Mutex::new(Capacity::new(&model)),
            meta: Mutex::new(HashMap::new()),
            old: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: the DynamoDB model proxy stopped: {e}");
            }
        });
        Ok(Proxy { addr, shared, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Forgets when each table's first and last accepted writes came (the counters stay):
    /// the spans of [`Stats::since`] then start here.
    pub fn start_span(&self) -> Stats {
        let mut stats = lock(&self.shared.stats);
        for t in stats.tables.values_mut() {
            t.first = None;
            t.last = None;
        }
        stats.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One item write of a request.
struct Write {
    table: String,
    /// The key (deletes, updates) or the item (puts).
    key: Map<String, Value>,
    /// The item as it will be (puts) or was (deletes) — what its index entries follow.
    item: Option<Map<String, Value>>,
    /// Deletes whose old item must be looked up for its index entries.
    needs_old_item: bool,
}

/// A write's table and key, as one canonical string (serde_json's maps are sorted).
fn cache_key(w: &Write) -> (String, String) {
    (w.table.clone(), Value::Object(w.key.clone()).to_string())
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The writes of a request, by operation (`X-Amz-Target` without its prefix).
fn writes_of(op: &str, body: &Value) -> Vec<Write> {
    let put = |table: &str, item: &Value| Write {
        table: table.to_owned(),
        key: object(item),
        item: Some(object(item)),
        needs_old_item: false,
    };
    let keyed = |table: &str, key: &Value, delete: bool| Write {
        table: table.to_owned(),
        key: object(key),
        item: None,
        needs_old_item: delete,
    };
    let table = body["TableName"].as_str().unwrap_or_default();
    match op {
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(table, requests)| {
                requests.as_array().into_iter().flatten().map(move |r| {
                    match (r.get("PutRequest"), r.get("DeleteRequest")) {
                        (Some(p), _) => put(table, &p["Item"]),
                        (None, Some(d)) => keyed(table, &d["Key"], true),
                        (None, None) => keyed(table, &Value::Null, false),
                    }
                })
            })
            .collect(),
        "PutItem" => vec![put(table, &body["Item"])],
        "DeleteItem" => vec![keyed(table, &body["Key"], true)],
        "UpdateItem" => vec![keyed(table, &body["Key"], false)],
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                if let Some(p) = t.get("Put") {
                    Some(put(p["TableName"].as_str().unwrap_or_default(), &p["Item"]))
                } else {
                    ["Delete", "Update"].iter().find_map(|k| {
                        t.get(*k).map(|d| {
                            // Index entries of transactional deletes are not modelled (no
                            // cascade table is written in a transaction).
                            keyed(d["TableName"].as_str().unwrap_or_default(), &d["Key"], false)
                        })
                    })
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Wire JSON of a key attribute (S, N or B) → the SDK's type.
fn attribute(v: &Value) -> Option<AttributeValue> {
    if let Some(s) = v["S"].as_str() {
        return Some(AttributeValue::S(s.to_owned()));
    }
    if let Some(n) = v["N"].as_str() {
        return Some(AttributeValue::N(n.to_owned()));
    }
    use base64::Engine as _;
    v["B"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| AttributeValue::B(b.into()))
}

fn wire(v: &AttributeValue) -> Value {
    use base64::Engine as _;
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64::engine::general_purpose::STANDARD.encode(b.as_ref()) }),
        _ => Value::Null,
    }
}

impl Shared {
    async fn meta(&self, table: &str) -> anyhow::Result<TableMeta> {
        if let Some(m) = lock(&self.meta).get(table) {
            return Ok(m.clone());
        }
        let out = self.dynamo.describe_table().table_name(table).send().await?;
        let desc = out
            .table()
            .ok_or_else(|| anyhow::anyhow!("no description of {table}"))?;
        let meta = TableMeta {
            hash_key: hash_of(desc.key_schema()).unwrap_or_default(),
            indexes: desc
                .global_secondary_indexes()
                .iter()
                .filter_map(|g| Some((g.index_name()?.to_owned(), hash_of(g.key_schema())?)))
                .collect(),
        };
        lock(&self.meta).insert(table.to_owned(), meta.clone());
        Ok(meta)
    }

    /// Fills in the old item (its index attributes) of every delete on a table with a GSI.
    async fn old_items(&self, writes: &mut [Write]) -> anyhow::Result<()> {
        let mut by_table: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        {
            let old = lock(&self.old);
            for (i, w) in writes.iter_mut().enumerate() {
                if !w.needs_old_item {
                    continue;
                }
                match old.get(&cache_key(w)) {
                    Some(item) => w.item = item.clone(),
                    None => by_table.entry(w.table.clone()).or_default().push(i),
                }
            }
        }
        for (table, positions) in by_table {
            let meta = self.meta(&table).await.unwrap_or_default();
            if meta.indexes.is_empty() {
                continue;
            }
            let key_attrs: Vec<String> = writes[positions[0]].key.keys().cloned().collect();
            let mut attrs = key_attrs.clone();
            attrs.extend(meta.indexes.iter().map(|(_, a)| a.clone()));
            attrs.sort();
            attrs.dedup();
            let names: HashMap<String, String> = attrs
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("#a{i}"), a.clone()))
                .collect();
            let projection = (0..attrs.len())
                .map(|i| format!("#a{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut found: Vec<Map<String, Value>> = Vec::new();
            for chunk in positions.chunks(100) {
                let keys = chunk
                    .iter()
                    .map(|&i| {
                        writes[i]
                            .key
                            .iter()
                            .map(|(k, v)| attribute(v).map(|a| (k.clone(), a)))
                            .collect::<Option<HashMap<_, _>>>()
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow::anyhow!("a key of {table} is not S, N or B"))?;
                let mut request = Some(
                    KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .projection_expression(&projection)
                        .set_expression_attribute_names(Some(names.clone()))
                        .consistent_read(true)
                        .build()?,
                );
                while let Some(r) = request.take() {
                    let out = self
                        .dynamo
                        .batch_get_item()
                        .request_items(&table, r)
                        .send()
                        .await?;
                    for item in out.responses().and_then(|m| m.get(&table)).into_iter().flatten() {
                        found.push(item.iter().map(|(k, v)| (k.clone(), wire(v))).collect());
                    }
                    request = out.unprocessed_keys().and_then(|m| m.get(&table)).cloned();
                }
            }
            let mut old = lock(&self.old);
            for &i in &positions {
                let key = &writes[i].key;
                writes[i].item = found
                    .iter()
                    .find(|item| key_attrs.iter().all(|a| item.get(a) == key.get(a)))
                    .cloned();
                old.insert(cache_key(&writes[i]), writes[i].item.clone());
            }
        }
        Ok(())
    }

    /// Which writes fit now; updates the buckets and the counters.
    async fn admit(&self, writes: &[Write]) -> Vec<bool> {
        let mut parts = Vec::with_capacity(writes.len());
        for w in writes {
            // A table the emulator does not know: no index, and the emulator answers the write.
            let meta = self.meta(&w.table).await.unwrap_or_default();
            parts.push(partitions_of(&w.table, &meta, &w.key, w.item.as_ref()));
        }
        let now = Instant::now();
        let admitted: Vec<bool> = {
            let mut capacity = lock(&self.capacity);
            parts.iter().map(|p| capacity.try_take(p, now)).collect()
        };
        {
            let mut old = lock(&self.old);
            for (w, ok) in writes.iter().zip(&admitted) {
                if *ok && w.needs_old_item {
                    old.remove(&cache_key(w));
                }
            }
        }
        let mut stats = lock(&self.stats);
        for (w, ok) in writes.iter().zip(&admitted) {
            let t = stats.tables.entry(w.table.clone()).or_default();
            if *ok {
                t.accepted += 1;
                t.first.get_or_insert(now);
                t.last = Some(now);
            } else {
                t.throttled += 1;
            }
        }
        admitted
    }
}

fn exceeded() -> Response<Body> {
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. \
                    Consider increasing your provisioning level with the UpdateTable API.",
    });
    json_response(StatusCode::BAD_REQUEST, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

fn failure(err: impl std::fmt::Display) -> Response<Body> {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": format!("model proxy: {err}") }),
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let arrived = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return failure(e),
    };
    lock(&shared.stats).requests += 1;
    let op = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
        .unwrap_or_default()
        .to_owned();
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut writes = writes_of(&op, &doc);

    // The latency runs while the old items are looked up.
    let lookups = async {
        if writes.iter().any(|w| w.needs_old_item) {
            shared.old_items(&mut writes).await
        } else {
            Ok(())
        }
    };
    let (looked_up, ()) = tokio::join!(lookups, tokio::time::sleep_until(arrived + shared.model.latency));
    if let Err(e) = looked_up {
        return failure(e);
    }
    if writes.is_empty() {
        return forward(&shared, &parts.method, &parts.uri, &parts.headers, body, None).await;
    }
    let admitted = shared.admit(&writes).await;
    if admitted.iter().all(|ok| !ok) {
        lock(&shared.stats).exceptions += 1;
        return exceeded();
    }
    if op != "BatchWriteItem" {
        // A single write, or a transaction that fit whole.
        if admitted.iter().all(|ok| *ok) {
            return forward(&shared, &parts.method, &parts.uri, &parts.headers, body, None).await;
        }
        lock(&shared.stats).exceptions += 1;
        return exceeded();
    }
    // BatchWriteItem: forward what fits, hand the rest back in UnprocessedItems.
    let mut kept: Map<String, Value> = Map::new();
    let mut unprocessed: Map<String, Value> = Map::new();
    let mut i = 0;
    for (table, requests) in doc["RequestItems"].as_object().into_iter().flatten() {
        for r in requests.as_array().into_iter().flatten() {
            let target = if admitted[i] { &mut kept } else { &mut unprocessed };
            if let Some(a) = target
                .entry(table.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                a.push(r.clone());
            }
            i += 1;
        }
    }
    let mut trimmed = doc.clone();
    trimmed["RequestItems"] = Value::Object(kept);
    let body = Bytes::from(trimmed.to_string());
    forward(
        &shared,
        &parts.method,
        &parts.uri,
        &parts.headers,
        body,
        (!unprocessed.is_empty()).then_some(unprocessed),
    )
    .await
}

/// Sends the request to the emulator; merges `unprocessed` into a `BatchWriteItem` answer.
async fn forward(
    shared: &Shared, method: &axum::http::Method, uri: &axum::http::Uri, headers: &HeaderMap, body: Bytes,
    unprocessed: Option<Map<String, Value>>,
) -> Response<Body> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Request::builder()
        .method(method.clone())
        .uri(format!("{}{path}", shared.upstream));
    for (name, value) in headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            out = out.header(name, value);
        }
    }
    let request = match out.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let answer = match shared.http.request(request).await {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let (parts, body) = answer.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return failure(e),
    };
    let (bytes, modified) = match unprocessed {
        Some(ours) if parts.status.is_success() => {
            let mut doc: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
            let merged = doc["UnprocessedItems"].as_object().cloned().unwrap_or_default();
            let mut merged = merged;
            for (table, requests) in ours {
                let entry = merged.entry(table).or_insert_with(|| Value::Array(Vec::new()));
                if let (Some(a), Some(b)) = (entry.as_array_mut(), requests.as_array()) {
                    a.extend(b.iter().cloned());
                }
            }
            doc["UnprocessedItems"] = Value::Object(merged);
            (Bytes::from(doc.to_string()), true)
        }
        _ => (bytes, false),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        let skip = matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) || (modified && name.as_str() == "x-amz-crc32");
        if !skip {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(wcu: f64) -> Model {
        Model {
            latency: Duration::from_millis(4),
            wcu_per_s: wcu,
        }
    }

    fn part(table: &str, key: &str) -> Partition {
        Partition {
            table: table.into(),
            index: None,
            key: key.into(),
        }
    }

    #[test]
    fn a_partition_takes_its_depth_at_once_then_its_rate() {
        let m = model(250.0);
        assert_eq!(m.depth(), 25.0);
        assert_eq!(model(1000.0).depth(), 100.0);
        let mut c = Capacity::new(&m);
        let t0 = Instant::now();
        let p = [part("t", "u1")];
        let taken = (0..40).filter(|_| c.try_take(&p, t0)).count();
        assert_eq!(taken, 25, "a full bucket, then nothing at the same instant");
        // 100 ms later: 25 more (250/s), not more than the depth.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..40).filter(|_| c.try_take(&p, t1)).count(), 25);
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(
            (0..40).filter(|_| c.try_take(&p, t2)).count(),
            25,
            "idle time banks only the depth"
        );
    }

    #[test]
    fn the_counts_of_two_proxies_merge_into_one() {
        let t = |accepted, throttled| TableStats {
            accepted,
            throttled,
            first: None,
            last: None,
        };
        let jobs = Stats {
            tables: BTreeMap::from([("jobs".to_owned(), t(38, 0))]),
            exceptions: 1,
            requests: 60,
        };
        let user_data = Stats {
            tables: BTreeMap::from([
                ("transactions".to_owned(), t(4000, 900)),
                ("sessions".to_owned(), t(4000, 10)),
            ]),
            exceptions: 2,
            requests: 500,
        };
        let both = Stats::default().merged(jobs).merged(user_data);
        assert_eq!(both.tables.len(), 3);
        assert_eq!(both.accepted(), 8038);
        assert_eq!(both.throttled(), 910);
        assert_eq!((both.exceptions, both.requests), (3, 560));
    }

    #[test]
    fn partitions_are_independent_and_a_write_with_an_index_needs_both() {
        let mut c = Capacity::new(&model(250.0));
        let t0 = Instant::now();
        for _ in 0..25 {
            assert!(c.try_take(&[part("t", "u1")], t0));
        }
        assert!(!c.try_take(&[part("t", "u1")], t0));
        assert!(c.try_take(&[part("t", "u2")], t0), "another key value");
        assert!(c.try_take(&[part("other", "u1")], t0), "another table");
        // A base partition with room and an exhausted index partition: the write does not fit,
        // and the base partition keeps its token.
        let index = Partition {
            table: "t".into(),
            index: Some("by_user".into()),
            key: "u1".into(),
        };
        for _ in 0..25 {
            assert!(c.try_take(std::slice::from_ref(&index), t0));
        }
        assert!(!c.try_take(&[part("t", "s1"), index.clone()], t0));
        assert_eq!((0..30).filter(|_| c.try_take(&[part("t", "s1")], t0)).count(), 25);
    }

    #[test]
    fn a_write_touches_its_partition_and_each_index_its_item_is_in() {
        let meta = TableMeta {
            hash_key: "session_id".into(),
            indexes: vec![("by_user".into(), "user_id".into())],
        };
        let key = object(&json!({ "session_id": { "S": "s1" } }));
        let item = object(&json!({ "session_id": { "S": "s1" }, "user_id": { "S": "u1" } }));
        assert_eq!(
            partitions_of("sessions", &meta, &key, Some(&item)),
            vec![
                part("sessions", r#"{"S":"s1"}"#),
                Partition {
                    table: "sessions".into(),
                    index: Some("by_user".into()),
                    key: r#"{"S":"u1"}"#.into()
                }
            ]
        );
        // An item that is gone (or has no index attribute) writes no index entry.
        assert_eq!(partitions_of("sessions", &meta, &key, None).len(), 1);
    }

    #[test]
    fn the_writes_of_each_write_operation_are_found() {
        let batch = json!({ "RequestItems": {
            "a": [ { "DeleteRequest": { "Key": { "k": { "S": "1" } } } },
                   { "PutRequest": { "Item": { "k": { "S": "2" }, "x": { "S": "y" } } } } ],
            "b": [ { "DeleteRequest": { "Key": { "k": { "S": "3" } } } } ] } });
        let w = writes_of("BatchWriteItem", &batch);
        assert_eq!(w.len(), 3);
        assert_eq!(
            w.iter()
                .map(|w| (w.table.as_str(), w.needs_old_item))
                .collect::<Vec<_>>(),
            vec![("a", true), ("a", false), ("b", true)]
        );
        assert_eq!(
            writes_of("PutItem", &json!({ "TableName": "a", "Item": {} })).len(),
            1
        );
        assert_eq!(
            writes_of("UpdateItem", &json!({ "TableName": "a", "Key": {} })).len(),
            1
        );
        let tx = json!({ "TransactItems": [
            { "Put": { "TableName": "a", "Item": {} } },
            { "Update": { "TableName": "b", "Key": {} } },
            { "ConditionCheck": { "TableName": "c", "Key": {} } } ] });
        assert_eq!(
            writes_of("TransactWriteItems", &tx).len(),
            2,
            "a condition check writes nothing"
        );
        assert!(writes_of("Query", &json!({ "TableName": "a" })).is_empty());
    }

    #[test]
    fn stats_between_two_snapshots_count_only_what_happened_between() {
        let t1 = Instant::now();
        let mut before = Stats::default();
        before.tables.insert(
            "a".into(),
            TableStats {
                accepted: 10,
                throttled: 1,
                first: None,
                last: None,
            },
        );
        before.requests = 5;
        let mut after = before.clone();
        let a = after.tables.get_mut("a").unwrap();
        a.accepted = 15;
        a.first = Some(t1);
        a.last = Some(t1);
        after.tables.insert(
            "b".into(),
            TableStats {
                accepted: 2,
                throttled: 3,
                first: Some(t1),
                last: Some(t1),
            },
        );
        after.tables.insert("c".into(), TableStats::default());
        after.requests = 9;
        after.exceptions = 1;
        let d = after.since(&before);
        assert_eq!(
            (d.accepted(), d.throttled(), d.requests, d.exceptions),
            (7, 3, 4, 1)
        );
        assert_eq!(
            d.tables.keys().collect::<Vec<_>>(),
            ["a", "b"],
            "tables without writes are left out"
        );
        assert_eq!(d.tables["a"].first, Some(t1));
    }
}

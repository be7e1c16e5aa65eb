//! Faults as AWS produces them, as SDK interceptors in front of the emulator:
//!
//! - [`ReplaceAnswers`]: answers lost after the request took effect: the request reaches the
//!   emulator (so it applies there) and the client sees another answer (a 500, a throttle, a
//!   200 without its payload, ...).
//! - [`LaggingIndex`]: a global secondary index behind its table (eventually consistent):
//!   a query misses a row written just before, or still shows one deleted just before.
//!
//! A DynamoDB client built with [`dynamodb_client`] retries the replaced answer like any
//! other 5xx (the SDK's standard retries send the very same request again), so a test sees
//! what a retried write meets on DynamoDB: its own earlier write.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::retry::RetryConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An HTTP answer to hand the client instead of the emulator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAnswer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl FakeAnswer {
    /// DynamoDB's `InternalServerError` (HTTP 500, awsJson1.0): the SDK retries it.
    pub fn dynamodb_internal_error() -> FakeAnswer {
        FakeAnswer {
            status: 500,
            headers: vec![("content-type", "application/x-amz-json-1.0".into())],
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#
                .into(),
        }
    }

    /// A REST-JSON error (SESv2): the status, `x-amzn-ErrorType: <code>` and a message.
    pub fn rest_error(status: u16, code: &str) -> FakeAnswer {
        FakeAnswer {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-amzn-errortype", code.to_owned()),
            ],
            body: format!(r#"{{"message":"injected {code}"}}"#),
        }
    }

    /// A JSON answer with this status and body.
    pub fn json(status: u16, body: &str) -> FakeAnswer {
        FakeAnswer {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_owned(),
        }
    }
}

/// Replaces the answers to the first `times` calls of one operation (`PutItem`, `SendEmail`,
/// ...) with a [`FakeAnswer`]; every call still reaches the emulator first.
#[derive(Debug, Clone)]
pub struct ReplaceAnswers {
    operation: &'static str,
    answer: FakeAnswer,
    left: Arc<AtomicU32>,
    calls: Arc<AtomicU32>,
    replaced: Arc<AtomicU32>,
}

impl ReplaceAnswers {
    pub fn new(operation: &'static str, times: u32, answer: FakeAnswer) -> ReplaceAnswers {
        ReplaceAnswers {
            operation,
            answer,
            left: Arc::new(AtomicU32::new(times)),
            calls: Arc::default(),
            replaced: Arc::default(),
        }
    }

    /// The first `times` answers to `operation` are DynamoDB 500s (retried by the SDK).
    pub fn lose_dynamodb(operation: &'static str, times: u32) -> ReplaceAnswers {
        ReplaceAnswers::new(operation, times, FakeAnswer::dynamodb_internal_error())
    }

    /// Calls of the operation that reached the emulator so far.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Answers replaced so far.
    pub fn replaced(&self) -> u32 {
        self.replaced.load(Ordering::SeqCst)
    }
}

impl Intercept for ReplaceAnswers {
    fn name(&self) -> &'static str {
        "ReplaceAnswers"
    }

    fn modify_before_deserialization(
        &self, context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents, cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(Metadata::name) != Some(self.operation) {
            return Ok(());
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let take = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !take {
            return Ok(());
        }
        let status = StatusCode::try_from(self.answer.status)?;
        let mut response = Response::new(status, SdkBody::from(self.answer.body.clone()));
        for (name, value) in &self.answer.headers {
            response.headers_mut().insert(*name, value.clone());
        }
        *context.response_mut() = response;
        self.replaced.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A DynamoDB client on `sdk` with `faults` installed and the SDK's standard retries
/// (3 attempts, short backoff): a replaced 5xx is sent again, as it would be in Lambda.
pub fn dynamodb_client(sdk: &SdkConfig, faults: &ReplaceAnswers) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .interceptor(faults.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// What one Query answer of a lagging index leaves out and adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lag {
    /// Items the table has but the index does not show yet (written just before): removed
    /// from the answer. Each is matched on the attributes given.
    pub hide: Vec<HashMap<String, AttributeValue>>,
    /// Items the index still shows although the table no longer has them (deleted just
    /// before): added to the answer as given.
    pub show: Vec<HashMap<String, AttributeValue>>,
}

/// A global secondary index that lags behind its table, as DynamoDB's do (GSI reads are
/// eventually consistent): the n-th `Query` of `index` on `table` answers with the
/// [`Lag`] given for it applied (the other queries are answered as the store answers them).
#[derive(Debug, Clone)]
pub struct LaggingIndex {
    table: String,
    index: String,
    lags: Arc<Mutex<BTreeMap<u32, Lag>>>,
    queries: Arc<AtomicU32>,
}

/// The ordinal of this call among the matching queries (set before the call is sent).
#[derive(Debug, Clone, Copy)]
struct QueryOrdinal(u32);

impl Storable for QueryOrdinal {
    type Storer = StoreReplace<Self>;
}

impl LaggingIndex {
    pub fn new(table: impl Into<String>, index: impl Into<String>) -> LaggingIndex {
        LaggingIndex {
            table: table.into(),
            index: index.into(),
            lags: Arc::default(),
            queries: Arc::default(),
        }
    }

    /// The `n`-th query (from 1) answers with `lag` applied.
    pub fn on_query(self, n: u32, lag: Lag) -> LaggingIndex {
        self.lags.lock().unwrap_or_else(|e| e.into_inner()).insert(n, lag);
        self
    }

    /// Queries of the index so far.
    pub fn queries(&self) -> u32 {
        self.queries.load(Ordering::SeqCst)
    }
}

fn matches(item: &HashMap<String, AttributeValue>, pattern: &HashMap<String, AttributeValue>) -> bool {
    pattern.iter().all(|(k, v)| item.get(k) == Some(v))
}

impl Intercept for LaggingIndex {
    fn name(&self) -> &'static str {
        "LaggingIndex"
    }

    fn read_before_execution(
        &self, context: &BeforeSerializationInterceptorContextRef<'_>, cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(query) = context.input().downcast_ref::<QueryInput>() else {
            return Ok(());
        };
        if query.table_name() == Some(self.table.as_str()) && query.index_name() == Some(self.index.as_str())
        {
            let n = self.queries.fetch_add(1, Ordering::SeqCst) + 1;
            cfg.interceptor_state().store_put(QueryOrdinal(n));
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self, context: &mut FinalizerInterceptorContextMut<'_>, _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(QueryOrdinal(n)) = cfg.load::<QueryOrdinal>().copied() else {
            return Ok(());
        };
        let Some(lag) = self
            .lags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&n)
            .cloned()
        else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Some(output) = output.downcast_mut::<QueryOutput>() else {
            return Ok(());
        };
        let items = output.items.get_or_insert_with(Vec::new);
        items.retain(|item| !lag.hide.iter().any(|h| matches(item, h)));
        items.extend(lag.show.iter().cloned());
        output.count = i32::try_from(items.len()).unwrap_or(i32::MAX);
        Ok(())
    }
}

/// A DynamoDB client on `sdk` with `interceptor` installed.
pub fn dynamodb_client_with(
    sdk: &SdkConfig, interceptor: impl Intercept + 'static,
) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(interceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

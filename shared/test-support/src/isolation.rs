//! Writes isolated the way DynamoDB isolates them, in front of moto.
//!
//! moto server (5.2.5) runs every request on its own thread and takes no lock anywhere in its
//! DynamoDB backend:
//!
//! - a conditional `PutItem` / `UpdateItem` / `DeleteItem` reads the item, checks the
//!   condition and writes, while other requests run: two claims of one idempotency key can
//!   both pass `attribute_not_exists(pk)` (seen here: 2 winners of 20 concurrent claims), and
//!   an `UpdateItem` changes the stored item one attribute after the other, so a concurrent
//!   read can see half of it;
//! - a `TransactWriteItems` checks and writes its actions one after the other, and a cancelled
//!   one is rolled back by putting back copies of its tables taken when it started, which also
//!   undoes whatever other requests wrote to those tables in between. Two transactions that
//!   each check what the other writes (two owners deleting each other) interleave.
//!
//! DynamoDB does none of this: every single-item write, condition included, is atomic, and a
//! transaction is serializable against every other write to the items it touches.
//!
//! [`isolated`] gives an SDK configuration whose HTTP client holds a read-write lock around
//! every DynamoDB request made through it: writes (`PutItem`, `UpdateItem`, `DeleteItem`,
//! `BatchWriteItem`, `TransactWriteItems`, table changes) one at a time and alone, reads
//! (`GetItem`, `BatchGetItem`, `Query`, `Scan`, `TransactGetItems`, `Describe*`, `List*`)
//! together. The tests then see what DynamoDB guarantees: each write happens entirely before
//! or entirely after every other request. Which of two racing writes goes first is still up
//! to the race. Other services' requests are not held.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;
use tokio::sync::RwLock;

/// The one lock of this process around the emulator's DynamoDB: writers alone, readers
/// together. One for the whole process, not one per client or proxy: every test of a binary
/// talks to the same moto, which also fails (an HTML 500 page) when writes from two clients
/// meet.
pub fn emulator_lock() -> Arc<RwLock<()>> {
    static LOCK: std::sync::LazyLock<Arc<RwLock<()>>> = std::sync::LazyLock::new(Arc::default);
    LOCK.clone()
}

/// `sdk` with an HTTP client that isolates every DynamoDB write from every other DynamoDB
/// request of this process made through [`emulator_lock`] (any client built from the
/// returned configuration, and the reliability tests' proxies).
pub fn isolated(sdk: &SdkConfig) -> SdkConfig {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    let client = Isolating {
        inner,
        lock: emulator_lock(),
    };
    sdk.to_builder()
        .http_client(SharedHttpClient::new(client))
        .build()
}

#[derive(Debug, Clone)]
struct Isolating {
    inner: SharedHttpClient,
    lock: Arc<RwLock<()>>,
}

impl HttpClient for Isolating {
    fn http_connector(
        &self, settings: &HttpConnectorSettings, components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(IsolatingConnector {
            inner: self.inner.http_connector(settings, components),
            lock: self.lock.clone(),
        })
    }
}

#[derive(Debug, Clone)]
struct IsolatingConnector {
    inner: SharedHttpConnector,
    lock: Arc<RwLock<()>>,
}

/// How a request takes the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Not DynamoDB: not held.
    Free,
    Read,
    Write,
}

/// The DynamoDB operation (`X-Amz-Target: DynamoDB_20120810.<Operation>`) and how it locks.
fn access(request: &HttpRequest) -> Access {
    let Some(operation) = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
    else {
        return Access::Free;
    };
    let reads = ["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"];
    if reads.contains(&operation) || operation.starts_with("Describe") || operation.starts_with("List") {
        Access::Read
    } else {
        Access::Write
    }
}

impl HttpConnector for IsolatingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let access = access(&request);
        let inner = self.inner.clone();
        let lock = self.lock.clone();
        HttpConnectorFuture::new(async move {
            // The answer (the emulator has applied the request by then) comes back before
            // the guard goes.
            match access {
                Access::Free => inner.call(request).await,
                Access::Read => {
                    let _no_write = lock.read().await;
                    inner.call(request).await
                }
                Access::Write => {
                    let _only_me = lock.write().await;
                    inner.call(request).await
                }
            }
        })
    }
}

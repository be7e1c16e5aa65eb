//! Transactions isolated the way DynamoDB isolates them, in front of moto.
//!
//! moto server (5.2.5) runs every request on its own thread and applies a `TransactWriteItems`
//! without any lock: it checks each action's condition and writes it, one action after the
//! other, while other requests run. A cancelled transaction is rolled back by putting back
//! copies of its tables taken when it started, which also undoes whatever other requests
//! wrote to those tables in between. Two transactions that each check what the other writes
//! (two owners deleting each other) can therefore both apply on moto, and a cancelled one can
//! erase a write that succeeded. DynamoDB never does either: a transaction is serializable
//! against every other write to the items it touches.
//!
//! [`isolated`] gives an SDK configuration whose HTTP client lets a `TransactWriteItems` go
//! to the emulator only while no other request of that configuration is in flight, and holds
//! every other request back while one runs (a read-write lock; transactions are the
//! writers). What the tests then see is what DynamoDB guarantees: each transaction happens
//! entirely before or entirely after every other write. Which of two racing transactions
//! goes first is still up to the race.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;
use tokio::sync::RwLock;

/// `sdk` with an HTTP client that isolates `TransactWriteItems` from every other request made
/// through it (by any client built from the returned configuration).
pub fn isolated(sdk: &SdkConfig) -> SdkConfig {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    let client = Isolating {
        inner,
        lock: Arc::new(RwLock::new(())),
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
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
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

/// Whether the request is a DynamoDB `TransactWriteItems` (`X-Amz-Target`).
fn is_transaction(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("x-amz-target")
        .is_some_and(|t| t.ends_with(".TransactWriteItems"))
}

impl HttpConnector for IsolatingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let transaction = is_transaction(&request);
        let inner = self.inner.clone();
        let lock = self.lock.clone();
        HttpConnectorFuture::new(async move {
            // The answer (the emulator has applied the request by then) comes back before
            // the guard goes.
            if transaction {
                let _only_me = lock.write().await;
                inner.call(request).await
            } else {
                let _no_transaction = lock.read().await;
                inner.call(request).await
            }
        })
    }
}

//! How the AWS SDK is set up at start-up ([`crate::env::sdk_config`] calls [`sdk_config_from`]).
//!
//! In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the functions skip the two costly parts of
//! `aws_config::load()`: the default credentials chain (Lambda puts the function's credentials
//! in its environment) and the system trust store (the SDK's HTTPS client reads every
//! certificate of `/etc/ssl/certs` the first time a connector is built). Instead every client
//! shares one HTTPS client (rustls with aws-lc, the SDK's own default stack) that trusts only
//! the roots AWS endpoints chain to, embedded in the binary ([`AMAZON_ROOTS_PEM`]), whose
//! connectors are built by the first request rather than once per client at start-up; and the
//! region Lambda sets is handed to the loader, so the default region chain (and its
//! instance-metadata client) is never built. Measured in docs/BENCHMARKS.md: this was most of
//! the functions' init.
//!
//! [`SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS`] switches back to `aws_config::load()` as it is
//! (system trust store, default credentials chain): for an endpoint behind another CA, or a
//! Lambda environment that serves credentials some other way. Outside Lambda (dev server,
//! tests, a local emulator) nothing changes: it is always `aws_config::load()`.

use crate::env::Lookup;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

/// `true` (or `1`, `yes`, `on`): use the system trust store and the SDK's default credentials
/// chain in Lambda too. Unset, blank, `false`, `0`, `no`, `off`: the Lambda set-up. Any other
/// value is read as `true` (the set-up that works everywhere), with a warning.
pub const SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS: &str = "SDK_SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS";

/// Set by Lambda in every function's environment (and by `cargo lambda watch`).
pub const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Amazon Root CA 1–4 and Starfield Services Root Certificate Authority – G2 (which
/// cross-signs them): the CAs every AWS service endpoint's certificate chains to.
pub const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("../certs/amazon-roots.pem");

/// Which SDK set-up a process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkSetup {
    /// `aws_config::load()`: system trust store, default credentials chain.
    Standard,
    /// In Lambda: the environment's credentials, one shared HTTPS client trusting only the
    /// Amazon roots.
    Lambda,
}

/// The set-up, and a warning to log when the switch-back setting holds a value it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub setup: SdkSetup,
    /// Names the variable, never its value.
    pub warning: Option<String>,
}

/// Chooses the set-up from the environment (see the module documentation).
pub fn select(lookup: Lookup<'_>) -> Selection {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    if !set(LAMBDA_FUNCTION_NAME) {
        return Selection {
            setup: SdkSetup::Standard,
            warning: None,
        };
    }
    let value = lookup(SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match value.as_str() {
        "" | "false" | "0" | "no" | "off" => Selection {
            setup: SdkSetup::Lambda,
            warning: None,
        },
        "true" | "1" | "yes" | "on" => Selection {
            setup: SdkSetup::Standard,
            warning: None,
        },
        _ => Selection {
            setup: SdkSetup::Standard,
            warning: Some(format!(
                "{SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS} is neither true nor false; using the system trust store \
                 and the default credentials chain"
            )),
        },
    }
}

/// The HTTPS client of the Lambda set-up: rustls with aws-lc (as the SDK's default client),
/// trusting only [`AMAZON_ROOTS_PEM`], building each connector when a client first uses it
/// ([`ConnectOnFirstUse`]).
pub fn amazon_roots_https_client() -> SharedHttpClient {
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS_PEM);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
    let https = match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // `build` cannot fail for a trust store (1.5); should it ever, the SDK's own TLS
        // context (system trust store) is the safe fallback, with the same TLS stack.
        Err(err) => {
            tracing::warn!(error = %err, "the Amazon-roots TLS context could not be built; using the system trust store");
            builder.build_https()
        }
    };
    ConnectOnFirstUse(https).into_shared()
}

/// An SDK HTTP client without its start-up warm-up. The SDK's hyper client builds a whole
/// connector (TLS configuration, trust store) in `validate_base_client_config` — once per SDK
/// client created — and throws it away, so that loading the *system* trust store is paid at
/// start-up rather than by the first request. With a trust store of five embedded
/// certificates there is nothing to warm up: the connector each client needs is built (once,
/// and cached by the inner client) by its first request instead.
#[derive(Debug)]
pub struct ConnectOnFirstUse(pub SharedHttpClient);

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(
        &self, settings: &HttpConnectorSettings, components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self, components: &RuntimeComponents, cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The SDK configuration for a set-up. Endpoints (`AWS_ENDPOINT_URL`...), retries and timeouts
/// come from the environment as `aws_config::load()` reads them in both. In Lambda the region
/// is the one Lambda sets (`AWS_REGION`, else `AWS_DEFAULT_REGION`, as the default region
/// chain would find it first), given to the loader so that it never builds the chain (whose
/// instance-metadata client is most of `load()`'s own time).
pub async fn build(setup: SdkSetup, lookup: Lookup<'_>) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    match setup {
        SdkSetup::Standard => loader.load().await,
        SdkSetup::Lambda => {
            let region = ["AWS_REGION", "AWS_DEFAULT_REGION"].into_iter().find_map(|name| {
                lookup(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            });
            let loader = match region {
                Some(region) => loader.region(aws_config::Region::new(region)),
                None => loader,
            };
            loader
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .http_client(amazon_roots_https_client())
                .load()
                .await
        }
    }
}

/// [`select`] then [`build`]; logs the selection's warning, if any.
pub async fn sdk_config_from(lookup: Lookup<'_>) -> SdkConfig {
    let selection = select(lookup);
    if let Some(warning) = &selection.warning {
        tracing::warn!("{warning}");
    }
    build(selection.setup, lookup).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn setup(vars: &[(&str, &str)]) -> SdkSetup {
        select(&lookup(vars)).setup
    }

    const IN_LAMBDA: (&str, &str) = (LAMBDA_FUNCTION_NAME, "teleperson-message-user");

    #[test]
    fn outside_lambda_the_sdk_is_set_up_as_aws_config_does_whatever_the_setting() {
        assert_eq!(setup(&[]), SdkSetup::Standard);
        assert_eq!(setup(&[(LAMBDA_FUNCTION_NAME, "  ")]), SdkSetup::Standard);
        for value in ["false", "true", "0", "garbage"] {
            let s = select(&lookup(&[(SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS, value)]));
            assert_eq!(
                s,
                Selection {
                    setup: SdkSetup::Standard,
                    warning: None
                },
                "{value}"
            );
        }
    }

    #[test]
    fn in_lambda_the_lambda_setup_is_the_default() {
        assert_eq!(setup(&[IN_LAMBDA]), SdkSetup::Lambda);
        for value in ["", " ", "false", "FALSE", "0", "no", "off", " Off "] {
            let s = select(&lookup(&[
                IN_LAMBDA,
                (SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS, value),
            ]));
            assert_eq!(
                s,
                Selection {
                    setup: SdkSetup::Lambda,
                    warning: None
                },
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_setting_switches_lambda_back_to_the_system_trust_store_and_default_chain() {
        for value in ["true", "TRUE", "1", "yes", "on", " True "] {
            let s = select(&lookup(&[
                IN_LAMBDA,
                (SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS, value),
            ]));
            assert_eq!(
                s,
                Selection {
                    setup: SdkSetup::Standard,
                    warning: None
                },
                "{value:?}"
            );
        }
    }

    #[test]
    fn an_unknown_value_of_the_setting_takes_the_safe_side_and_warns_without_the_value() {
        let s = select(&lookup(&[
            IN_LAMBDA,
            (SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS, "sometimes"),
        ]));
        assert_eq!(s.setup, SdkSetup::Standard);
        let warning = s.warning.expect("a warning");
        assert!(
            warning.contains(SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS),
            "{warning}"
        );
        assert!(!warning.contains("sometimes"), "{warning}");
    }

    /// The embedded roots are exactly these five certificates (SHA-256 of the DER, as
    /// published by Amazon Trust Services and in Debian's ca-certificates).
    #[test]
    fn the_embedded_trust_store_holds_exactly_the_amazon_roots() {
        let text = std::str::from_utf8(AMAZON_ROOTS_PEM).unwrap();
        let mut fingerprints = Vec::new();
        let mut b64 = None::<String>;
        for line in text.lines() {
            match (line.trim(), b64.as_mut()) {
                ("-----BEGIN CERTIFICATE-----", None) => b64 = Some(String::new()),
                ("-----END CERTIFICATE-----", Some(body)) => {
                    let der = base64::engine::general_purpose::STANDARD.decode(&*body).unwrap();
                    fingerprints.push(hex(&Sha256::digest(&der)));
                    b64 = None;
                }
                (l, Some(body)) => body.push_str(l),
                (_, None) => {}
            }
        }
        assert!(b64.is_none(), "an unterminated certificate");
        assert_eq!(
            fingerprints,
            [
                // Amazon Root CA 1 .. 4
                "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
                "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
                "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
                "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
                // Starfield Services Root Certificate Authority - G2
                "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
            ]
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The shared client builds its connector (which parses the embedded roots, and panics on
    /// a bad PEM) and carries a real request: here to a loopback server over plain HTTP.
    #[tokio::test]
    async fn the_amazon_roots_client_builds_its_connector_and_carries_a_request() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the JSON body (the SDK sends Content-Length).
            while !request.ends_with(b"}") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            let body = b"{}";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(amazon_roots_https_client())
            .build();
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(format!("http://{addr}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .build();
        let out = aws_sdk_dynamodb::Client::from_conf(config)
            .get_item()
            .table_name("t")
            .key("k", aws_sdk_dynamodb::types::AttributeValue::S("v".into()))
            .send()
            .await
            .expect("the request went through the shared client");
        assert!(out.item().is_none());
        let request = server.await.unwrap();
        assert!(request.contains("DynamoDB_20120810.GetItem"), "{request}");
    }

    /// Creating SDK clients builds no connector; the first request builds the one it needs.
    #[tokio::test]
    async fn connectors_are_built_by_the_first_request_not_by_client_creation() {
        use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
        use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        #[derive(Debug, Default)]
        struct Counting {
            warm_ups: AtomicUsize,
            connectors: AtomicUsize,
        }
        #[derive(Debug)]
        struct Inner(Arc<Counting>);
        #[derive(Debug)]
        struct Answer;
        impl HttpConnector for Answer {
            fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
                let ok = Response::new(StatusCode::try_from(200u16).unwrap(), SdkBody::from("{}"));
                HttpConnectorFuture::ready(Ok(ok))
            }
        }
        impl HttpClient for Inner {
            fn http_connector(
                &self, _: &HttpConnectorSettings, _: &RuntimeComponents,
            ) -> SharedHttpConnector {
                self.0.connectors.fetch_add(1, Ordering::SeqCst);
                Answer.into_shared()
            }
            fn validate_base_client_config(
                &self, _: &RuntimeComponentsBuilder, _: &ConfigBag,
            ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
                self.0.warm_ups.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
        let counting = Arc::new(Counting::default());
        let client = |http: SharedHttpClient| {
            let sdk = SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credentials())
                .endpoint_url("http://dynamodb.invalid")
                .http_client(http)
                .build();
            aws_sdk_dynamodb::Client::new(&sdk)
        };
        // The inner client alone warms up at each client creation (what the wrapper removes).
        let _ = client(Inner(counting.clone()).into_shared());
        assert_eq!(counting.warm_ups.load(Ordering::SeqCst), 1);

        let wrapped: SharedHttpClient =
            ConnectOnFirstUse(Inner(counting.clone()).into_shared()).into_shared();
        let dynamo = client(wrapped.clone());
        let _other = client(wrapped);
        assert_eq!(
            counting.warm_ups.load(Ordering::SeqCst),
            1,
            "no warm-up through the wrapper"
        );
        assert_eq!(
            counting.connectors.load(Ordering::SeqCst),
            0,
            "no connector before a request"
        );
        dynamo
            .get_item()
            .table_name("t")
            .key("k", aws_sdk_dynamodb::types::AttributeValue::S("v".into()))
            .send()
            .await
            .expect("the request went through");
        assert!(
            counting.connectors.load(Ordering::SeqCst) >= 1,
            "the first request asked for its connector"
        );
    }

    fn aws_credentials() -> aws_sdk_dynamodb::config::SharedCredentialsProvider {
        aws_sdk_dynamodb::config::SharedCredentialsProvider::new(aws_sdk_dynamodb::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
    }

    #[tokio::test]
    async fn the_lambda_setup_shares_one_http_client_and_reads_credentials_and_region_from_the_environment() {
        let env = lookup(&[
            IN_LAMBDA,
            ("AWS_REGION", "eu-west-3"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ]);
        let lambda = build(SdkSetup::Lambda, &env).await;
        assert!(
            lambda.http_client().is_some(),
            "one HTTPS client shared by every SDK client"
        );
        let credentials = format!(
            "{:?}",
            lambda.credentials_provider().expect("a credentials provider")
        );
        assert!(
            credentials.contains("EnvironmentVariableCredentialsProvider"),
            "{credentials}"
        );
        assert_eq!(lambda.region().map(|r| r.as_ref()), Some("eu-west-3"));
        let only_default = lookup(&[IN_LAMBDA, ("AWS_DEFAULT_REGION", "us-east-2")]);
        assert_eq!(
            build(SdkSetup::Lambda, &only_default)
                .await
                .region()
                .map(|r| r.as_ref()),
            Some("us-east-2")
        );

        let standard = build(SdkSetup::Standard, &env).await;
        assert!(
            standard.http_client().is_none(),
            "each client builds the SDK's default HTTPS client"
        );
        let credentials = format!(
            "{:?}",
            standard.credentials_provider().expect("a credentials provider")
        );
        assert!(
            !credentials.contains("EnvironmentVariableCredentialsProvider")
                && credentials.contains("DefaultCredentialsChain"),
            "{credentials}"
        );
    }
}

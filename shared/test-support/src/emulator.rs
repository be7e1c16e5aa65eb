use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const HOW: &str = "run the tests with scripts/test.sh, which starts moto server";

/// The AWS emulator (moto server) at `AWS_ENDPOINT_URL`.
#[derive(Clone, Debug)]
pub struct Emulator {
    endpoint: String,
    sdk: SdkConfig,
}

impl Emulator {
    /// The emulator `scripts/test.sh` started. Panics, with what to do, when
    /// `AWS_ENDPOINT_URL` is unset or nothing answers there: these tests never skip.
    pub fn start_or_panic() -> Emulator {
        let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
            Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
            _ => panic!("AWS_ENDPOINT_URL is not set, so the AWS emulator cannot be found; {HOW}"),
        };
        if let Err(err) = http_get(&endpoint, "/moto-api/") {
            panic!("the AWS emulator is not reachable at {endpoint} ({err}); {HOW}");
        }
        let sdk = local_sdk(&endpoint, "emulator");
        Emulator { endpoint, sdk }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK settings for the emulator: its endpoint, dummy credentials, `us-east-1`.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn sesv2(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.sdk)
    }

    /// `GET {endpoint}{path}` as text (moto's own API, such as
    /// [`crate::ses::SES_MESSAGES_PATH`]).
    ///
    /// moto 5.2.5 reads its state without a lock, and a read that meets a concurrent change
    /// can answer 500: read again, up to 20 times, before failing the test.
    pub async fn get_text(&self, path: &str) -> String {
        let mut last = String::new();
        for _ in 0..20 {
            match self.try_get_text(path).await {
                Ok(text) => return text,
                Err(e) if e.contains("HTTP 5") => {
                    last = e;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("GET {path} from the emulator failed: {e}"),
            }
        }
        panic!("GET {path} from the emulator failed 20 times: {last}")
    }

    /// `GET {endpoint}{path}` as text, once: the error says what went wrong (`HTTP 500`).
    pub async fn try_get_text(&self, path: &str) -> Result<String, String> {
        let (endpoint, path) = (self.endpoint.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || http_get(&endpoint, &path))
            .await
            .expect("the HTTP reader does not panic")
    }
}

/// SDK settings for a local emulator at `endpoint`: dummy credentials (named `provider`),
/// `us-east-1`, the SDK's defaults otherwise.
pub fn local_sdk(endpoint: &str, provider: &'static str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, provider,
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A TCP connection to an `http://` endpoint (given 2 s), and its `host:port`.
pub(crate) fn connect(endpoint: &str) -> Result<(String, TcpStream), String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("{endpoint} is not an http:// URL"))?
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{authority} does not resolve"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    Ok((authority, stream))
}

/// A minimal HTTP/1.0 GET over loopback (no TLS, no redirects): enough for moto's API.
fn http_get(endpoint: &str, path: &str) -> Result<String, String> {
    let (authority, mut stream) = connect(endpoint)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        return Err(format!("HTTP {status}"));
    }
    Ok(body.to_owned())
}

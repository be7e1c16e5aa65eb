//! The dev server over real HTTP, shared by its test files: each test starts its own server
//! (seeded in-memory backend, its own outbox folder) on 127.0.0.1:0 and talks to it with a
//! minimal HTTP/1.1 client.
#![allow(dead_code)]

use devserver::auth::ADMIN_SCOPE;
use devserver::{Config, DevServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<DevServer>,
    pub outbox: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Server {
    let outbox = std::env::temp_dir().join(format!("devserver-test-{}", uuid_like()));
    // No simulated Delivery events unless a test asks: statuses change only when told to.
    let mut config = Config {
        outbox: outbox.clone(),
        simulate_delivery: None,
        ..Config::default()
    };
    configure(&mut config);
    let app = DevServer::new(config).expect("a dev server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(devserver::serve(listener, app.clone()));
    Server { addr, app, outbox }
}

pub async fn start() -> Server {
    start_with(|_| {}).await
}

pub fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        + &format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        )
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fresh access token of this server's for `user` with the admin scope, as
/// `GET /dev/identities` hands out.
pub fn token_for(server: &Server, user: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    server.app.auth.mint(user, &[ADMIN_SCOPE], now).token
}

/// One request on a fresh connection (`Connection: close`), read to the end, signed in as
/// `user` (`Authorization: Bearer <a token for user>`) when given.
pub async fn call(
    server: &Server, method: &str, path: &str, user: Option<&str>, body: Option<&[u8]>,
) -> Answer {
    let authorization = user.map(|u| format!("Bearer {}", token_for(server, u)));
    let mut headers = vec![("Host".to_owned(), server.addr.to_string())];
    headers.extend(authorization.map(|a| ("Authorization".to_owned(), a)));
    raw_call(server, method, path, &headers, body).await
}

/// One request with exactly these headers (and `Connection`, `User-Agent`, and for a body
/// `Content-Type` and `Content-Length`).
pub async fn raw_call(
    server: &Server, method: &str, path: &str, headers: &[(String, String)], body: Option<&[u8]>,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect to the dev server");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nUser-Agent: api-test\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    if let Some(b) = body {
        // The server may answer (413) before reading everything; a reset here is fine.
        let _ = stream.write_all(b).await;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse(&raw)
}

pub fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

pub fn id_of(server: &Server, name: &str) -> String {
    let st = server.app.backend.state();
    st.profiles
        .values()
        .find(|p| p.display_name == name)
        .map(|p| p.user_id.clone())
        .unwrap_or_else(|| panic!("no seeded user named {name}"))
}

pub fn outbox_files(server: &Server) -> Vec<PathBuf> {
    std::fs::read_dir(&server.outbox)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

/// Headers: the right Host, and this Authorization value.
pub fn with_authorization(s: &Server, value: &str) -> Vec<(String, String)> {
    vec![
        ("Host".to_owned(), s.addr.to_string()),
        ("Authorization".to_owned(), value.to_owned()),
    ]
}

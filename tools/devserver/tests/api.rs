//! The dev server over real HTTP: each test starts its own server (seeded in-memory backend,
//! its own outbox folder) on 127.0.0.1:0 and talks to it with a minimal HTTP/1.1 client.

use devserver::auth::{ADMIN_SCOPE, DEV_CLIENT_ID, DEV_ISSUER};
use devserver::{Config, DevServer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    addr: SocketAddr,
    app: Arc<DevServer>,
    outbox: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

async fn start_with(configure: impl FnOnce(&mut Config)) -> Server {
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

async fn start() -> Server {
    start_with(|_| {}).await
}

fn uuid_like() -> String {
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

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fresh access token of this server's for `user` with the admin scope, as
/// `GET /dev/identities` hands out.
fn token_for(server: &Server, user: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    server.app.auth.mint(user, &[ADMIN_SCOPE], now).token
}

/// One request on a fresh connection (`Connection: close`), read to the end, signed in as
/// `user` (`Authorization: Bearer <a token for user>`) when given.
async fn call(server: &Server, method: &str, path: &str, user: Option<&str>, body: Option<&[u8]>) -> Answer {
    let authorization = user.map(|u| format!("Bearer {}", token_for(server, u)));
    let mut headers = vec![("Host".to_owned(), server.addr.to_string())];
    headers.extend(authorization.map(|a| ("Authorization".to_owned(), a)));
    raw_call(server, method, path, &headers, body).await
}

/// One request with exactly these headers (and `Connection`, `User-Agent`, and for a body
/// `Content-Type` and `Content-Length`).
async fn raw_call(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
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

fn parse(raw: &[u8]) -> Answer {
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

fn dechunk(mut b: &[u8]) -> Vec<u8> {
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

fn id_of(server: &Server, name: &str) -> String {
    let st = server.app.backend.state();
    st.profiles
        .values()
        .find(|p| p.display_name == name)
        .map(|p| p.user_id.clone())
        .unwrap_or_else(|| panic!("no seeded user named {name}"))
}

fn outbox_files(server: &Server) -> Vec<PathBuf> {
    std::fs::read_dir(&server.outbox)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_admin_lists_users_page_by_page_and_can_search() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let first = call(&s, "GET", "/admin/users?limit=10", Some(&admin), None).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let page = first.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    for key in ["user_id", "email", "display_name", "role", "created_at"] {
        assert!(items[0].get(key).is_some(), "missing {key} in {}", items[0]);
    }
    let cursor = page["next_cursor"].as_str().expect("a next cursor");
    let second = call(
        &s,
        "GET",
        &format!("/admin/users?limit=10&cursor={cursor}"),
        Some(&admin),
        None,
    )
    .await
    .json();
    let firsts: Vec<&str> = items.iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert!(second["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| !firsts.contains(&u["user_id"].as_str().unwrap())));

    let found = call(&s, "GET", "/admin/users?q=ana%20lima", Some(&admin), None)
        .await
        .json();
    let names: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ana Lima"]);

    // The tombstone is never listed.
    let all = call(&s, "GET", "/admin/users?limit=100", Some(&admin), None)
        .await
        .json();
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["display_name"] != "Deleted User"));
}

#[tokio::test]
async fn sending_a_message_writes_an_eml_with_the_support_reply_to() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let body =
        json!({"subject": "Über your account ✓", "body": "Hello Ana,\nplease check your billing details."});
    let answer = call(
        &s,
        "POST",
        &format!("/admin/users/{ana}/messages"),
        Some(&admin),
        Some(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let receipt = answer.json();
    assert_eq!(receipt["status"], "sent");
    let message_id = receipt["message_id"].as_str().unwrap().to_owned();
    assert!(receipt["ses_message_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(receipt["sent_at"].as_str().is_some());

    let files = outbox_files(&s);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains(&message_id));
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    let (head, _) = eml.split_once("\r\n\r\n").expect("a header block");
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert!(lines.contains(&"To: ana.lima@example.org"), "{head}");
    assert!(lines.contains(&"From: no-reply@teleperson.com"), "{head}");
    assert!(lines.contains(&"Reply-To: hello@teleperson.com"), "{head}");
    assert!(
        lines.iter().any(|l| l.starts_with("Subject: =?UTF-8?B?")),
        "{head}"
    );
    assert!(
        lines.contains(&"Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );

    // It shows up in the history, newest first.
    let history = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(history.status, 200);
    let items = history.json()["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["message_id"], message_id.as_str());
    assert_eq!(items[0]["status"], "sent");

    let listed = call(&s, "GET", "/dev/outbox", None, None).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn messaging_a_user_without_an_email_address_is_422() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let target = s.app.seeded.no_email.clone();
    let answer = call(
        &s,
        "POST",
        &format!("/admin/users/{target}/messages"),
        Some(&owner),
        Some(br#"{"body":"hi"}"#),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["code"], "no_email_address");
    assert!(outbox_files(&s).is_empty());
}

#[tokio::test]
async fn deleting_a_user_answers_200_with_counts_and_the_user_leaves_the_list() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ben = id_of(&s, "Benjamin Okafor");
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{ben}/deletion-preview"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(preview.status, 200);
    let preview = preview.json();
    assert_eq!(preview["allowed"], true);
    assert_eq!(preview["acknowledgement_required"], false);
    let expected: u64 = preview["tables"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().parse::<u64>().unwrap())
        .sum();

    let answer = call(&s, "DELETE", &format!("/admin/users/{ben}"), Some(&admin), None).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let done = answer.json();
    assert_eq!(done["status"], "completed");
    assert!(done["job_id"].as_str().is_some());
    let deleted = done["deleted"].as_object().unwrap();
    for t in domain::cascade::CASCADE_PLAN {
        assert!(deleted.contains_key(t.name), "no count for {}", t.name);
    }
    assert_eq!(
        deleted.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        expected
    );
    assert!(expected > 0);

    let list = call(&s, "GET", "/admin/users?limit=100", Some(&admin), None)
        .await
        .json();
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["user_id"] != ben.as_str()));
    let status = call(
        &s,
        "GET",
        &format!("/admin/users/{ben}/deletion"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["status"], "completed");
    assert!(!s.app.backend.state().auth_users.contains_key(&ben));
}

#[tokio::test]
async fn an_admin_deleting_an_admin_is_403_and_nothing_changes() {
    let s = start().await;
    let (marcus, priya) = (s.app.seeded.admins[0].clone(), s.app.seeded.admins[1].clone());
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{priya}/deletion-preview"),
        Some(&marcus),
        None,
    )
    .await
    .json();
    assert_eq!(preview["allowed"], false);
    assert_eq!(preview["denied_code"], "privileged_target");

    let answer = call(
        &s,
        "DELETE",
        &format!("/admin/users/{priya}"),
        Some(&marcus),
        Some(br#"{"acknowledge_privileged":true}"#),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    let problem = answer.json();
    assert_eq!(problem["code"], "privileged_target");
    assert_eq!(problem["status"], 403);
    for key in ["type", "title", "detail"] {
        assert!(problem[key].is_string(), "missing {key}: {problem}");
    }
    let st = s.app.backend.state();
    assert!(!st.profiles[&priya].is_tombstone());
    assert!(st.jobs.is_empty());
    assert!(st
        .security_logs
        .values()
        .any(|e| e.event_type == domain::model::EventType::AdminActionDenied));
}

#[tokio::test]
async fn an_owner_deletes_an_admin_only_with_the_acknowledgement() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let priya = s.app.seeded.admins[1].clone();
    let preview = call(
        &s,
        "GET",
        &format!("/admin/users/{priya}/deletion-preview"),
        Some(&owner),
        None,
    )
    .await
    .json();
    assert_eq!(preview["allowed"], true);
    assert_eq!(preview["acknowledgement_required"], true);

    let refused = call(&s, "DELETE", &format!("/admin/users/{priya}"), Some(&owner), None).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["code"], "acknowledgement_required");

    let done = call(
        &s,
        "DELETE",
        &format!("/admin/users/{priya}"),
        Some(&owner),
        Some(br#"{"acknowledge_privileged":true}"#),
    )
    .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    // The deleted admin loses access at once.
    let after = call(&s, "GET", "/admin/users", Some(&priya), None).await;
    assert_eq!(after.status, 401);
}

/// Headers: the right Host, and this Authorization value.
fn with_authorization(s: &Server, value: &str) -> Vec<(String, String)> {
    vec![
        ("Host".to_owned(), s.addr.to_string()),
        ("Authorization".to_owned(), value.to_owned()),
    ]
}

#[tokio::test]
async fn a_request_without_a_valid_bearer_token_gets_api_gateways_401_and_reaches_no_function() {
    let s = start().await;
    let ana = id_of(&s, "Ana Lima");
    let owner = s.app.seeded.owner.clone();
    let now = chrono::Utc::now().timestamp();
    let good = token_for(&s, &owner);
    let expired = s.app.auth.mint(&owner, &[ADMIN_SCOPE], now - 7200).token;
    let other_server = start().await;
    let foreign = token_for(&other_server, &owner);
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{}x.{}", parts[0], parts[1], parts[2])
    };
    let before = s.app.backend.snapshot();
    for (method, path, body) in [
        ("GET", "/admin/users".to_owned(), None),
        (
            "POST",
            format!("/admin/users/{ana}/messages"),
            Some(br#"{"body":"hi"}"#.as_slice()),
        ),
        ("GET", format!("/admin/users/{ana}/messages"), None),
        ("DELETE", format!("/admin/users/{ana}"), None),
        ("GET", format!("/admin/users/{ana}/deletion"), None),
        ("GET", format!("/admin/users/{ana}/deletion-preview"), None),
    ] {
        let missing = raw_call(
            &s,
            method,
            &path,
            &[("Host".to_owned(), s.addr.to_string())],
            body,
        )
        .await;
        let mut answers = vec![("missing", missing)];
        for (what, value) in [
            ("no scheme", good.clone()),
            ("basic", "Basic YWRtaW46YWRtaW4=".to_owned()),
            ("garbage", "Bearer not-a-token".to_owned()),
            ("expired", format!("Bearer {expired}")),
            ("another server's", format!("Bearer {foreign}")),
            ("tampered", format!("Bearer {tampered}")),
        ] {
            answers.push((
                what,
                raw_call(&s, method, &path, &with_authorization(&s, &value), body).await,
            ));
        }
        for (what, answer) in answers {
            assert_eq!(answer.status, 401, "{what}: {method} {path}");
            assert_eq!(
                answer.json(),
                json!({"message": "Unauthorized"}),
                "{what}: {method} {path}"
            );
            assert_eq!(answer.header("content-type"), Some("application/json"), "{what}");
            assert!(
                answer
                    .header("www-authenticate")
                    .is_some_and(|c| c.starts_with("Bearer")),
                "{what}: a Bearer challenge"
            );
        }
    }
    // Nothing reached a function: no mail, no audit row, no change.
    assert!(outbox_files(&s).is_empty());
    let after = s.app.backend.snapshot();
    assert_eq!(after.profiles, before.profiles);
    assert_eq!(after.messages, before.messages);
    assert_eq!(
        after.security_logs, before.security_logs,
        "not even a denial was audited"
    );
    assert_eq!(after.jobs, before.jobs);
    assert_eq!(after.sent_mail, before.sent_mail);
}

#[tokio::test]
async fn a_token_without_the_admin_scope_is_403_forbidden_and_a_sub_without_a_profile_is_401_unauthenticated()
{
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let now = chrono::Utc::now().timestamp();
    let unscoped = s.app.auth.mint(&owner, &["openid", "profile"], now).token;
    let answer = raw_call(
        &s,
        "GET",
        "/admin/users",
        &with_authorization(&s, &format!("Bearer {unscoped}")),
        None,
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json(), json!({"message": "Forbidden"}));
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"admin/users\"")
    );
    // A valid token whose sub has no profile reaches the function, which refuses it.
    let stranger = call(&s, "GET", "/admin/users", Some("no-such-user"), None).await;
    assert_eq!(stranger.status, 401);
    assert_eq!(stranger.header("content-type"), Some("application/problem+json"));
    assert_eq!(stranger.json()["code"], "unauthenticated");
}

#[tokio::test]
async fn the_identities_route_hands_out_working_tokens_with_the_authorizers_claims() {
    let s = start().await;
    let answer = call(&s, "GET", "/dev/identities", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let ids = answer.json();
    let owner = &ids["items"][0];
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner["token_type"], "Bearer");
    let token = owner["access_token"].as_str().expect("an access token");
    let now = chrono::Utc::now().timestamp();
    let expires_at = owner["expires_at"].as_i64().unwrap();
    assert!(
        (now + 3500..=now + 3700).contains(&expires_at),
        "valid about an hour"
    );
    // The claims (a JWT's middle part), as a Cognito access token has them.
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], owner["user_id"]);
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["client_id"], DEV_CLIENT_ID);
    assert_eq!(claims["iss"], DEV_ISSUER);
    assert_eq!(claims["scope"], ADMIN_SCOPE);
    assert!(
        (now - 5..=now + 5).contains(&claims["iat"].as_i64().unwrap()),
        "a real iat"
    );
    assert_eq!(claims["exp"].as_i64(), Some(expires_at));
    let listed = raw_call(
        &s,
        "GET",
        "/admin/users",
        &with_authorization(&s, &format!("Bearer {token}")),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", String::from_utf8_lossy(&listed.body));
    // Every identity gets a token of its own.
    let tokens: std::collections::BTreeSet<&str> = ids["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["access_token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), ids["items"].as_array().unwrap().len());
}

#[tokio::test]
async fn a_request_addressed_to_another_host_is_refused_with_421_host_not_allowed() {
    let s = start().await;
    let port = s.addr.port();
    let owner = s.app.seeded.owner.clone();
    let bearer = format!("Bearer {}", token_for(&s, &owner));
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}.evil.example"),
    ] {
        for path in ["/", "/dev/identities", "/admin/users", "/openapi.yaml", "/nope"] {
            let headers = vec![
                ("Host".to_owned(), host.clone()),
                ("Authorization".to_owned(), bearer.clone()),
            ];
            let answer = raw_call(&s, "GET", path, &headers, None).await;
            assert_eq!(answer.status, 421, "Host {host}, {path}");
            assert_eq!(answer.header("content-type"), Some("application/problem+json"));
            let problem = answer.json();
            assert_eq!(problem["code"], "host_not_allowed", "{problem}");
            assert_eq!(problem["status"], 421);
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("127.0.0.1:{port}")),
                "{problem}"
            );
            assert!(
                !answer.body.windows(4).any(|w| w == b"evil"),
                "the Host is not echoed"
            );
            assert!(!String::from_utf8_lossy(&answer.body).contains("access_token"));
        }
    }
    // No Host at all, two of them, or an absolute target naming another host.
    for headers in [
        vec![],
        vec![
            ("Host".to_owned(), s.addr.to_string()),
            ("Host".to_owned(), s.addr.to_string()),
        ],
    ] {
        assert_eq!(
            raw_call(&s, "GET", "/dev/identities", &headers, None)
                .await
                .status,
            421
        );
    }
    let absolute = raw_call(
        &s,
        "GET",
        "http://evil.example/dev/identities",
        &[("Host".to_owned(), s.addr.to_string())],
        None,
    )
    .await;
    assert_eq!(absolute.status, 421);
    // The server's own names are answered.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw_call(
            &s,
            "GET",
            "/dev/identities",
            &[("Host".to_owned(), host.clone())],
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{host}");
    }
}

#[tokio::test]
async fn a_cursor_that_is_not_a_next_cursor_is_400_invalid_cursor() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    for path in [
        "/admin/users?cursor=not%20a%20cursor".to_owned(),
        "/admin/users?cursor=eyJ1c2VyX2lkIjoidSJ9%3D".to_owned(),
        format!("/admin/users/{ana}/messages?cursor=abc"),
        format!("/admin/users/{ana}/messages?cursor=a~b~c"),
    ] {
        let answer = call(&s, "GET", &path, Some(&admin), None).await;
        assert_eq!(
            answer.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.json()["code"], "invalid_cursor", "{path}");
    }
    // The next_cursor of a page is a cursor, on both lists.
    let page = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages?limit=1"),
        Some(&admin),
        None,
    )
    .await
    .json();
    let cursor = page["next_cursor"].as_str().expect("Ana has two messages");
    let next = call(
        &s,
        "GET",
        &format!("/admin/users/{ana}/messages?limit=1&cursor={cursor}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(next.status, 200);
    assert_ne!(
        next.json()["items"][0]["message_id"],
        page["items"][0]["message_id"]
    );
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_visible_ascii_reaches_the_function_and_is_refused() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let body = br#"{"body":"hi"}"#;
    let mut head = format!(
        "POST /admin/users/{ana}/messages HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        s.addr,
        token_for(&s, &admin),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(b"Idempotency-Key: caf\xc3\xa9\r\n\r\n");
    head.extend_from_slice(body);
    stream.write_all(&head).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let answer = parse(&raw);
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["code"], "invalid_body");
    assert!(outbox_files(&s).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let path = format!("/admin/users/{ana}/messages");
    // Just over the functions' limit: the function itself answers.
    let big = json!({ "body": "x".repeat(70 * 1024) }).to_string();
    let answer = call(&s, "POST", &path, Some(&admin), Some(big.as_bytes())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "payload_too_large");
    // Far over it: the dev server refuses it before the function, with the same answer.
    let huge = json!({ "body": "x".repeat(1024 * 1024) }).to_string();
    let answer = call(&s, "POST", &path, Some(&admin), Some(huge.as_bytes())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "payload_too_large");
    assert!(outbox_files(&s).is_empty());
}

#[tokio::test]
async fn with_a_zero_budget_a_deletion_answers_202_and_the_worker_finishes_it() {
    let s = start_with(|c| {
        c.delete_budget = Duration::ZERO;
        c.worker_interval = Duration::from_millis(20);
    })
    .await;
    let owner = s.app.seeded.owner.clone();
    let heavy = s.app.seeded.heavy.clone();
    let answer = call(&s, "DELETE", &format!("/admin/users/{heavy}"), Some(&owner), None).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let accepted = answer.json();
    assert_eq!(accepted["status"], "in_progress");
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();

    let mut last = Value::Null;
    for _ in 0..2_000 {
        last = call(
            &s,
            "GET",
            &format!("/admin/users/{heavy}/deletion"),
            Some(&owner),
            None,
        )
        .await
        .json();
        if last["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["job_id"], job_id.as_str());
    assert_eq!(last["user_id"], heavy.as_str());
    assert!(
        last["deleted"]["transactions"].as_u64().unwrap() > 10_000,
        "{last}"
    );
}

#[tokio::test]
async fn unknown_api_routes_get_api_gateways_404_and_the_page_is_served() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let answer = call(&s, "GET", "/admin/nope", Some(&admin), None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json(), json!({"message": "Not Found"}));
    // Another method on an API path: the owning function's 405, behind the authorizer.
    let ana = id_of(&s, "Ana Lima");
    for (method, path, allow) in [
        ("PUT", "/admin/users".to_owned(), "GET"),
        ("TRACE", "/admin/users".to_owned(), "GET"),
        ("PATCH", format!("/admin/users/{ana}"), "DELETE"),
        ("DELETE", format!("/admin/users/{ana}/messages"), "GET, POST"),
        ("POST", format!("/admin/users/{ana}/deletion"), "GET"),
        ("PUT", format!("/admin/users/{ana}/deletion-preview"), "GET"),
    ] {
        let answer = call(&s, method, &path, Some(&admin), None).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.json()["code"], "method_not_allowed", "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(
            call(&s, method, &path, None, None).await.status,
            401,
            "{method} {path}"
        );
    }

    let page = call(&s, "GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<title>Users"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let ids = call(&s, "GET", "/dev/identities", None, None).await.json();
    let roles: Vec<&str> = ids["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(&roles[..3], ["owner", "admin", "admin"]);
}

/// `POST /dev/ses-events` with this body.
async fn ses_event(s: &Server, message_id: &str, event: &str) -> Answer {
    let body = json!({ "message_id": message_id, "event": event }).to_string();
    call(s, "POST", "/dev/ses-events", None, Some(body.as_bytes())).await
}

async fn send(s: &Server, as_user: &str, to: &str, body: Value) -> Answer {
    call(
        s,
        "POST",
        &format!("/admin/users/{to}/messages"),
        Some(as_user),
        Some(body.to_string().as_bytes()),
    )
    .await
}

async fn history(s: &Server, as_user: &str, of: &str) -> Vec<Value> {
    let answer = call(
        s,
        "GET",
        &format!("/admin/users/{of}/messages"),
        Some(as_user),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_simulated_hard_bounce_blocks_the_next_send_until_it_is_sent_anyway() {
    let s = start().await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let first = send(&s, &admin, &ana, json!({"subject": "Hello", "body": "First"})).await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let message_id = first.json()["message_id"].as_str().unwrap().to_owned();

    let bounced = ses_event(&s, &message_id, "Bounce").await;
    assert_eq!(bounced.status, 200, "{}", String::from_utf8_lossy(&bounced.body));
    let outcome = bounced.json();
    assert_eq!(outcome["previous_status"], "sent");
    assert_eq!(outcome["status"], "bounced");
    assert_eq!(outcome["changed"], true);
    let ses_id = s.app.backend.state().messages[&message_id]
        .ses_message_id
        .clone()
        .unwrap();
    assert_eq!(outcome["ses_message_id"], ses_id.as_str());

    let items = history(&s, &admin, &ana).await;
    assert_eq!(items[0]["message_id"], message_id.as_str());
    assert_eq!(items[0]["status"], "bounced");
    assert_eq!(items[0]["updated_at"], outcome["updated_at"]);
    assert!(items[0]["updated_at"].as_str().is_some_and(|t| !t.is_empty()));

    let refused = send(&s, &admin, &ana, json!({"subject": "Hello", "body": "Second"})).await;
    assert_eq!(refused.status, 422, "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    let problem = refused.json();
    assert_eq!(problem["code"], "recipient_undeliverable");
    assert_eq!(problem["last_status"], "bounced");
    assert_eq!(outbox_files(&s).len(), 1, "nothing was sent");

    let anyway = send(
        &s,
        &admin,
        &ana,
        json!({"subject": "Hello", "body": "Second", "send_anyway": true}),
    )
    .await;
    assert_eq!(anyway.status, 201, "{}", String::from_utf8_lossy(&anyway.body));
    let second = anyway.json()["message_id"].as_str().unwrap().to_owned();
    assert_eq!(outbox_files(&s).len(), 2);
    assert!(outbox_files(&s)
        .iter()
        .any(|f| f.to_string_lossy().contains(&second)));
    let items = history(&s, &admin, &ana).await;
    assert_eq!(items[0]["message_id"], second.as_str());
    assert_eq!(items[0]["status"], "sent");
    assert_eq!(items[1]["status"], "bounced");
}

#[tokio::test]
async fn delivery_and_complaint_events_move_the_status_forward_and_never_back() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let ana = id_of(&s, "Ana Lima");
    let sent = send(&s, &owner, &ana, json!({"body": "Hi"})).await.json();
    let message_id = sent["message_id"].as_str().unwrap().to_owned();

    let delivered = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(delivered["status"], "delivered");
    // SNS delivers at least once: the same event again changes nothing.
    let again = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(again["status"], "delivered");
    assert_eq!(again["changed"], false);
    // A soft bounce changes nothing either.
    let soft = ses_event(&s, &message_id, "SoftBounce").await.json();
    assert_eq!(soft["status"], "delivered");
    assert_eq!(soft["changed"], false);

    let complained = ses_event(&s, &message_id, "Complaint").await.json();
    assert_eq!(complained["previous_status"], "delivered");
    assert_eq!(complained["status"], "complained");
    // A late Delivery does not undo the complaint.
    let late = ses_event(&s, &message_id, "Delivery").await.json();
    assert_eq!(late["status"], "complained");
    assert_eq!(history(&s, &owner, &ana).await[0]["status"], "complained");

    let refused = send(&s, &owner, &ana, json!({"body": "Hi again"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["last_status"], "complained");
}

#[tokio::test]
async fn the_dev_events_route_refuses_what_ses_could_not_report() {
    let s = start().await;
    let unknown = ses_event(&s, "no-such-message", "Bounce").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "message_not_found");

    // The seeded failed message never reached SES.
    let failed = s
        .app
        .backend
        .state()
        .messages
        .values()
        .find(|m| m.status == domain::model::MessageStatus::Failed)
        .map(|m| m.message_id.clone())
        .expect("a seeded failed message");
    let not_sent = ses_event(&s, &failed, "Delivery").await;
    assert_eq!(not_sent.status, 409);
    assert_eq!(not_sent.json()["code"], "message_not_sent");

    let sent = s
        .app
        .backend
        .state()
        .messages
        .values()
        .find(|m| m.status == domain::model::MessageStatus::Sent)
        .map(|m| m.message_id.clone())
        .expect("a seeded sent message");
    for body in [
        json!({"message_id": sent, "event": "Open"}).to_string(),
        json!({"message_id": sent}).to_string(),
        json!({"message_id": sent, "event": "Bounce", "extra": 1}).to_string(),
        "not json".to_owned(),
    ] {
        let answer = call(&s, "POST", "/dev/ses-events", None, Some(body.as_bytes())).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["code"], "invalid_body", "{body}");
    }
    assert_eq!(
        s.app.backend.state().messages[&sent].status,
        domain::model::MessageStatus::Sent
    );
}

#[tokio::test]
async fn with_simulated_delivery_a_sent_message_becomes_delivered() {
    let s = start_with(|c| c.simulate_delivery = Some(Duration::from_millis(10))).await;
    let admin = s.app.seeded.admins[0].clone();
    let ana = id_of(&s, "Ana Lima");
    let sent = send(&s, &admin, &ana, json!({"body": "Hi"})).await;
    assert_eq!(sent.status, 201);
    let message_id = sent.json()["message_id"].as_str().unwrap().to_owned();
    // Wait for the event (no time limit is asserted: only that it comes).
    let mut status = Value::Null;
    for _ in 0..2_000 {
        let items = history(&s, &admin, &ana).await;
        let item = items
            .iter()
            .find(|m| m["message_id"] == message_id.as_str())
            .cloned()
            .unwrap();
        status = item["status"].clone();
        if status == "delivered" {
            assert!(item["updated_at"].as_str().is_some());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "delivered");
}

#[tokio::test]
async fn a_user_whose_seeded_last_message_bounced_can_only_be_sent_to_anyway() {
    let s = start().await;
    let owner = s.app.seeded.owner.clone();
    let hannah = id_of(&s, "Hannah Schmidt");
    assert_eq!(history(&s, &owner, &hannah).await[0]["status"], "bounced");
    let refused = send(&s, &owner, &hannah, json!({"body": "Hi"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["code"], "recipient_undeliverable");
    let anyway = send(&s, &owner, &hannah, json!({"body": "Hi", "send_anyway": true})).await;
    assert_eq!(anyway.status, 201);
}

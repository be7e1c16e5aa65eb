//! The dev server's API Gateway edge over real HTTP: the authorizer's 401 and 403, the
//! identities route and its tokens, and the Host check.

mod common;

use common::*;
use devserver::auth::{ADMIN_SCOPE, DEV_CLIENT_ID, DEV_ISSUER};
use serde_json::json;

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
    // Not even a denial was audited.
    fixtures::assert_state_unchanged(&before, &s.app.backend.snapshot());
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

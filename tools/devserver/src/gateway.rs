//! What API Gateway (HTTP API, payload format 2.0) does in front of a Lambda function: turn an
//! HTTP request into the event JSON, let `lambda_http` parse that JSON exactly as the Lambda
//! runtime does, and turn the handler's response back into HTTP.

use axum::body::Body as AxumBody;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::auth::Verified;

/// One HTTP request, as API Gateway received it.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// For example `POST /admin/users/{userId}/messages`.
    pub route_key: &'a str,
    pub method: &'a Method,
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub path_parameters: BTreeMap<String, String>,
    pub body: &'a [u8],
    pub source_ip: IpAddr,
    pub request_id: String,
    /// What the JWT authorizer verified (`None`: the event has no `authorizer`, as for a
    /// route without one).
    pub authorizer: Option<&'a Verified>,
}

/// The API Gateway HTTP API v2 event for `req`, with the authorizer's claims and scopes in
/// `requestContext.authorizer.jwt`. Headers, the `Authorization` one included, are passed on
/// as API Gateway passes them.
pub fn event(req: &Incoming<'_>) -> Value {
    let now = chrono::Utc::now();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in req.headers {
        // A value that is not visible ASCII is passed on too (as text), for the function to
        // refuse: dropping it would turn a bad header into no header.
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = value.as_ref();
        let name = name.as_str().to_ascii_lowercase();
        match name.as_str() {
            "cookie" => cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            ),
            // Like API Gateway: repeated headers are joined with commas.
            _ => {
                headers
                    .entry(name)
                    .and_modify(|v| {
                        v.push(',');
                        v.push_str(value);
                    })
                    .or_insert_with(|| value.to_owned());
            }
        }
    }
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".to_owned());
    let (domain, port) = match host.rsplit_once(':') {
        Some((d, p)) if p.chars().all(|c| c.is_ascii_digit()) => (d.to_owned(), p.to_owned()),
        _ => (host.clone(), "80".to_owned()),
    };
    headers.insert("x-forwarded-for".into(), req.source_ip.to_string());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-port".into(), port);
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    if let Some(raw) = req.raw_query {
        let pairs: Vec<(String, String)> = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
            &format!("/?{raw}")
                .parse()
                .unwrap_or_else(|_| axum::http::Uri::from_static("/")),
        )
        .map(|q| q.0)
        .unwrap_or_default();
        for (k, v) in pairs {
            query
                .entry(k)
                .and_modify(|old| {
                    old.push(',');
                    old.push_str(&v);
                })
                .or_insert(v);
        }
    }

    let mut context = json!({
        "accountId": "000000000000",
        "apiId": "devserver",
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or("localhost"),
        "http": {
            "method": req.method.as_str(),
            "path": req.path,
            "protocol": "HTTP/1.1",
            "sourceIp": req.source_ip.to_string(),
            "userAgent": user_agent,
        },
        "requestId": req.request_id,
        "routeKey": req.route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(verified) = req.authorizer {
        context["authorizer"] = verified.authorizer_json();
    }

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(req.route_key));
    event.insert("rawPath".into(), json!(req.path));
    event.insert("rawQueryString".into(), json!(req.raw_query.unwrap_or("")));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
    }
    if !req.path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(req.path_parameters));
    }
    event.insert("requestContext".into(), context);
    if !req.body.is_empty() {
        match std::str::from_utf8(req.body) {
            Ok(text) => {
                event.insert("body".into(), json!(text));
                event.insert("isBase64Encoded".into(), json!(false));
            }
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(req.body);
                event.insert("body".into(), json!(b64));
                event.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

/// Parses the event JSON exactly as the Lambda runtime does, and attaches a Lambda context.
pub fn lambda_request(
    event_json: &str, function_name: &str,
) -> Result<lambda_http::Request, serde_json::Error> {
    use lambda_http::RequestExt as _;
    let request = lambda_http::request::from_str(event_json)?;
    let mut context = lambda_http::Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.invoked_function_arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}");
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default() + 29_000;
    Ok(request.with_lambda_context(context))
}

/// The handler's response as HTTP.
pub fn into_http(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = Response::new(AxumBody::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// API Gateway's own answers (not from a function), e.g. `{"message":"Not Found"}`.
pub fn gateway_message(status: StatusCode, message: &str) -> Response {
    let mut r = (status, axum::Json(json!({ "message": message }))).into_response();
    r.headers_mut()
        .insert("apigw-requestid", HeaderValue::from_static("devserver"));
    r
}

/// The JWT authorizer's refusal, as API Gateway answers it: `401 {"message":"Unauthorized"}`
/// or `403 {"message":"Forbidden"}`, with an RFC 6750 `WWW-Authenticate` challenge.
pub fn authorizer_refusal(refusal: crate::auth::Refusal, scope: &str) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut r = gateway_message(status, refusal.message());
    if let Ok(challenge) = HeaderValue::from_str(&refusal.challenge(scope)) {
        r.headers_mut().insert("www-authenticate", challenge);
    }
    r
}

/// A problem+json answer produced by the dev server itself (only for a body too large to
/// pass on: the functions' own limit is smaller, so normally the function answers).
pub fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://docs.teleperson.com/problems/{}", code.replace('_', "-")),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut r = Response::new(AxumBody::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authorizer, ADMIN_SCOPE, DEV_CLIENT_ID};
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt as _;

    fn incoming<'a>(
        headers: &'a HeaderMap, body: &'a [u8], method: &'a Method, authorizer: Option<&'a Verified>,
    ) -> Incoming<'a> {
        Incoming {
            authorizer,
            route_key: "POST /admin/users/{userId}/messages",
            method,
            path: "/admin/users/u-1/messages",
            raw_query: Some("q=ana%20l&limit=5"),
            headers,
            path_parameters: BTreeMap::from([("userId".to_owned(), "u-1".to_owned())]),
            body,
            source_ip: "127.0.0.1".parse().unwrap(),
            request_id: "req-1".into(),
        }
    }

    #[test]
    fn the_verified_claims_and_scopes_go_into_the_event_as_api_gateway_puts_them() {
        let auth = Authorizer::new().unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = auth.mint("admin-1", &[ADMIN_SCOPE], now);
        let header = format!("Bearer {}", token.token);
        let verified = auth
            .verify(std::iter::once(header.as_bytes()), ADMIN_SCOPE, now)
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&header).unwrap());
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let method = Method::POST;
        let ev = event(&incoming(&headers, br#"{"body":"hi"}"#, &method, Some(&verified)));
        assert_eq!(
            ev["requestContext"]["authorizer"]["jwt"]["claims"]["iat"],
            json!(now.to_string())
        );
        let req = lambda_request(&ev.to_string(), "message-user").unwrap();
        assert_eq!(req.method(), Method::POST);
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("not an HTTP API v2 request")
        };
        let jwt = ctx.authorizer.as_ref().unwrap().jwt.as_ref().unwrap();
        let claims = &jwt.claims;
        assert_eq!(claims.get("sub").map(String::as_str), Some("admin-1"));
        assert_eq!(claims.get("token_use").map(String::as_str), Some("access"));
        assert_eq!(claims.get("client_id").map(String::as_str), Some(DEV_CLIENT_ID));
        assert_eq!(jwt.scopes.as_deref(), Some([ADMIN_SCOPE.to_owned()].as_slice()));
        assert_eq!(
            ctx.route_key.as_deref(),
            Some("POST /admin/users/{userId}/messages")
        );
        assert_eq!(
            req.path_parameters_ref().and_then(|p| p.first("userId")),
            Some("u-1")
        );
        assert_eq!(
            req.query_string_parameters_ref().and_then(|q| q.first("q")),
            Some("ana l")
        );
        assert_eq!(req.body().as_ref(), br#"{"body":"hi"}"#);
        assert!(req.lambda_context_ref().is_some());
    }

    #[test]
    fn without_an_authorizer_there_are_no_claims() {
        let headers = HeaderMap::new();
        let method = Method::POST;
        let ev = event(&incoming(&headers, b"", &method, None));
        let req = lambda_request(&ev.to_string(), "message-user").unwrap();
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("not an HTTP API v2 request")
        };
        assert!(ctx.authorizer.is_none());
    }

    #[test]
    fn a_binary_body_travels_base64_encoded() {
        let headers = HeaderMap::new();
        let method = Method::POST;
        let raw = [0xff_u8, 0xfe, 0x00, 0x41];
        let ev = event(&incoming(&headers, &raw, &method, None));
        assert_eq!(ev["isBase64Encoded"], json!(true));
        let req = lambda_request(&ev.to_string(), "message-user").unwrap();
        assert_eq!(req.body().as_ref(), &raw);
    }
}

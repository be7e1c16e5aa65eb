//! Real API Gateway HTTP API events (payload format 2.0), built in code.
//!
//! Handler tests turn them into requests through `lambda_http`'s own parsing
//! ([`ApiEvent::into_request`] calls `lambda_http::request::from_str`), so a test sees exactly
//! what a deployed function sees. The local dev server uses them the same way, and the sample
//! events kept beside each function have this shape.

use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The API id and host used in built events.
pub const API_ID: &str = "a1b2c3d4e5";
pub const DOMAIN_NAME: &str = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";
pub const SOURCE_IP: &str = "203.0.113.10";
pub const USER_AGENT: &str = "Mozilla/5.0 (admin dashboard)";
pub const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example";
/// The app client of the events [`ApiEvent::caller`] builds (and of the sample events kept
/// beside the functions).
pub const CLIENT_ID: &str = "3n4b5urk1ft4fl3mg5e62d9ado";

/// A payload 2.0 event under construction.
#[derive(Debug, Clone)]
pub struct ApiEvent {
    method: String,
    route: String,
    path_params: BTreeMap<String, String>,
    send_path_params: bool,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    claims: Option<BTreeMap<String, String>>,
    body: Option<String>,
    base64: bool,
    stage: String,
    request_id: Option<String>,
    source_ip: String,
    context_user_agent: Option<String>,
}

impl ApiEvent {
    /// `route` is the route's path as configured, e.g. `/admin/users/{userId}/messages`.
    pub fn new(method: &str, route: &str) -> ApiEvent {
        let headers = BTreeMap::from([
            ("accept".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), DOMAIN_NAME.to_owned()),
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
            ("x-forwarded-for".to_owned(), SOURCE_IP.to_owned()),
            ("x-forwarded-port".to_owned(), "443".to_owned()),
            ("x-forwarded-proto".to_owned(), "https".to_owned()),
        ]);
        ApiEvent {
            method: method.to_ascii_uppercase(),
            route: route.to_owned(),
            path_params: BTreeMap::new(),
            send_path_params: true,
            query: Vec::new(),
            headers,
            claims: None,
            body: None,
            base64: false,
            stage: "$default".to_owned(),
            request_id: None,
            source_ip: SOURCE_IP.to_owned(),
            context_user_agent: Some(USER_AGENT.to_owned()),
        }
    }

    /// Fills `{name}` in the route and sets the path parameter.
    pub fn path_param(mut self, name: &str, value: &str) -> ApiEvent {
        self.path_params.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Leaves `pathParameters` out of the event (the user id is then read from the raw path).
    pub fn without_path_parameters(mut self) -> ApiEvent {
        self.send_path_params = false;
        self
    }

    /// A JWT authorizer with a Cognito access token's claims for this `sub`, of the app
    /// client [`CLIENT_ID`].
    pub fn caller(self, sub: &str) -> ApiEvent {
        let claims = BTreeMap::from([
            ("sub".to_owned(), sub.to_owned()),
            ("iss".to_owned(), ISSUER.to_owned()),
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            ("token_use".to_owned(), "access".to_owned()),
            ("scope".to_owned(), "openid email".to_owned()),
            ("auth_time".to_owned(), "1764064800".to_owned()),
            ("iat".to_owned(), "1764064800".to_owned()),
            ("exp".to_owned(), "1764068400".to_owned()),
            ("username".to_owned(), sub.to_owned()),
        ]);
        self.claims(claims)
    }

    /// One claim set (or replaced) on top of the others; call after [`Self::caller`].
    pub fn claim(mut self, name: &str, value: &str) -> ApiEvent {
        self.claims
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// Exactly these JWT claims.
    pub fn claims(mut self, claims: BTreeMap<String, String>) -> ApiEvent {
        self.claims = Some(claims);
        self
    }

    /// A header (names are lower-cased, as API Gateway sends them).
    pub fn header(mut self, name: &str, value: &str) -> ApiEvent {
        self.headers.insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> ApiEvent {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A raw text body, sent as is (no content type added).
    pub fn body(mut self, body: &str) -> ApiEvent {
        self.body = Some(body.to_owned());
        self.base64 = false;
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, body: &Value) -> ApiEvent {
        self.header("content-type", "application/json")
            .body(&body.to_string())
    }

    /// A body API Gateway base64-encoded (`isBase64Encoded: true`).
    pub fn base64_body(mut self, bytes: &[u8]) -> ApiEvent {
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.base64 = true;
        self
    }

    /// A named stage: it prefixes the raw path, like API Gateway does.
    pub fn stage(mut self, stage: &str) -> ApiEvent {
        self.stage = stage.to_owned();
        self
    }

    pub fn request_id(mut self, id: &str) -> ApiEvent {
        self.request_id = Some(id.to_owned());
        self
    }

    pub fn source_ip(mut self, ip: &str) -> ApiEvent {
        self.source_ip = ip.to_owned();
        self.headers.insert("x-forwarded-for".to_owned(), ip.to_owned());
        self
    }

    /// `requestContext.http.userAgent` (`None` leaves it out).
    pub fn context_user_agent(mut self, ua: Option<&str>) -> ApiEvent {
        self.context_user_agent = ua.map(str::to_owned);
        self
    }

    fn raw_path(&self) -> String {
        let mut path = self.route.clone();
        for (name, value) in &self.path_params {
            path = path.replace(&format!("{{{name}}}"), &encode_segment(value));
        }
        if self.stage != "$default" {
            path = format!("/{}{path}", self.stage);
        }
        path
    }

    fn raw_query(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The event as API Gateway sends it to the function.
    pub fn to_value(&self) -> Value {
        let raw_path = self.raw_path();
        let route_key = format!("{} {}", self.method, self.route);
        let request_id = self
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut http = Map::new();
        http.insert("method".into(), json!(self.method));
        http.insert("path".into(), json!(raw_path));
        http.insert("protocol".into(), json!("HTTP/1.1"));
        http.insert("sourceIp".into(), json!(self.source_ip));
        if let Some(ua) = &self.context_user_agent {
            http.insert("userAgent".into(), json!(ua));
        }
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": DOMAIN_NAME,
            "domainPrefix": API_ID,
            "http": http,
            "requestId": request_id,
            "routeKey": route_key,
            "stage": self.stage,
            "time": "25/Nov/2025:11:00:00 +0000",
            "timeEpoch": 1_764_068_400_000_u64,
        });
        if let Some(claims) = &self.claims {
            context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": raw_path,
            "rawQueryString": self.raw_query(),
            "headers": self.headers,
            "requestContext": context,
            "isBase64Encoded": self.base64,
        });
        if !self.query.is_empty() {
            let mut params = Map::new();
            for (k, v) in &self.query {
                // API Gateway joins repeated parameters with commas.
                let joined = match params.get(k).and_then(Value::as_str) {
                    Some(prev) => format!("{prev},{v}"),
                    None => v.clone(),
                };
                params.insert(k.clone(), json!(joined));
            }
            event["queryStringParameters"] = Value::Object(params);
        }
        if self.send_path_params && !self.path_params.is_empty() {
            event["pathParameters"] = json!(self.path_params);
        }
        if let Some(body) = &self.body {
            event["body"] = json!(body);
        }
        event
    }

    /// The event as pretty JSON (for the sample files).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    /// Through `lambda_http`'s own parsing, as the runtime does.
    pub fn into_request(self) -> Result<lambda_http::Request, serde_json::Error> {
        lambda_http::request::from_str(&self.to_value().to_string())
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    #[test]
    fn a_built_event_parses_as_an_http_api_v2_request() {
        let req = ApiEvent::new("POST", "/admin/users/{userId}/messages")
            .path_param("userId", "user-1")
            .caller("admin-1")
            .query("limit", "5")
            .json(&json!({"body": "hi"}))
            .into_request()
            .unwrap();
        assert_eq!(req.method(), "POST");
        assert_eq!(req.raw_http_path(), "/admin/users/user-1/messages");
        assert_eq!(
            req.path_parameters_ref().and_then(|p| p.first("userId")),
            Some("user-1")
        );
        assert_eq!(
            req.query_string_parameters_ref().and_then(|q| q.first("limit")),
            Some("5")
        );
        assert!(matches!(
            req.request_context_ref(),
            Some(lambda_http::request::RequestContext::ApiGatewayV2(_))
        ));
        assert_eq!(req.headers()["content-type"], "application/json");
    }

    #[test]
    fn path_values_are_percent_encoded_in_the_raw_path() {
        let e = ApiEvent::new("GET", "/admin/users/{userId}").path_param("userId", "a b/c");
        assert_eq!(e.to_value()["rawPath"], "/admin/users/a%20b%2Fc");
        assert_eq!(e.to_value()["pathParameters"]["userId"], "a b/c");
    }
}

//! Reading an API Gateway HTTP API (payload 2.0) request: who asks, about whom, which page.

use crate::errors::parse_error;
use crate::problem::{code, Problem};
use domain::cursor::CursorError;
use domain::model::RequestMeta;
use domain::types::UserId;
use lambda_http::http::header::{HeaderName, USER_AGENT};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::str::FromStr;

/// Longest user agent kept in an audit row; longer ones are cut (on a character boundary).
pub const MAX_USER_AGENT: usize = 512;

/// What the functions require of a token beyond API Gateway's JWT authorizer (which checks
/// its signature, issuer, expiry, audience and the route's scope): an access token
/// (`token_use`), of the dashboard's app client (`client_id`). Should a route ever lose its
/// scope, an ID token or a token of another app client still speaks for nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// `APP_CLIENT_ID`: the admin dashboard's Cognito app client.
    pub app_client_id: String,
}

impl TokenRules {
    pub fn new(app_client_id: impl Into<String>) -> Self {
        TokenRules {
            app_client_id: app_client_id.into(),
        }
    }
}

/// Who asked, from where: the `sub` claim of the JWT authorizer (when the token is an access
/// token of the app client `rules` names; else no caller, so the request is `401
/// unauthenticated`), the token's `iat`, API Gateway's request id, the source IP and the user
/// agent.
pub fn meta(req: &Request, rules: &TokenRules) -> RequestMeta {
    let http = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => Some(ctx),
        _ => None,
    };
    let claims = http
        .and_then(|ctx| ctx.authorizer.as_ref())
        .and_then(|a| a.jwt.as_ref())
        .map(|jwt| &jwt.claims);
    let claim = |name: &str| {
        claims
            .and_then(|c| c.get(name))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    };
    let sub = claim("sub").map(str::to_owned);
    let token_use = claim("token_use");
    let client_ok = claim("client_id") == Some(rules.app_client_id.as_str());
    let caller = match sub {
        Some(_) if token_use != Some("access") || !client_ok => {
            // Ids only: the claim's value, never the token.
            tracing::warn!(
                token_use,
                client_matches = client_ok,
                "a token that is not an access token of the dashboard's app client: no caller"
            );
            None
        }
        other => other,
    };
    let token_issued_at = claim("iat").and_then(|iat| iat.parse::<i64>().ok());
    let request_id = http
        .and_then(|ctx| ctx.request_id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.lambda_context_ref()
                .map(|c| c.request_id.clone())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let source_ip = http
        .and_then(|ctx| ctx.http.source_ip.clone())
        .filter(|ip| !ip.is_empty());
    let user_agent = http
        .and_then(|ctx| ctx.http.user_agent.clone())
        .filter(|ua| !ua.is_empty())
        .or_else(|| header(req, USER_AGENT.as_str()).map(str::to_owned))
        .map(|ua| truncate(ua, MAX_USER_AGENT));
    RequestMeta {
        caller,
        request_id,
        source_ip,
        user_agent,
        token_issued_at,
    }
}

/// The target id to record in an audit row: the path's user id when it is valid, else `-`
/// (a malformed id is never written to the audit table).
pub fn audit_target(req: &Request) -> String {
    user_id(req).map_or_else(|_| "-".to_owned(), |u| u.as_str().to_owned())
}

/// One header as text (`None` when absent or not visible ASCII).
pub fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The path segments after `/admin/users` (percent-decoded), wherever the route sits (a named
/// stage puts `/<stage>` in front of it). `None` when the path is not under `/admin/users`.
pub fn admin_users_tail(req: &Request) -> Option<Vec<String>> {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.windows(2).position(|w| w == ["admin", "users"])?;
    Some(segments[at + 2..].iter().map(|s| percent_decode(s)).collect())
}

/// The `userId` path parameter (API Gateway's, else the segment after `/admin/users/` of the
/// raw path), parsed; `400 invalid_user_id` when missing or malformed.
pub fn user_id(req: &Request) -> Result<UserId, Problem> {
    let from_params = req
        .path_parameters_ref()
        .and_then(|p| p.first("userId"))
        .map(str::to_owned);
    let raw = from_params.or_else(|| admin_users_tail(req).and_then(|tail| tail.into_iter().next()));
    let Some(raw) = raw else {
        return Err(Problem::new(
            lambda_http::http::StatusCode::BAD_REQUEST,
            code::INVALID_USER_ID,
            "The path has no user id.",
        ));
    };
    UserId::parse(&raw).map_err(|e| parse_error(code::INVALID_USER_ID, "The user id", &e))
}

/// One query-string parameter.
pub fn query<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// `?limit=&cursor=`: `limit`, when given, is a whole number 1..=`max` in decimal digits
/// (default `default`; anything else, an empty value too, is `400 invalid_body`); `cursor`,
/// when given, is the `next_cursor` of the previous page, parsed into the listing's cursor type
/// `C` ([`domain::cursor`]); anything else, an empty value too, is `400 invalid_cursor`.
pub fn page<C>(req: &Request, default: usize, max: usize) -> Result<(usize, Option<C>), Problem>
where
    C: FromStr<Err = CursorError>,
{
    let limit = match query(req, "limit") {
        None => default,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(Problem::invalid_body(format!(
                    "limit must be a whole number from 1 to {max}."
                )))
            }
        },
    };
    let cursor = match query(req, "cursor") {
        None => None,
        Some(text) => Some(text.parse::<C>().map_err(|e| {
            Problem::new(
                lambda_http::http::StatusCode::BAD_REQUEST,
                code::INVALID_CURSOR,
                format!("cursor {e}: pass back the next_cursor of the previous page unchanged."),
            )
        })?),
    };
    Ok((limit, cursor))
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `%XX` decoding of one path segment; invalid escapes and non-UTF-8 results stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ApiEvent;
    use domain::cursor::{MessageCursor, UserCursor};

    fn rules() -> TokenRules {
        TokenRules::new(crate::event::CLIENT_ID)
    }

    #[test]
    fn the_caller_is_the_sub_claim_of_the_jwt_authorizer() {
        let req = ApiEvent::new("GET", "/admin/users")
            .caller("admin-1")
            .into_request()
            .unwrap();
        let m = meta(&req, &rules());
        assert_eq!(m.token_issued_at, Some(1_764_064_800));
        assert_eq!(m.caller.as_deref(), Some("admin-1"));
        assert_eq!(m.source_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(m.user_agent.as_deref(), Some("Mozilla/5.0 (admin dashboard)"));
        assert!(!m.request_id.is_empty());
    }

    #[test]
    fn a_request_without_claims_has_no_caller() {
        let req = ApiEvent::new("GET", "/admin/users").into_request().unwrap();
        let m = meta(&req, &rules());
        assert_eq!(m.caller, None);
    }

    #[test]
    fn an_id_token_or_a_token_of_another_app_client_speaks_for_nobody() {
        for (claim, value) in [
            ("token_use", "id"),
            ("token_use", ""),
            ("client_id", "another-app-client"),
            ("client_id", ""),
        ] {
            let req = ApiEvent::new("GET", "/admin/users")
                .caller("admin-1")
                .claim(claim, value)
                .into_request()
                .unwrap();
            assert_eq!(meta(&req, &rules()).caller, None, "{claim}={value:?}");
        }
        let req = ApiEvent::new("GET", "/admin/users")
            .caller("admin-1")
            .into_request()
            .unwrap();
        assert_eq!(meta(&req, &TokenRules::new("another")).caller, None);
    }

    #[test]
    fn a_blank_sub_is_no_caller() {
        let req = ApiEvent::new("GET", "/admin/users")
            .caller("  ")
            .into_request()
            .unwrap();
        assert_eq!(meta(&req, &rules()).caller, None);
    }

    #[test]
    fn the_user_agent_falls_back_to_the_header_and_is_bounded() {
        let long = "x".repeat(2000);
        let req = ApiEvent::new("GET", "/admin/users")
            .caller("a")
            .context_user_agent(None)
            .header("User-Agent", &long)
            .into_request()
            .unwrap();
        assert_eq!(
            meta(&req, &rules()).user_agent.map(|u| u.len()),
            Some(MAX_USER_AGENT)
        );
    }

    #[test]
    fn the_user_id_comes_from_the_path_parameter_or_the_raw_path() {
        let req = ApiEvent::new("DELETE", "/admin/users/{userId}")
            .path_param("userId", "user-1")
            .into_request()
            .unwrap();
        assert_eq!(user_id(&req).unwrap().as_str(), "user-1");

        let req = ApiEvent::new("DELETE", "/admin/users/{userId}")
            .path_param("userId", "user:2")
            .without_path_parameters()
            .into_request()
            .unwrap();
        assert_eq!(user_id(&req).unwrap().as_str(), "user:2");
    }

    #[test]
    fn a_missing_or_malformed_user_id_is_invalid_user_id() {
        let req = ApiEvent::new("GET", "/admin/users").into_request().unwrap();
        assert_eq!(user_id(&req).unwrap_err().code, "invalid_user_id");
        let req = ApiEvent::new("GET", "/admin/users/{userId}")
            .path_param("userId", "a b")
            .into_request()
            .unwrap();
        assert_eq!(user_id(&req).unwrap_err().code, "invalid_user_id");
    }

    #[test]
    fn the_route_is_found_behind_a_stage_prefix() {
        let req = ApiEvent::new("GET", "/admin/users/{userId}/deletion")
            .path_param("userId", "u1")
            .stage("prod")
            .into_request()
            .unwrap();
        assert_eq!(
            admin_users_tail(&req).unwrap(),
            vec!["u1".to_owned(), "deletion".to_owned()]
        );
    }

    #[test]
    fn page_parameters_are_bounded() {
        let req = ApiEvent::new("GET", "/admin/users")
            .query("limit", "5")
            .query("cursor", "abc")
            .into_request()
            .unwrap();
        assert_eq!(
            page::<UserCursor>(&req, 20, 100).unwrap(),
            (5, Some(UserCursor::parse("abc").unwrap()))
        );
        let req = ApiEvent::new("GET", "/admin/users").into_request().unwrap();
        assert_eq!(page::<UserCursor>(&req, 20, 100).unwrap(), (20, None));
        for bad in ["0", "101", "-1", "ten", "1.5", "", " 5", "+5", "5 "] {
            let req = ApiEvent::new("GET", "/admin/users")
                .query("limit", bad)
                .into_request()
                .unwrap();
            assert_eq!(
                page::<UserCursor>(&req, 20, 100).unwrap_err().code,
                "invalid_body",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cursor_is_parsed_into_the_listings_type_and_anything_else_is_invalid_cursor() {
        let with = |c: &str| {
            ApiEvent::new("GET", "/admin/users")
                .query("cursor", c)
                .into_request()
                .unwrap()
        };
        let (_, c) = page::<MessageCursor>(&with("2026-01-01T00:00:00.000Z~m-1"), 20, 100).unwrap();
        assert_eq!(c.unwrap().message_id(), "m-1");
        for bad in ["not a cursor", "eyJ1c2VyX2lkIjoidSJ9", "a~b~c", "~", "é", ""] {
            let p = page::<MessageCursor>(&with(bad), 20, 100).unwrap_err();
            assert_eq!((p.status.as_u16(), p.code), (400, "invalid_cursor"), "{bad}");
        }
        let p = page::<UserCursor>(&with("u-1~m-1"), 20, 100).unwrap_err();
        assert_eq!(p.code, "invalid_cursor");
        assert!(p.detail.contains("next_cursor"), "{}", p.detail);
    }

    #[test]
    fn percent_escapes_in_path_segments_are_decoded() {
        assert_eq!(percent_decode("user%3A1"), "user:1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}

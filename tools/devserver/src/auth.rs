//! What API Gateway's JWT authorizer does in front of every API route, with access tokens of the
//! dev server's own.
//!
//! The dev server mints a token for each demo identity (`GET /dev/identities`): an HS256 JWT
//! signed with a random key made when the server starts, so a token is worth nothing to another
//! dev server, to a restarted one, or anywhere else. It carries the claims of a Cognito access
//! token that the authorizer passes on (`sub`, `iss`, `client_id`, `token_use`, `scope`,
//! `auth_time`, `iat`, `exp`, `jti`, `username`).
//!
//! Every API request needs `Authorization: Bearer <token>`. A missing, malformed, expired,
//! not-yet-valid or badly signed token, or one for another issuer or client, is answered as API
//! Gateway answers it: `401 {"message":"Unauthorized"}`. A valid token without the route's scope
//! is `403 {"message":"Forbidden"}`. Otherwise the claims go into the event as API Gateway puts
//! them there: `requestContext.authorizer.jwt.claims` (every value a string, numbers too) and
//! `requestContext.authorizer.jwt.scopes`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The app client id the dev server's tokens are issued to (their `client_id` claim), the
/// audience its authorizer accepts. A setting such as `APP_CLIENT_ID` holds this value when the
/// shared request code runs behind the dev server.
pub const DEV_CLIENT_ID: &str = "devserver-dashboard";

/// The `iss` of the dev server's tokens (it names no real user pool).
pub const DEV_ISSUER: &str = "urn:teleperson:devserver";

/// The scope every admin route requires (`AdminScope`'s default in the template).
pub const ADMIN_SCOPE: &str = "admin/users";

/// How long a minted token is valid (a Cognito access token's default lifetime).
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// How far in the future `iat` or `nbf` may be (clock skew), as authorizers allow.
const CLOCK_SKEW_SECONDS: i64 = 5;

type HmacSha256 = Hmac<Sha256>;

/// The signing key's length: SHA-256's block size, the longest key HMAC uses as it is.
const KEY_LEN: usize = 64;

/// One minted access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

/// A token that passed the authorizer: what API Gateway passes to the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Every claim, as a string.
    pub claims: BTreeMap<String, String>,
    /// The token's scopes (its `scope` claim, split on spaces).
    pub scopes: Vec<String>,
}

impl Verified {
    /// `requestContext.authorizer` of the API Gateway HTTP API (payload 2.0) event.
    pub fn authorizer_json(&self) -> Value {
        json!({ "jwt": { "claims": self.claims, "scopes": self.scopes } })
    }
}

/// Why the authorizer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no bearer token")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another issuer or client")]
    WrongAudience,
    #[error("the token does not carry the scope this route requires")]
    InsufficientScope,
}

impl Refusal {
    /// 401 for every refusal but a missing scope, which is 403.
    pub fn status(self) -> u16 {
        match self {
            Refusal::InsufficientScope => 403,
            _ => 401,
        }
    }

    /// API Gateway's body text.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::InsufficientScope => "Forbidden",
            _ => "Unauthorized",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750): what a client needs to know, never the token.
    pub fn challenge(self, scope: &str) -> String {
        match self {
            Refusal::Missing => "Bearer".to_owned(),
            Refusal::InsufficientScope => {
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"")
            }
            other => format!("Bearer error=\"invalid_token\", error_description=\"{other}\""),
        }
    }
}

/// The dev server's token authority: mints and verifies with a key it made itself.
pub struct Authorizer {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer(<key redacted>)")
    }
}

impl Authorizer {
    /// An authorizer with a fresh random 512-bit key from the operating system.
    pub fn new() -> Result<Authorizer, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        Ok(Authorizer { key })
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as hmac::digest::KeyInit>::new(&self.key.into())
    }

    /// A token for `sub` with these scopes, issued at `issued_at` (seconds since the epoch).
    pub fn mint(&self, sub: &str, scopes: &[&str], issued_at: i64) -> AccessToken {
        let expires_at = issued_at + TOKEN_LIFETIME_SECONDS;
        let claims = json!({
            "sub": sub,
            "iss": DEV_ISSUER,
            "client_id": DEV_CLIENT_ID,
            "token_use": "access",
            "scope": scopes.join(" "),
            "auth_time": issued_at,
            "iat": issued_at,
            "exp": expires_at,
            "jti": uuid::Uuid::new_v4().to_string(),
            "username": sub,
        });
        AccessToken {
            token: self.sign(&json!({"alg": "HS256", "typ": "JWT"}), &claims),
            expires_at,
        }
    }

    /// `header.payload.signature` (exposed to tests, which forge tokens with it).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The authorizer's decision on a request's `Authorization` header values for a route that
    /// requires `scope`, at `now` (seconds since the epoch).
    pub fn verify<'a>(
        &self, mut authorization: impl Iterator<Item = &'a [u8]>, scope: &str, now: i64,
    ) -> Result<Verified, Refusal> {
        let value = authorization.next().ok_or(Refusal::Missing)?;
        if authorization.next().is_some() {
            return Err(Refusal::Malformed);
        }
        let value = std::str::from_utf8(value).map_err(|_| Refusal::Malformed)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(Refusal::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Malformed);
        }
        let claims = self.check_token(token.trim(), now)?;
        let scopes: Vec<String> = claims
            .get("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !scopes.iter().any(|s| s == scope) {
            return Err(Refusal::InsufficientScope);
        }
        Ok(Verified { claims, scopes })
    }

    fn check_token(&self, token: &str, now: i64) -> Result<BTreeMap<String, String>, Refusal> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(Refusal::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(Refusal::Malformed)?;
        if payload.contains('.') {
            return Err(Refusal::Malformed);
        }
        let header: Value = decode_json(header)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Refusal::BadSignature);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::Malformed)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature).map_err(|_| Refusal::BadSignature)?;

        let Value::Object(claims) = decode_json(payload)? else {
            return Err(Refusal::Malformed);
        };
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(DEV_ISSUER) || text("client_id") != Some(DEV_CLIENT_ID) {
            return Err(Refusal::WrongAudience);
        }
        if text("sub").is_none_or(str::is_empty) {
            return Err(Refusal::Malformed);
        }
        let exp = number("exp").ok_or(Refusal::Malformed)?;
        if exp <= now {
            return Err(Refusal::Expired);
        }
        let iat = number("iat").ok_or(Refusal::Malformed)?;
        if iat > now + CLOCK_SKEW_SECONDS || number("nbf").is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECONDS) {
            return Err(Refusal::NotYetValid);
        }
        Ok(claims_as_strings(&claims))
    }
}

fn decode_json(segment: &str) -> Result<Value, Refusal> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| Refusal::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)
}

/// Claims as API Gateway passes them: strings as they are, numbers and booleans in their JSON
/// text, arrays as `[a b]`, objects as JSON.
fn claims_as_strings(claims: &Map<String, Value>) -> BTreeMap<String, String> {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!("[{}]", items.iter().map(text).collect::<Vec<_>>().join(" ")),
            other => other.to_string(),
        }
    }
    claims.iter().map(|(k, v)| (k.clone(), text(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    fn check(auth: &Authorizer, header: Option<&[u8]>, now: i64) -> Result<Verified, Refusal> {
        auth.verify(header.into_iter(), ADMIN_SCOPE, now)
    }

    #[test]
    fn a_minted_token_passes_with_the_claims_as_api_gateway_passes_them() {
        let auth = Authorizer::new().unwrap();
        let t = auth.mint("owner-1", &[ADMIN_SCOPE], NOW);
        assert_eq!(t.expires_at, NOW + 3600);
        let v = check(&auth, Some(&bearer(&t.token)), NOW + 10).unwrap();
        assert_eq!(v.claims["sub"], "owner-1");
        assert_eq!(v.claims["token_use"], "access");
        assert_eq!(v.claims["client_id"], DEV_CLIENT_ID);
        assert_eq!(v.claims["scope"], ADMIN_SCOPE);
        assert_eq!(v.claims["iat"], NOW.to_string(), "numbers travel as strings");
        assert_eq!(v.claims["exp"], (NOW + 3600).to_string());
        assert_eq!(v.scopes, [ADMIN_SCOPE]);
        let ctx = v.authorizer_json();
        assert_eq!(ctx["jwt"]["claims"]["sub"], "owner-1");
        assert_eq!(ctx["jwt"]["scopes"], json!([ADMIN_SCOPE]));
        // The scheme is case-insensitive.
        let lower = format!("bearer {}", t.token).into_bytes();
        assert!(check(&auth, Some(&lower), NOW).is_ok());
    }

    #[test]
    fn missing_malformed_expired_or_foreign_tokens_are_unauthorized() {
        let auth = Authorizer::new().unwrap();
        let other = Authorizer::new().unwrap();
        let good = auth.mint("admin-1", &[ADMIN_SCOPE], NOW).token;
        assert_eq!(check(&auth, None, NOW), Err(Refusal::Missing));
        assert_eq!(
            check(&auth, Some(good.as_bytes()), NOW),
            Err(Refusal::Malformed),
            "no scheme"
        );
        assert_eq!(check(&auth, Some(b"Basic YTpi"), NOW), Err(Refusal::Malformed));
        assert_eq!(check(&auth, Some(&bearer("a.b")), NOW), Err(Refusal::Malformed));
        assert_eq!(
            check(&auth, Some(&bearer("not a token")), NOW),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check(&auth, Some(&bearer(&good)), NOW + 3600),
            Err(Refusal::Expired)
        );
        assert_eq!(
            check(&auth, Some(&bearer(&good)), NOW - 60),
            Err(Refusal::NotYetValid)
        );
        let foreign = other.mint("admin-1", &[ADMIN_SCOPE], NOW).token;
        assert_eq!(
            check(&auth, Some(&bearer(&foreign)), NOW),
            Err(Refusal::BadSignature)
        );
        // A changed claim breaks the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"owner-1"}"#);
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert_eq!(
            check(&auth, Some(&bearer(&forged)), NOW),
            Err(Refusal::BadSignature)
        );
        // alg "none" (unsigned) is never accepted.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            check(&auth, Some(&bearer(&none)), NOW),
            Err(Refusal::BadSignature)
        );
        // Signed by us, but for another client or issuer.
        let claims = json!({"sub": "a", "iss": DEV_ISSUER, "client_id": "other", "iat": NOW, "exp": NOW + 60, "scope": ADMIN_SCOPE});
        let t = auth.sign(&json!({"alg": "HS256"}), &claims);
        assert_eq!(check(&auth, Some(&bearer(&t)), NOW), Err(Refusal::WrongAudience));
        // Two Authorization headers.
        let twice = [bearer(&good), bearer(&good)];
        assert_eq!(
            auth.verify(twice.iter().map(Vec::as_slice), ADMIN_SCOPE, NOW),
            Err(Refusal::Malformed)
        );
        for refusal in [Refusal::Missing, Refusal::Expired, Refusal::BadSignature] {
            assert_eq!((refusal.status(), refusal.message()), (401, "Unauthorized"));
            assert!(refusal.challenge(ADMIN_SCOPE).starts_with("Bearer"));
        }
    }

    #[test]
    fn a_valid_token_without_the_routes_scope_is_forbidden() {
        let auth = Authorizer::new().unwrap();
        let t = auth.mint("admin-1", &["openid", "profile"], NOW).token;
        let refusal = check(&auth, Some(&bearer(&t)), NOW).unwrap_err();
        assert_eq!(refusal, Refusal::InsufficientScope);
        assert_eq!((refusal.status(), refusal.message()), (403, "Forbidden"));
        assert_eq!(
            refusal.challenge(ADMIN_SCOPE),
            "Bearer error=\"insufficient_scope\", scope=\"admin/users\""
        );
    }

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex_of(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

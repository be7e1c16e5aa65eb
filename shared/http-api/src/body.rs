//! Reading a JSON request body, strictly.
//!
//! - more than [`MAX_BODY`] bytes (after API Gateway's base64, which `lambda_http` has
//!   already decoded) is `413 payload_too_large`;
//! - a body with a `Content-Type` that is not JSON (`application/json` or
//!   `application/<x>+json`, charset UTF-8 if given) is `400 invalid_body`; no content type
//!   at all is accepted;
//! - invalid UTF-8, invalid JSON, a top level that is not an object, a key given twice at any
//!   depth (serde_json would silently keep the last one), an unknown field (the target type
//!   carries `#[serde(deny_unknown_fields)]`) or a value of the wrong type are
//!   `400 invalid_body`.
//!
//! An absent, empty or all-whitespace body is `Ok(None)`: the handler decides whether that
//! is allowed.

use crate::problem::{code, Problem};
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request};
use serde::de::{DeserializeOwned, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Request bodies over 64 KiB are refused (`docs/DESIGN.md`, "Requests").
pub const MAX_BODY: usize = 64 * 1024;

/// Longest part of a parser message put into a `detail`.
const MAX_DETAIL: usize = 200;

/// The body's bytes, or `None` when there is no body.
pub fn bytes(req: &Request) -> Result<Option<&[u8]>, Problem> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => return Ok(None),
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => return Err(Problem::invalid_body("The request body could not be read.")),
    };
    if bytes.len() > MAX_BODY {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!(
                "Request bodies are limited to {MAX_BODY} bytes; this one has {}.",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Reads the body as `T` (see the module documentation for every rule).
pub fn read_json<T: DeserializeOwned>(req: &Request) -> Result<Option<T>, Problem> {
    let Some(bytes) = bytes(req)? else {
        return Ok(None);
    };
    check_content_type(req)?;
    parse_json(bytes).map(Some)
}

/// Parses JSON bytes strictly into `T` (UTF-8, one object, no duplicate keys, `T`'s own rules).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Problem::invalid_body("The request body is not valid UTF-8."))?;
    let value = match serde_json::from_str::<StrictValue>(text) {
        Ok(StrictValue(v)) => v,
        Err(e) => {
            return Err(Problem::invalid_body(format!(
                "The request body is not valid JSON: {}",
                clip(&e)
            )))
        }
    };
    if !value.is_object() {
        return Err(Problem::invalid_body("The request body must be a JSON object."));
    }
    T::deserialize(value)
        .map_err(|e| Problem::invalid_body(format!("The request body is invalid: {}", clip(&e))))
}

fn check_content_type(req: &Request) -> Result<(), Problem> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let refuse = || Problem::invalid_body("The request body must be JSON (Content-Type: application/json).");
    let value = value.to_str().map_err(|_| refuse())?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json =
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json {
        return Err(refuse());
    }
    for param in parts {
        if let Some((name, val)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("charset") {
                let charset = val.trim().trim_matches('"');
                if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")) {
                    return Err(Problem::invalid_body("The request body must be UTF-8 JSON."));
                }
            }
        }
    }
    Ok(())
}

fn clip(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.chars().count() <= MAX_DETAIL {
        text
    } else {
        let cut: String = text.chars().take(MAX_DETAIL).collect();
        format!("{cut}…")
    }
}

/// A JSON value that refuses an object with the same key twice, at any depth.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "duplicate field `{}`",
                    clip_key(&key)
                )));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

fn clip_key(key: &str) -> String {
    key.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ApiEvent;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Msg {
        #[serde(default)]
        subject: Option<String>,
        body: String,
    }

    fn read(event: ApiEvent) -> Result<Option<Msg>, Problem> {
        read_json::<Msg>(&event.into_request().unwrap())
    }

    fn post() -> ApiEvent {
        ApiEvent::new("POST", "/admin/users/{userId}/messages")
            .path_param("userId", "user-1")
            .caller("admin-1")
    }

    #[test]
    fn a_json_body_is_read() {
        let m = read(post().body(r#"{"subject":"Hi","body":"Hello"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(
            m,
            Msg {
                subject: Some("Hi".into()),
                body: "Hello".into()
            }
        );
    }

    #[test]
    fn no_body_an_empty_body_and_a_blank_body_are_none() {
        assert_eq!(read(post()).unwrap(), None);
        assert_eq!(read(post().body("")).unwrap(), None);
        assert_eq!(
            read(post().body(" \n ").header("content-type", "text/plain")).unwrap(),
            None
        );
    }

    #[test]
    fn a_base64_encoded_body_is_read() {
        let m = read(post().base64_body(br#"{"body":"hi"}"#)).unwrap().unwrap();
        assert_eq!(m.body, "hi");
    }

    #[test]
    fn a_body_over_64_kib_is_payload_too_large_and_64_kib_is_fine() {
        let pad = |n: usize| format!(r#"{{"body":"{}"}}"#, "x".repeat(n - 11));
        assert_eq!(pad(MAX_BODY).len(), MAX_BODY);
        assert!(read(post().body(&pad(MAX_BODY))).is_ok());
        let p = read(post().body(&pad(MAX_BODY + 1))).unwrap_err();
        assert_eq!((p.status.as_u16(), p.code), (413, "payload_too_large"));
        let p = read(post().base64_body(pad(MAX_BODY + 1).as_bytes())).unwrap_err();
        assert_eq!(p.code, "payload_too_large");
    }

    #[test]
    fn json_content_types_are_accepted() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=\"UTF-8\"",
            "application/merge-patch+json",
        ] {
            assert!(
                read(post().header("content-type", ct).body(r#"{"body":"x"}"#)).is_ok(),
                "{ct}"
            );
        }
    }

    #[test]
    fn other_content_types_are_invalid_body() {
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "json",
        ] {
            let p = read(post().header("content-type", ct).body(r#"{"body":"x"}"#)).unwrap_err();
            assert_eq!((p.status.as_u16(), p.code), (400, "invalid_body"), "{ct}");
        }
    }

    #[test]
    fn invalid_utf8_is_invalid_body() {
        let p = read(post().base64_body(b"{\"body\":\"\xff\xfe\"}")).unwrap_err();
        assert_eq!(p.code, "invalid_body");
        assert!(p.detail.contains("UTF-8"));
    }

    #[test]
    fn a_key_given_twice_is_invalid_body_at_any_depth() {
        let p = read(post().body(r#"{"body":"a","body":"b"}"#)).unwrap_err();
        assert_eq!(p.code, "invalid_body");
        assert!(p.detail.contains("duplicate field `body`"), "{}", p.detail);
        let v: Result<Value, _> = parse_json(br#"{"a":[{"x":1,"x":2}]}"#);
        assert_eq!(v.unwrap_err().code, "invalid_body");
    }

    #[test]
    fn unknown_fields_wrong_types_and_non_objects_are_invalid_body() {
        for body in [
            r#"{"body":"a","bcc":"x@example.com"}"#,
            r#"{"body":5}"#,
            r#"{"subject":["a"],"body":"b"}"#,
            r#"["Hi","Hello"]"#,
            r#""body""#,
            r#"{"body":"a"} trailing"#,
            r#"{"body":"a""#,
            "null",
        ] {
            let p = read(post().body(body)).unwrap_err();
            assert_eq!((p.status.as_u16(), p.code), (400, "invalid_body"), "{body}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let v: Result<Value, _> = parse_json(format!(r#"{{"a":{deep}}}"#).as_bytes());
        assert_eq!(v.unwrap_err().code, "invalid_body");
    }
}

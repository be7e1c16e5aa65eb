//! Small helpers between DynamoDB attribute maps and plain Rust values.

use crate::errors::malformed;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::model::ItemKey;
use domain::ports::{DependencyError, StoreResult};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn opt_s(item: &Item, name: &str) -> Option<String> {
    get_s(item, name).map(str::to_owned)
}

/// A string attribute the row must have.
pub(crate) fn req_s(item: &Item, name: &str, dependency: &'static str) -> StoreResult<String> {
    opt_s(item, name).ok_or_else(|| {
        malformed(
            dependency,
            format!("a row of {dependency} has no string `{name}`"),
        )
    })
}

/// Put `name` = `value` when there is a value.
pub(crate) fn put_opt(item: &mut Item, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        item.insert(name.to_owned(), s(v));
    }
}

/// A key (or `LastEvaluatedKey`) whose attributes are all strings.
pub(crate) fn to_item_key(item: &Item, dependency: &'static str) -> StoreResult<ItemKey> {
    item.iter()
        .map(|(k, v)| match v.as_s() {
            Ok(s) => Ok((k.clone(), s.clone())),
            Err(_) => Err(malformed(
                dependency,
                format!("key attribute `{k}` of {dependency} is not a string"),
            )),
        })
        .collect()
}

pub(crate) fn from_item_key(key: &ItemKey) -> Item {
    key.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect()
}

/// An opaque page cursor: URL-safe base64 of the key as JSON.
pub(crate) fn encode_cursor(key: &ItemKey) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub(crate) fn decode_cursor(cursor: &str, dependency: &'static str) -> StoreResult<ItemKey> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ItemKey>(&bytes).ok())
        .ok_or_else(|| invalid_cursor(dependency))
}

fn invalid_cursor(dependency: &'static str) -> DependencyError {
    malformed(
        dependency,
        format!("the page cursor for {dependency} is not one this service issued"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_opaque() {
        let key = ItemKey::from([
            ("recipient_id".to_owned(), "u1".to_owned()),
            ("created_at".to_owned(), "t".to_owned()),
        ]);
        let c = encode_cursor(&key);
        assert!(!c.contains("recipient_id"));
        assert_eq!(decode_cursor(&c, "t").unwrap(), key);
    }

    #[test]
    fn a_forged_cursor_is_refused() {
        assert!(decode_cursor("not base64!", "t").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"[1,2]"), "t").is_err());
    }
}

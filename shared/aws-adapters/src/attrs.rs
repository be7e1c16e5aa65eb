//! Small helpers between DynamoDB attribute maps and plain Rust values.

use crate::errors::malformed;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::cursor::{CursorError, MessageCursor, UserCursor};
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

/// The `ExclusiveStartKey` of a profiles scan that continues after `cursor`.
pub(crate) fn user_cursor_key(cursor: &UserCursor) -> Item {
    Item::from([("user_id".to_owned(), s(cursor.user_id()))])
}

/// The cursor after the profile row (or `LastEvaluatedKey`) `key`.
pub(crate) fn user_cursor_after(key: &Item, dependency: &'static str) -> StoreResult<UserCursor> {
    let user_id = get_s(key, "user_id").ok_or_else(|| no_cursor_attr(dependency, "user_id"))?;
    UserCursor::after(user_id).map_err(|e| unusable_key(dependency, &e))
}

/// The `ExclusiveStartKey` of a `by_recipient` query of `recipient_id`'s messages that
/// continues after `cursor` (the index keys and the table key).
pub(crate) fn message_cursor_key(recipient_id: &str, cursor: &MessageCursor) -> Item {
    Item::from([
        ("recipient_id".to_owned(), s(recipient_id)),
        ("created_at".to_owned(), s(cursor.created_at())),
        ("message_id".to_owned(), s(cursor.message_id())),
    ])
}

/// The cursor after the message row (or `by_recipient` `LastEvaluatedKey`) `key`.
pub(crate) fn message_cursor_after(key: &Item, dependency: &'static str) -> StoreResult<MessageCursor> {
    let created_at = get_s(key, "created_at").ok_or_else(|| no_cursor_attr(dependency, "created_at"))?;
    let message_id = get_s(key, "message_id").ok_or_else(|| no_cursor_attr(dependency, "message_id"))?;
    MessageCursor::after(created_at, message_id).map_err(|e| unusable_key(dependency, &e))
}

fn no_cursor_attr(dependency: &'static str, name: &str) -> DependencyError {
    malformed(
        dependency,
        format!("a key of {dependency} has no string `{name}` for the page cursor"),
    )
}

fn unusable_key(dependency: &'static str, err: &CursorError) -> DependencyError {
    malformed(
        dependency,
        format!("a key of {dependency} is not of the page cursor's form: it {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_cursor_is_the_scans_start_key_and_comes_back_from_a_row() {
        let c = UserCursor::parse("u-7").unwrap();
        let key = user_cursor_key(&c);
        assert_eq!(key, Item::from([("user_id".to_owned(), s("u-7"))]));
        let row = Item::from([("user_id".to_owned(), s("u-7")), ("email".to_owned(), s("x"))]);
        assert_eq!(user_cursor_after(&row, "t").unwrap(), c);
    }

    #[test]
    fn a_message_cursor_takes_the_recipient_from_the_query_not_the_cursor() {
        let c = MessageCursor::parse("2026-01-01T00:00:00.000Z~m-1").unwrap();
        let key = message_cursor_key("u-1", &c);
        assert_eq!(get_s(&key, "recipient_id"), Some("u-1"));
        assert_eq!(get_s(&key, "created_at"), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(get_s(&key, "message_id"), Some("m-1"));
        assert_eq!(message_cursor_after(&key, "t").unwrap(), c);
    }

    #[test]
    fn a_stored_key_outside_the_cursors_form_is_a_malformed_row() {
        let row = Item::from([("user_id".to_owned(), s("a b"))]);
        assert!(!user_cursor_after(&row, "t").unwrap_err().retryable);
        assert!(user_cursor_after(&Item::new(), "t").is_err());
        let row = Item::from([("created_at".to_owned(), s("t")), ("message_id".to_owned(), n(1))]);
        assert!(message_cursor_after(&row, "t").is_err());
    }
}

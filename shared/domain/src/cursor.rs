//! Page cursors: where the next page of a listing starts ("parse, don't validate").
//!
//! A cursor is the key of the last row of the previous page, in a short text form: the answer's
//! `next_cursor` carries it and the next request's `?cursor=` brings it back. The form is exact
//! and public (the HTTP contract gives it as a pattern), and every string of that form is a
//! position a listing can start from: a forged cursor only moves the starting point of a list
//! the caller may read anyway. Anything else never reaches a store; the HTTP edge answers it with
//! `400 invalid_cursor`.
//!
//! - [`UserCursor`] (the user list): the id of the last user, e.g. `user-17`.
//! - [`MessageCursor`] (a user's message history, newest first): the `created_at` and the
//!   `message_id` of the last message, joined by `~`, e.g.
//!   `2026-11-25T10:00:00.000Z~3f1c6a5e-9a4b-4c1e-8d8a-2b7e5c9d0f11`.
//!
//! - [`AuditCursor`] (the audit trail, newest first): the `created_at` and the `event_id` of the
//!   last row, joined by `~`, e.g. `2026-11-25T10:00:00.000Z~refusals#u-1#2026-11-25T10:00:00.000Z`.
//!
//! Each part is 1..=128 characters from `[A-Za-z0-9._:-]` (the alphabet of user ids, message
//! ids and our timestamps); an event id may also hold `#` (it joins the parts of the
//! deterministic ids, `<job_id>#deleted`) and be up to [`MAX_EVENT_ID`] characters.

use crate::types::UserId;
use std::fmt;
use std::str::FromStr;

/// Longest part of a cursor, in characters (the longest user id).
pub const MAX_PART: usize = UserId::MAX_LEN;

/// Separates the parts of a [`MessageCursor`]; outside the parts' alphabet.
pub const SEPARATOR: char = '~';

/// Why a text is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("must not be empty")]
    Empty,
    #[error("has {got} parts separated by `~`, a cursor of this list has {expected}")]
    Parts { expected: usize, got: usize },
    #[error("has a part longer than {MAX_PART} characters")]
    PartTooLong,
    #[error("has an empty part")]
    EmptyPart,
    #[error("contains a character that is not allowed: {0:?}")]
    InvalidCharacter(char),
}

fn is_part_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// One part: 1..=[`MAX_PART`] characters from `[A-Za-z0-9._:-]`.
fn check_part(part: &str) -> Result<(), CursorError> {
    if part.is_empty() {
        return Err(CursorError::EmptyPart);
    }
    if let Some(c) = part.chars().find(|c| !is_part_char(*c)) {
        return Err(CursorError::InvalidCharacter(c));
    }
    if part.len() > MAX_PART {
        return Err(CursorError::PartTooLong);
    }
    Ok(())
}

/// `text` split into exactly `N` valid parts.
fn parts<const N: usize>(text: &str) -> Result<[&str; N], CursorError> {
    if text.is_empty() {
        return Err(CursorError::Empty);
    }
    let got: Vec<&str> = text.split(SEPARATOR).collect();
    let parts: [&str; N] = got.as_slice().try_into().map_err(|_| CursorError::Parts {
        expected: N,
        got: got.len(),
    })?;
    for part in parts {
        check_part(part)?;
    }
    Ok(parts)
}

/// Where the next page of the user list starts: after the user with this id (ids ascending).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserCursor(String);

impl UserCursor {
    pub fn parse(text: &str) -> Result<UserCursor, CursorError> {
        let [after] = parts::<1>(text)?;
        Ok(UserCursor(after.to_owned()))
    }

    /// The cursor after the user `user_id` (a stored id that is not of the cursor's form is an
    /// error: such a row cannot be addressed through the API either).
    pub fn after(user_id: &str) -> Result<UserCursor, CursorError> {
        UserCursor::parse(user_id)
    }

    /// The id of the last user of the previous page.
    pub fn user_id(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserCursor::parse(s)
    }
}

/// Where the next page of a user's message history starts: after the message with this
/// `created_at` and `message_id` (newest first: `created_at` descending, then `message_id`
/// descending). The recipient is not part of it: it is the history's own user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageCursor {
    created_at: String,
    message_id: String,
}

impl MessageCursor {
    pub fn parse(text: &str) -> Result<MessageCursor, CursorError> {
        let [created_at, message_id] = parts::<2>(text)?;
        Ok(MessageCursor {
            created_at: created_at.to_owned(),
            message_id: message_id.to_owned(),
        })
    }

    /// The cursor after the message (`created_at`, `message_id`).
    pub fn after(created_at: &str, message_id: &str) -> Result<MessageCursor, CursorError> {
        check_part(created_at)?;
        check_part(message_id)?;
        Ok(MessageCursor {
            created_at: created_at.to_owned(),
            message_id: message_id.to_owned(),
        })
    }

    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    pub fn message_id(&self) -> &str {
        &self.message_id
    }
}

impl fmt::Display for MessageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.created_at, self.message_id)
    }
}

impl FromStr for MessageCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageCursor::parse(s)
    }
}

/// Longest event id a cursor carries (a refusal row's id holds a caller id and a minute).
pub const MAX_EVENT_ID: usize = 255;

/// Where the next page of the audit trail starts: after the row with this `created_at` and
/// `event_id` (newest first: `created_at` descending, then `event_id` descending).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditCursor {
    created_at: String,
    event_id: String,
}

fn check_event_id(id: &str) -> Result<(), CursorError> {
    if id.is_empty() {
        return Err(CursorError::EmptyPart);
    }
    if let Some(c) = id.chars().find(|c| !is_part_char(*c) && *c != '#') {
        return Err(CursorError::InvalidCharacter(c));
    }
    if id.len() > MAX_EVENT_ID {
        return Err(CursorError::PartTooLong);
    }
    Ok(())
}

impl AuditCursor {
    pub fn parse(text: &str) -> Result<AuditCursor, CursorError> {
        if text.is_empty() {
            return Err(CursorError::Empty);
        }
        let got: Vec<&str> = text.split(SEPARATOR).collect();
        let [created_at, event_id] = got.as_slice() else {
            return Err(CursorError::Parts {
                expected: 2,
                got: got.len(),
            });
        };
        AuditCursor::after(created_at, event_id)
    }

    pub fn after(created_at: &str, event_id: &str) -> Result<AuditCursor, CursorError> {
        check_part(created_at)?;
        check_event_id(event_id)?;
        Ok(AuditCursor {
            created_at: created_at.to_owned(),
            event_id: event_id.to_owned(),
        })
    }

    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Whether a row at (`created_at`, `event_id`) comes after this cursor, newest first.
    pub fn is_before(&self, created_at: &str, event_id: &str) -> bool {
        (created_at, event_id) < (self.created_at.as_str(), self.event_id.as_str())
    }
}

impl fmt::Display for AuditCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.created_at, self.event_id)
    }
}

impl FromStr for AuditCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditCursor::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_user_cursor_is_the_last_user_id() {
        let c = UserCursor::parse("user-17").unwrap();
        assert_eq!(c.user_id(), "user-17");
        assert_eq!(c.to_string(), "user-17");
        assert_eq!(
            UserCursor::after("3f1c6a5e-9a4b:x.y_z").unwrap().to_string(),
            "3f1c6a5e-9a4b:x.y_z"
        );
    }

    #[test]
    fn a_message_cursor_is_created_at_and_message_id() {
        let c = MessageCursor::after("2026-11-25T10:00:00.000Z", "m-1").unwrap();
        assert_eq!(c.to_string(), "2026-11-25T10:00:00.000Z~m-1");
        let back = MessageCursor::parse(&c.to_string()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.created_at(), "2026-11-25T10:00:00.000Z");
        assert_eq!(back.message_id(), "m-1");
    }

    #[test]
    fn an_audit_cursor_is_created_at_and_an_event_id_that_may_hold_hashes() {
        let c = AuditCursor::after(
            "2026-11-25T10:00:00.000Z",
            "refusals#u-1#2026-11-25T10:00:00.000Z",
        )
        .unwrap();
        assert_eq!(
            c.to_string(),
            "2026-11-25T10:00:00.000Z~refusals#u-1#2026-11-25T10:00:00.000Z"
        );
        assert_eq!(AuditCursor::parse(&c.to_string()).unwrap(), c);
        assert!(c.is_before("2026-11-25T10:00:00.000Z", "m-1#sent"));
        assert!(!c.is_before("2026-11-25T10:00:00.000Z", "z"));
        assert!(c.is_before("2026-11-24T10:00:00.000Z", "z"));
        assert_eq!(
            AuditCursor::parse("2026-11-25T10:00:00.000Z#x~e"),
            Err(CursorError::InvalidCharacter('#'))
        );
        assert_eq!(
            AuditCursor::parse("a~b~c"),
            Err(CursorError::Parts { expected: 2, got: 3 })
        );
        assert_eq!(
            AuditCursor::parse("a~e f"),
            Err(CursorError::InvalidCharacter(' '))
        );
        assert_eq!(
            AuditCursor::parse(&format!("a~{}", "e".repeat(256))),
            Err(CursorError::PartTooLong)
        );
    }

    #[test]
    fn text_that_is_not_a_cursor_is_refused_with_the_rule_it_breaks() {
        assert_eq!(UserCursor::parse(""), Err(CursorError::Empty));
        assert_eq!(
            UserCursor::parse("a~b"),
            Err(CursorError::Parts { expected: 1, got: 2 })
        );
        assert_eq!(UserCursor::parse("a b"), Err(CursorError::InvalidCharacter(' ')));
        assert_eq!(
            UserCursor::parse("eyJ1c2VyX2lkIjoidSJ9=="),
            Err(CursorError::InvalidCharacter('='))
        );
        assert_eq!(UserCursor::parse(&"a".repeat(129)), Err(CursorError::PartTooLong));
        assert!(UserCursor::parse(&"a".repeat(128)).is_ok());
        assert_eq!(
            MessageCursor::parse("m-1"),
            Err(CursorError::Parts { expected: 2, got: 1 })
        );
        assert_eq!(
            MessageCursor::parse("a~b~c"),
            Err(CursorError::Parts { expected: 2, got: 3 })
        );
        assert_eq!(MessageCursor::parse("~m-1"), Err(CursorError::EmptyPart));
        assert_eq!(MessageCursor::parse("t~"), Err(CursorError::EmptyPart));
        assert_eq!(
            MessageCursor::parse("t~m\n"),
            Err(CursorError::InvalidCharacter('\n'))
        );
        assert_eq!(
            MessageCursor::parse("t~é"),
            Err(CursorError::InvalidCharacter('é'))
        );
        assert_eq!(
            MessageCursor::after("t", "a/b"),
            Err(CursorError::InvalidCharacter('/'))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn every_text_of_the_documented_form_is_a_cursor_and_round_trips(
            a in "[A-Za-z0-9._:-]{1,128}",
            b in "[A-Za-z0-9._:-]{1,128}",
        ) {
            prop_assert_eq!(UserCursor::parse(&a).unwrap().to_string(), a.clone());
            let text = format!("{a}~{b}");
            prop_assert_eq!(MessageCursor::parse(&text).unwrap().to_string(), text);
        }

        #[test]
        fn nothing_else_is_a_cursor(s in "\\PC{0,300}|.*") {
            let user_form = !s.is_empty() && s.len() <= 128 && s.chars().all(is_part_char);
            prop_assert_eq!(UserCursor::parse(&s).is_ok(), user_form);
            let message_form = match s.split_once('~') {
                Some((a, b)) => [a, b].iter().all(|p| !p.is_empty() && p.len() <= 128 && p.chars().all(is_part_char)),
                None => false,
            };
            prop_assert_eq!(MessageCursor::parse(&s).is_ok(), message_form);
        }
    }
}

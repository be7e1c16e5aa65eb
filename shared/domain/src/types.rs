//! Domain types that can only exist valid ("parse, don't validate").

use sha2::{Digest, Sha256};
use std::fmt;

/// Why a value could not be parsed. Each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters (got {len})")]
    TooLong { max: usize, len: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("contains a character that is not allowed: {0:?}")]
    InvalidCharacter(char),
    #[error("is not an email address")]
    NotAnEmail,
}

/// At most `max` characters (Unicode scalar values, as the contract counts them).
fn check_length(text: &str, max: usize) -> Result<(), ParseError> {
    let len = text.chars().count();
    if len > max {
        return Err(ParseError::TooLong { max, len });
    }
    Ok(())
}

/// A user id as used in `profiles.user_id` (for Cognito users: the `sub`).
/// 1..=128 characters from `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<UserId, ParseError> {
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        check_length(s, Self::MAX_LEN)?;
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(ParseError::InvalidCharacter(c));
        }
        Ok(UserId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address. It keeps two forms: the address as stored, trimmed (what mail is
/// delivered to: RFC 5321 leaves the local part's case to the receiving server), and its normal
/// form, trimmed and lower-cased (what addresses are compared by and what the audit hash is
/// taken of). Equality and hashing use the normal form.
/// Its `Debug` does not print the address, so it never reaches a log by accident.
#[derive(Clone)]
pub struct EmailAddress {
    address: String,
    normal: String,
}

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    pub fn parse(s: &str) -> Result<EmailAddress, ParseError> {
        let address = s.trim();
        let normal = address.to_lowercase();
        if normal.is_empty() {
            return Err(ParseError::Empty);
        }
        check_length(&normal, Self::MAX_LEN)?;
        if normal.chars().any(char::is_control) {
            return Err(ParseError::ControlCharacter);
        }
        if let Some(c) = normal
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        {
            return Err(ParseError::InvalidCharacter(c));
        }
        let (local, domain) = normal.rsplit_once('@').ok_or(ParseError::NotAnEmail)?;
        if local.is_empty() || local.contains('@') || domain.is_empty() || !domain.contains('.') {
            return Err(ParseError::NotAnEmail);
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(ParseError::NotAnEmail);
        }
        Ok(EmailAddress {
            address: address.to_owned(),
            normal,
        })
    }

    /// The address to deliver to: as stored, trimmed, case kept.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The normal form (trimmed, lower-cased): for comparing addresses, never for delivery.
    pub fn normalized(&self) -> &str {
        &self.normal
    }

    /// SHA-256 of the normal form (trimmed, lower-cased), lower-case hex: the audit hash.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.normal.as_bytes()))
    }
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.normal == other.normal
    }
}

impl Eq for EmailAddress {}

impl std::hash::Hash for EmailAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normal.hash(state);
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

/// A message subject: trimmed, 1..=200 characters, no control characters (CR/LF would be
/// header injection). Missing or blank means [`Subject::DEFAULT`].
#[derive(Clone, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub const DEFAULT: &'static str = "A message from Teleperson";
    pub const MAX_LEN: usize = 200;

    pub fn parse(s: Option<&str>) -> Result<Subject, ParseError> {
        let raw = s.unwrap_or("");
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(Subject(Self::DEFAULT.to_owned()));
        }
        // Checked on the raw input: a CR/LF anywhere, even at the edges, is refused.
        if raw
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}'))
        {
            return Err(ParseError::ControlCharacter);
        }
        check_length(trimmed, Self::MAX_LEN)?;
        Ok(Subject(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subject(<redacted>)")
    }
}

/// A message body: 1..=10,000 characters. Line breaks and tabs are fine; other control
/// characters (NUL, escape sequences) are refused. Leading and trailing blank space is kept,
/// but a body of only blank space is empty.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_LEN: usize = 10_000;

    pub fn parse(s: &str) -> Result<MessageBody, ParseError> {
        if s.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        check_length(s, Self::MAX_LEN)?;
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ParseError::ControlCharacter);
        }
        Ok(MessageBody(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody(<{} chars>)", self.0.chars().count())
    }
}

/// An `Idempotency-Key` header value: 1..=255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<IdempotencyKey, ParseError> {
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::TooLong {
                max: Self::MAX_LEN,
                len: s.chars().count(),
            });
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(if c.is_control() {
                ParseError::ControlCharacter
            } else {
                ParseError::InvalidCharacter(c)
            });
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 hex of arbitrary bytes (payload fingerprints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_email_is_trimmed_and_lower_cased_before_hashing() {
        let a = EmailAddress::parse("  Alice@Example.COM \n").unwrap();
        assert_eq!(a.normalized(), "alice@example.com");
        // sha256("alice@example.com")
        assert_eq!(
            a.sha256_hex(),
            "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"
        );
    }

    #[test]
    fn an_email_is_delivered_as_stored_trimmed_with_its_case_kept() {
        let a = EmailAddress::parse("  Uma.X@Example.ORG ").unwrap();
        assert_eq!(a.as_str(), "Uma.X@Example.ORG");
        assert_eq!(a.normalized(), "uma.x@example.org");
        assert_eq!(a, EmailAddress::parse("uma.x@example.org").unwrap());
        assert_eq!(
            a.sha256_hex(),
            EmailAddress::parse("uma.x@example.org").unwrap().sha256_hex()
        );
    }

    #[test]
    fn an_email_never_shows_in_debug_output() {
        let a = EmailAddress::parse("alice@example.com").unwrap();
        assert!(!format!("{a:?}").contains("alice"));
    }

    #[test]
    fn not_emails_are_refused() {
        for s in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@b..com",
            "a@@b.com",
        ] {
            assert!(EmailAddress::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_missing_or_blank_subject_is_the_default() {
        assert_eq!(Subject::parse(None).unwrap().as_str(), Subject::DEFAULT);
        assert_eq!(Subject::parse(Some("   ")).unwrap().as_str(), Subject::DEFAULT);
        assert_eq!(Subject::parse(Some(" Hi ")).unwrap().as_str(), "Hi");
    }

    #[test]
    fn a_subject_with_cr_or_lf_is_header_injection_and_refused() {
        for s in [
            "Hi\r\nBcc: x@evil.com",
            "Hi\nthere",
            "Hi\rthere",
            "a\u{0}b",
            "a\u{2028}b",
            "tab\there",
        ] {
            assert_eq!(
                Subject::parse(Some(s)),
                Err(ParseError::ControlCharacter),
                "{s:?}"
            );
        }
    }

    #[test]
    fn subject_length_is_counted_in_characters_after_trimming() {
        assert!(Subject::parse(Some(&"é".repeat(200))).is_ok());
        assert_eq!(
            Subject::parse(Some(&"é".repeat(201))),
            Err(ParseError::TooLong { max: 200, len: 201 })
        );
        assert!(Subject::parse(Some(&format!("  {}  ", "a".repeat(200)))).is_ok());
    }

    #[test]
    fn body_bounds() {
        assert_eq!(MessageBody::parse(""), Err(ParseError::Empty));
        assert_eq!(MessageBody::parse(" \n\t "), Err(ParseError::Empty));
        assert!(MessageBody::parse(&"x".repeat(10_000)).is_ok());
        assert!(MessageBody::parse(&"x".repeat(10_001)).is_err());
        assert!(MessageBody::parse("line one\r\nline two\ttabbed").is_ok());
        assert_eq!(MessageBody::parse("bell\u{7}"), Err(ParseError::ControlCharacter));
    }

    #[test]
    fn user_ids() {
        assert!(UserId::parse("3f1c6a5e-9a4b-4c1e-8d8a-2b7e5c9d0f11").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse("../etc").is_err());
        assert!(UserId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("9b2f-01").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("a\nb").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn a_parsed_subject_never_holds_a_line_break(s in "\\PC{0,250}|.*[\r\n].*") {
            if let Ok(sub) = Subject::parse(Some(&s)) {
                prop_assert!(!sub.as_str().contains('\r') && !sub.as_str().contains('\n'));
                prop_assert!(sub.as_str().chars().count() <= 200);
                prop_assert!(!sub.as_str().is_empty());
                prop_assert_eq!(sub.as_str().trim(), sub.as_str());
            }
        }

        #[test]
        fn subject_injection_attempts_are_always_refused(a in "[a-zA-Z ]{1,50}", b in "[a-zA-Z: @.]{1,50}", sep in "\r\n|\n|\r|\u{0}|\u{1b}") {
            let s = format!("{a}{sep}{b}");
            prop_assert!(Subject::parse(Some(&s)).is_err());
        }

        #[test]
        fn subjects_accept_any_printable_unicode_up_to_the_bound(s in "[^\\p{C}\\s][^\\p{C}\\p{Zl}\\p{Zp}]{0,198}") {
            prop_assume!(s.trim().chars().count() <= 200);
            prop_assert!(Subject::parse(Some(&s)).is_ok());
        }

        #[test]
        fn body_length_bound_is_exact(n in 9_990usize..10_010, c in "[a-zé😀]") {
            let body = c.repeat(n);
            prop_assert_eq!(MessageBody::parse(&body).is_ok(), n <= 10_000);
        }

        #[test]
        fn email_normal_form_is_stable(local in "[A-Za-z0-9._+-]{1,20}", domain in "[A-Za-z0-9-]{1,20}\\.[A-Za-z]{2,6}", pad in "[ \t]{0,3}") {
            let raw = format!("{pad}{local}@{domain}{pad}");
            let e = EmailAddress::parse(&raw).unwrap();
            prop_assert_eq!(e.as_str(), raw.trim());
            prop_assert_eq!(e.normalized(), raw.trim().to_lowercase());
            let again = EmailAddress::parse(e.normalized()).unwrap();
            prop_assert_eq!(again.sha256_hex(), e.sha256_hex());
            prop_assert_eq!(e.sha256_hex().len(), 64);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC*|.*") {
            let _ = UserId::parse(&s);
            let _ = EmailAddress::parse(&s);
            let _ = Subject::parse(Some(&s));
            let _ = MessageBody::parse(&s);
            let _ = IdempotencyKey::parse(&s);
        }
    }
}

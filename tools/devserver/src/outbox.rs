//! The dev server's mail outbox: every mail the in-memory mailer accepts is written as a
//! standard RFC 5322 `.eml` file (open it in any mail client), and listed at `GET /dev/outbox`.

use chrono::{DateTime, Utc};
use domain::ports::OutgoingEmail;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Renders one mail as an RFC 5322 message: CRLF line ends, RFC 2047 encoded-words for a
/// non-ASCII subject, a quoted-printable UTF-8 text body.
pub fn render_eml(email: &OutgoingEmail, date: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut header = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    };
    header("Date", &date.to_rfc2822());
    header(
        "Message-ID",
        &format!("<{}@devserver.teleperson.invalid>", email.message_id),
    );
    header("From", &email.from);
    header("To", email.to.as_str());
    header("Reply-To", &email.reply_to);
    header(
        "Subject",
        &encode_header_text(email.subject.as_str(), "Subject: ".len()),
    );
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=utf-8");
    header("Content-Transfer-Encoding", "quoted-printable");
    header("X-Teleperson-Message-Id", &email.message_id);
    out.push_str("\r\n");
    out.push_str(&quoted_printable(email.body.as_str()));
    out
}

/// The file name of a mail: sortable by time, unique by message id.
pub fn file_name(message_id: &str, date: DateTime<Utc>) -> String {
    let safe: String = message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    format!("{}-{safe}.eml", date.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Writes the mail into `dir` (created when missing) and returns the file's path.
pub fn write_eml(dir: &Path, email: &OutgoingEmail) -> std::io::Result<PathBuf> {
    let now = Utc::now();
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(&email.message_id, now));
    let tmp = path.with_extension("eml.part");
    std::fs::write(&tmp, render_eml(email, now))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// One entry of `GET /dev/outbox`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub file: String,
    pub bytes: u64,
    pub modified: String,
}

/// The `.eml` files in the outbox, newest first.
pub fn list(dir: &Path) -> Vec<OutboxEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<OutboxEntry> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.ends_with(".eml") {
                return None;
            }
            let meta = e.metadata().ok()?;
            let modified: DateTime<Utc> = meta.modified().ok()?.into();
            Some(OutboxEntry {
                file: name,
                bytes: meta.len(),
                modified: domain::model::timestamp(modified),
            })
        })
        .collect();
    files.sort_by(|a, b| b.file.cmp(&a.file));
    files
}

/// Whether `name` is a plain `.eml` file name (no path separators, no `..`).
pub fn is_safe_name(name: &str) -> bool {
    name.ends_with(".eml")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A header value: printable ASCII as is (folded at spaces when long), anything else as
/// RFC 2047 `=?UTF-8?B?...?=` encoded-words of at most 75 characters each.
/// `offset` is the length of the header name and colon on the first line.
pub fn encode_header_text(text: &str, offset: usize) -> String {
    let plain = text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) && !text.contains("=?");
    if plain {
        return fold_ascii(text, offset);
    }
    // Each encoded-word carries at most 45 bytes (60 base64 characters + 12 of framing),
    // cut on character boundaries so that no word splits a UTF-8 sequence.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join("\r\n ")
}

fn encoded_word(s: &str) -> String {
    use base64::Engine as _;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )
}

fn fold_ascii(text: &str, offset: usize) -> String {
    let mut out = String::new();
    let mut line_len = offset;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            if line_len + 1 + word.len() > 78 && line_len > offset {
                out.push_str("\r\n ");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// RFC 2045 quoted-printable with CRLF hard line breaks and soft breaks before 76 characters.
pub fn quoted_printable(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::new();
    for (i, line) in normalised.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut len = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let token = match b {
                b'=' => "=3D".to_owned(),
                b' ' | b'\t' if last => format!("={b:02X}"),
                b' ' | b'\t' | 33..=126 => (b as char).to_string(),
                _ => format!("={b:02X}"),
            };
            // Keep room for the soft break's "=" on every line but the last piece.
            let room = if last { 76 } else { 75 };
            if len + token.len() > room {
                out.push_str("=\r\n");
                len = 0;
            }
            out.push_str(&token);
            len += token.len();
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::types::{EmailAddress, MessageBody, Subject};

    fn decode_qp(s: &str) -> String {
        let joined = s.replace("=\r\n", "");
        let mut bytes = Vec::new();
        let raw = joined.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    fn email(subject: &str, body: &str) -> OutgoingEmail {
        OutgoingEmail {
            message_id: "0f3c1d2e-msg".into(),
            to: EmailAddress::parse("Ana.Lima@Example.org").unwrap(),
            from: "no-reply@teleperson.com".into(),
            reply_to: "hello@teleperson.com".into(),
            subject: Subject::parse(Some(subject)).unwrap(),
            body: MessageBody::parse(body).unwrap(),
        }
    }

    #[test]
    fn an_eml_carries_the_headers_of_a_standard_message() {
        let eml = render_eml(&email("Your account", "Hello Ana"), Utc::now());
        let (head, body) = eml.split_once("\r\n\r\n").unwrap();
        for line in [
            // Delivered to the address as stored: the local part keeps its case (RFC 5321).
            "To: Ana.Lima@Example.org",
            "From: no-reply@teleperson.com",
            "Reply-To: hello@teleperson.com",
            "Subject: Your account",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ] {
            assert!(head.lines().any(|l| l == line), "missing {line:?} in\n{head}");
        }
        assert!(head.starts_with("Date: "));
        assert!(head.contains("Message-ID: <0f3c1d2e-msg@"));
        assert_eq!(decode_qp(body), "Hello Ana\r\n");
    }

    #[test]
    fn a_non_ascii_subject_becomes_encoded_words_that_decode_back() {
        use base64::Engine as _;
        let subject = "Ihre Bestätigung – größere Änderungen für Zoë und José, bitte lesen 🙂";
        let encoded = encode_header_text(subject, 9);
        let mut decoded = Vec::new();
        for word in encoded.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            decoded.extend(base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
            // Every word decodes on its own: no UTF-8 sequence is split.
            assert!(
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).is_ok()
            );
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), subject);
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_round_trips() {
        let body = format!("Grüße aus Köln = \n{}\nend with space ", "x".repeat(300));
        let qp = quoted_printable(&body);
        assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
        assert!(qp.is_ascii());
        assert_eq!(decode_qp(&qp), format!("{}\r\n", body.replace('\n', "\r\n")));
    }

    #[test]
    fn only_plain_eml_names_are_served() {
        assert!(is_safe_name("20250101T000000.000Z-abc.eml"));
        assert!(!is_safe_name("../secret.eml"));
        assert!(!is_safe_name("a/b.eml"));
        assert!(!is_safe_name("notes.txt"));
    }
}

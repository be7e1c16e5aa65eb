//! Every log line a test binary produces, as the Lambda functions would print it (JSON
//! tracing), checked against the personal data the tests seeded.
//!
//! [`capture`] installs, once per test binary, a JSON `tracing` subscriber that writes into
//! a shared buffer. Tests register what must never be logged with [`forbid`] (email
//! addresses, subjects, message bodies) and end with [`assert_clean`]. Our own crates log at
//! `trace` here (stricter than Lambda's default `info`), dependencies at `info`;
//! `RELIABILITY_LOG_FILTER` overrides the filter (for example `debug` or `trace` to include
//! the AWS SDK's own lines).

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The filter used while capturing: our crates at `trace`, everything else at `info`.
pub const FILTER: &str = "info,domain=trace,http_api=trace,aws_adapters=trace,message_user=trace,\
delete_user=trace,deletion_worker=trace,list_users=trace,reliability_tests=trace";

/// Stored lines are capped; lines past the cap are still checked as they are written.
const MAX_STORED: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    stored: Vec<u8>,
    lines: u64,
    forbidden: Vec<String>,
    /// (secret, line) for every line that held a forbidden value when written.
    leaks: Vec<(String, String)>,
    pending: Vec<u8>,
}

/// The shared buffer.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Inner>>);

impl Capture {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lock().lines
    }

    /// The stored text (up to the cap).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().stored).into_owned()
    }
}

fn leak_in(line: &str, forbidden: &[String]) -> Option<String> {
    let lower = line.to_lowercase();
    forbidden
        .iter()
        .find(|secret| lower.contains(secret.as_str()))
        .cloned()
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        inner.pending.extend_from_slice(buf);
        while let Some(end) = inner.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).into_owned();
            inner.lines += 1;
            if let Some(secret) = leak_in(&text, &inner.forbidden) {
                inner.leaks.push((secret, text.clone()));
            }
            if inner.stored.len() + line.len() <= MAX_STORED {
                inner.stored.extend_from_slice(&line);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// Installs the capturing subscriber (once per test binary) and returns it.
pub fn capture() -> &'static Capture {
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(EnvFilter::new(
                std::env::var("RELIABILITY_LOG_FILTER").unwrap_or_else(|_| FILTER.to_owned()),
            ))
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(capture.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a reliability test binary");
        capture
    })
}

/// Registers values that must never appear in a log line (compared case-insensitively).
/// Values shorter than 6 characters are refused: they would match by accident.
pub fn forbid<I, S>(values: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let capture = capture();
    let mut inner = capture.lock();
    for v in values {
        let v = v.as_ref().trim().to_lowercase();
        assert!(v.len() >= 6, "a forbidden log value must be distinctive: {v:?}");
        if !inner.forbidden.contains(&v) {
            inner.forbidden.push(v);
        }
    }
}

/// Panics when any line so far held a registered value (also re-checks stored lines against
/// values registered after they were written). Returns the number of lines checked.
pub fn assert_clean() -> u64 {
    let capture = capture();
    let inner = capture.lock();
    let mut leaks = inner.leaks.clone();
    let stored = String::from_utf8_lossy(&inner.stored);
    for line in stored.lines() {
        if let Some(secret) = leak_in(line, &inner.forbidden) {
            leaks.push((secret, line.to_owned()));
        }
    }
    if let Some((secret, line)) = leaks.first() {
        panic!(
            "{} log line(s) hold personal data; the first holds {secret:?}:\n{line}",
            leaks.len()
        );
    }
    inner.lines
}

/// Checks text from elsewhere (a function binary's stdout/stderr) the same way.
pub fn assert_text_clean(what: &str, text: &str) {
    let capture = capture();
    let inner = capture.lock();
    for line in text.lines() {
        if let Some(secret) = leak_in(line, &inner.forbidden) {
            panic!("{what} holds personal data ({secret:?}):\n{line}");
        }
    }
}

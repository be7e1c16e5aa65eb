//! A hand-written Runtime API client (std only) for the simulator's own tests: it plays
//! the runtime behaviours that a real function shows only when something goes wrong.
//!
//! `FIXTURE_MODE`:
//! - `echo` (default): answer each event with the event, the Lambda headers and the
//!   environment; logs one line to stdout and one to stderr per event.
//! - `init-error`: post `/runtime/init/error`, then exit 1.
//! - `exit-at-init`: write a start-up error to stderr and exit 1 before asking for work.
//! - `error`: answer each event with `/invocation/{id}/error`.
//! - `crash`: exit 3 after taking the first event.
//! - `slow`: like `echo`, after sleeping `FIXTURE_DELAY_MS`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

fn call(
    api: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(api)?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn env_json() -> String {
    let names = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_REGION",
        "FIXTURE_EXTRA",
        "CARGO_MANIFEST_DIR",
    ];
    let fields: Vec<String> = names
        .iter()
        .filter_map(|n| {
            std::env::var(n)
                .ok()
                .map(|v| format!("{}:{}", escape(n), escape(&v)))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API is set");
    let mode = std::env::var("FIXTURE_MODE").unwrap_or_else(|_| "echo".to_owned());
    match mode.as_str() {
        "init-error" => {
            let body = r#"{"errorType":"Runtime.ConfigError","errorMessage":"missing environment variable PROFILES_TABLE"}"#;
            let answer = call(
                &api,
                "POST",
                "/2018-06-01/runtime/init/error",
                &[("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")],
                body,
            )
            .expect("init error posted");
            eprintln!("fixture: init error posted ({})", answer.status);
            std::process::exit(1);
        }
        "exit-at-init" => {
            eprintln!("start-up failed: missing environment variable PROFILES_TABLE");
            std::process::exit(1);
        }
        _ => {}
    }
    let delay = std::env::var("FIXTURE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    loop {
        let next = match call(&api, "GET", "/2018-06-01/runtime/invocation/next", &[], "") {
            Ok(next) if next.status == 200 => next,
            _ => std::process::exit(2),
        };
        let id = next
            .headers
            .get("lambda-runtime-aws-request-id")
            .cloned()
            .unwrap_or_default();
        println!("fixture: invocation {id}");
        eprintln!("fixture: stderr for {id}");
        match mode.as_str() {
            "crash" => std::process::exit(3),
            "error" => {
                let body = r#"{"errorType":"Handler.Boom","errorMessage":"boom"}"#;
                let path = format!("/2018-06-01/runtime/invocation/{id}/error");
                let _ = call(
                    &api,
                    "POST",
                    &path,
                    &[("Lambda-Runtime-Function-Error-Type", "Handler.Boom")],
                    body,
                );
                continue;
            }
            "slow" => std::thread::sleep(Duration::from_millis(delay)),
            _ => {}
        }
        let header = |name: &str| escape(next.headers.get(name).map(String::as_str).unwrap_or(""));
        let body = format!(
            r#"{{"event":{},"request_id":{},"deadline_ms":{},"function_arn":{},"trace_id":{},"env":{}}}"#,
            if next.body.is_empty() { "null" } else { &next.body },
            escape(&id),
            next.headers
                .get("lambda-runtime-deadline-ms")
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .map_or("0", String::as_str),
            header("lambda-runtime-invoked-function-arn"),
            header("lambda-runtime-trace-id"),
            env_json()
        );
        let path = format!("/2018-06-01/runtime/invocation/{id}/response");
        if call(
            &api,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            &body,
        )
        .is_err()
        {
            std::process::exit(2);
        }
    }
}

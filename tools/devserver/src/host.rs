//! DNS-rebinding protection: the dev server answers only requests addressed to itself.
//!
//! A web page on another site can point a name it controls at 127.0.0.1 and then talk to a
//! loopback server as if it were that site (DNS rebinding); the browser then sends the
//! attacker's name as `Host`. So every request whose `Host` (and, in absolute form, its target's
//! authority) is not the dev server's own address and port — `127.0.0.1:PORT`, `localhost:PORT`,
//! `[::1]:PORT`, the address given with `--addr` when it is a specific one, or a name allowed
//! with `--allow-host` — is refused with `421 host_not_allowed` before any route runs.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The stable code of the refusal (`421 Misdirected Request`, problem+json).
pub const HOST_NOT_ALLOWED: &str = "host_not_allowed";

/// The host names (without port) and the port the dev server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    port: u16,
    names: Vec<String>,
}

fn ip_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

impl AllowedHosts {
    /// The loopback names with the listener's port, the listener's own address when it is a
    /// specific one, and `extra` names (lower-cased; without port).
    pub fn for_listener(local: SocketAddr, extra: &[String]) -> AllowedHosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        if !local.ip().is_unspecified() {
            names.push(ip_name(local.ip()));
        }
        names.extend(extra.iter().map(|n| n.trim().to_ascii_lowercase()));
        names.sort();
        names.dedup();
        AllowedHosts {
            port: local.port(),
            names,
        }
    }

    /// The `host:port` forms a request may carry, for messages.
    pub fn describe(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("{n}:{}", self.port))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `authority` (a `Host` header value, `host[:port]`) is this server.
    pub fn allows(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        // `[v6]:port`, `[v6]`, `name:port` or `name`.
        let (host, port) = if authority.starts_with('[') {
            match authority.split_once(']') {
                Some((v6, rest)) => (format!("{v6}]"), rest),
                None => return false,
            }
        } else {
            match authority.find(':') {
                Some(at) => (authority[..at].to_owned(), &authority[at..]),
                None => (authority.clone(), ""),
            }
        };
        let port_ok = match port.strip_prefix(':') {
            Some(p) => {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>() == Ok(self.port)
            }
            None => port.is_empty() && self.port == 80,
        };
        port_ok && self.names.contains(&host)
    }
}

/// The middleware: refuses a request that is not addressed to this server.
pub async fn check(State(allowed): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    let hosts: Vec<&[u8]> = req
        .headers()
        .get_all(axum::http::header::HOST)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let host_ok = match hosts.as_slice() {
        [one] => std::str::from_utf8(one).is_ok_and(|h| allowed.allows(h)),
        _ => false,
    };
    let target_ok = req.uri().authority().is_none_or(|a| allowed.allows(a.as_str()));
    if host_ok && target_ok {
        return next.run(req).await;
    }
    tracing::warn!(
        method = %req.method(),
        path = req.uri().path(),
        "refused a request not addressed to this dev server (Host header)"
    );
    crate::gateway::problem(
        StatusCode::MISDIRECTED_REQUEST,
        HOST_NOT_ALLOWED,
        "Host not allowed",
        &format!(
            "This dev server answers only requests addressed to {} (the Host header). Others are \
             refused so that no web page can reach it through DNS rebinding; add a name with \
             --allow-host.",
            allowed.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_names_with_the_listeners_port_are_allowed() {
        let a = AllowedHosts::for_listener("127.0.0.1:3000".parse().unwrap(), &[]);
        for ok in ["127.0.0.1:3000", "localhost:3000", "LocalHost:3000", "[::1]:3000"] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3000",
            "127.0.0.1:3001",
            "localhost",
            "127.0.0.1",
            "localhost.:3000",
            "127.0.0.1:3000.evil.example",
            "localhost:3000:3000",
            "localhost:+3000",
            "localhost:",
            "[::1]",
            "[::1:3000",
            "127.0.0.2:3000",
            "",
            "localhost:3000@evil.example",
        ] {
            assert!(!a.allows(bad), "{bad:?}");
        }
        assert_eq!(a.describe(), "127.0.0.1:3000, [::1]:3000, localhost:3000");
    }

    #[test]
    fn a_specific_listen_address_and_extra_names_are_allowed_too() {
        let a = AllowedHosts::for_listener("192.0.2.7:8080".parse().unwrap(), &["DevBox.local".into()]);
        assert!(a.allows("192.0.2.7:8080"));
        assert!(a.allows("devbox.local:8080"));
        assert!(a.allows("localhost:8080"));
        assert!(!a.allows("192.0.2.8:8080"));
        let any = AllowedHosts::for_listener("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(!any.allows("0.0.0.0:8080"));
        let v6 = AllowedHosts::for_listener("[fd00::5]:9000".parse().unwrap(), &[]);
        assert!(v6.allows("[fd00::5]:9000") && v6.allows("[::1]:9000"));
    }

    #[test]
    fn on_port_80_the_port_may_be_left_out() {
        let a = AllowedHosts::for_listener("127.0.0.1:80".parse().unwrap(), &[]);
        assert!(a.allows("localhost") && a.allows("localhost:80"));
        assert!(!a.allows("localhost:8080"));
    }
}

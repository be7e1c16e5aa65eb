//! `cargo run -p devserver -- [--port N] [--addr IP] [--outbox DIR] ...`: the local dev server.

use devserver::{Config, DevServer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Teleperson dev server: the admin Users API on an in-memory backend with demo data, and the
reference Users tab page. Mail goes to .eml files in the outbox folder.

USAGE: cargo run -p devserver -- [OPTIONS]

OPTIONS:
  --addr IP                 address to listen on            [default: 127.0.0.1]
  --port N                  port (0 = any free port)        [default: 3000]
  --allow-host NAME         also answer requests whose Host is NAME:PORT (repeatable); only
                            127.0.0.1, localhost, [::1] and the --addr address are answered
                            otherwise (421 host_not_allowed: DNS-rebinding protection)
  --outbox DIR              where .eml files are written    [default: ./outbox]
  --static DIR              the page's files                [default: tools/devserver/static]
  --delete-budget-ms N      DELETE handler time budget; a deletion that needs longer answers
                            202 and the in-process worker finishes it   [default: 20000]
  --worker-budget-ms N      worker time budget per queued job           [default: 60000]
  --worker-interval-ms N    how often the worker polls the queue        [default: 250]
  --mail-from ADDR          sender (MAIL_FROM)              [default: no-reply@teleperson.com]
  --reply-to ADDR           Reply-To (SUPPORT_REPLY_TO)     [default: hello@teleperson.com]
  --simulate-delivery-ms N  a simulated SES Delivery event marks each sent message
                            `delivered` N ms after it was sent      [default: 1500]
  --no-simulate-delivery    no simulated Delivery events: messages stay `sent` until
                            POST /dev/ses-events says otherwise (same as --simulate-delivery-ms 0)
  -h, --help                this text

Every API route needs `Authorization: Bearer <token>`, as behind API Gateway's JWT authorizer:
GET /dev/identities lists the demo identities, each with an access token of this server's own
(valid one hour, and only until the server stops). For example:
  token=$(curl -s http://127.0.0.1:3000/dev/identities | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"items\"][0][\"access_token\"])')
  curl -H \"Authorization: Bearer $token\" http://127.0.0.1:3000/admin/users

Try `--delete-budget-ms 0` to see every deletion go through the 202 + worker path.
Simulate what SES reports about a message (through the delivery-events function's handler):
  curl -X POST http://127.0.0.1:3000/dev/ses-events -H 'content-type: application/json' \\
       -d '{\"message_id\": \"<message id>\", \"event\": \"Bounce\"}'
  (event: Delivery, Bounce, SoftBounce or Complaint; message_id as in the send's answer or the history)";

struct Args {
    addr: IpAddr,
    port: u16,
    config: Config,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 3000,
        config: Config::default(),
    };
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        if name == "--no-simulate-delivery" {
            args.config.simulate_delivery = None;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match name.as_str() {
            "--addr" => {
                args.addr = value()?
                    .parse()
                    .map_err(|_| format!("{name}: not an IP address"))?
            }
            "--port" => {
                args.port = value()?
                    .parse()
                    .map_err(|_| format!("{name}: not a port number"))?
            }
            "--allow-host" => {
                let host = value()?;
                if host.is_empty() || host.contains([':', '/', ' ']) {
                    return Err(format!("{name}: a host name without port, e.g. devbox.local"));
                }
                args.config.allowed_hosts.push(host)
            }
            "--outbox" => args.config.outbox = PathBuf::from(value()?),
            "--static" => args.config.static_dir = PathBuf::from(value()?),
            "--delete-budget-ms" => args.config.delete_budget = ms(value()?)?,
            "--worker-budget-ms" => args.config.worker_budget = ms(value()?)?,
            "--worker-interval-ms" => args.config.worker_interval = ms(value()?)?,
            "--mail-from" => args.config.mail_from = value()?,
            "--reply-to" => args.config.reply_to = value()?,
            "--simulate-delivery-ms" => {
                args.config.simulate_delivery = Some(ms(value()?)?).filter(|d| !d.is_zero())
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();

    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("devserver: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !args.config.static_dir.join("index.html").is_file() {
        eprintln!(
            "devserver: no index.html in {} (use --static DIR)",
            args.config.static_dir.display()
        );
        return ExitCode::from(2);
    }
    let outbox = std::path::absolute(&args.config.outbox).unwrap_or_else(|_| args.config.outbox.clone());
    let mut config = args.config;
    config.outbox = outbox;
    let listener = match tokio::net::TcpListener::bind(SocketAddr::new(args.addr, args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "devserver: cannot listen on {}:{}: {e} (try --port 0 or another port)",
                args.addr, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("devserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match DevServer::new(config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("devserver: cannot make a token signing key: {e}");
            return ExitCode::FAILURE;
        }
    };
    let owner = app
        .backend
        .state()
        .profiles
        .get(&app.seeded.owner)
        .map(|p| p.display_name.clone());
    println!("Teleperson dev server (in-memory backend, demo data; nothing leaves this machine)");
    println!("  Users tab:  http://{local}/");
    println!("  API:        http://{local}/admin/users   (Authorization: Bearer <access_token from GET /dev/identities>)");
    println!("  Outbox:     {}", app.config.outbox.display());
    println!(
        "  Signed in as {} (owner) by default; switch in the page header.",
        owner.unwrap_or_default()
    );
    println!("Listening on http://{local}  (Ctrl+C to stop)");
    match devserver::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devserver: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Args>, String> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn flags_override_the_defaults() {
        let a =
            parse("--port 0 --addr 0.0.0.0 --outbox /tmp/x --delete-budget-ms=5 --allow-host devbox.local")
                .unwrap()
                .unwrap();
        assert_eq!(a.config.allowed_hosts, ["devbox.local"]);
        assert_eq!(a.port, 0);
        assert_eq!(a.addr.to_string(), "0.0.0.0");
        assert_eq!(a.config.outbox, PathBuf::from("/tmp/x"));
        assert_eq!(a.config.delete_budget, Duration::from_millis(5));
    }

    #[test]
    fn an_unknown_flag_or_a_missing_value_is_an_error() {
        assert!(parse("--nope").is_err());
        assert!(parse("--port").is_err());
        assert!(parse("--port abc").is_err());
        assert!(parse("--allow-host devbox.local:3000").is_err());
        assert!(parse("--help").unwrap().is_none());
    }

    #[test]
    fn simulated_delivery_is_on_by_default_and_can_be_turned_off() {
        let default = parse("").unwrap().unwrap();
        assert_eq!(
            default.config.simulate_delivery,
            Some(devserver::DEFAULT_SIMULATED_DELIVERY)
        );
        let off = parse("--no-simulate-delivery").unwrap().unwrap();
        assert_eq!(off.config.simulate_delivery, None);
        let zero = parse("--simulate-delivery-ms 0").unwrap().unwrap();
        assert_eq!(zero.config.simulate_delivery, None);
        let quick = parse("--simulate-delivery-ms=200").unwrap().unwrap();
        assert_eq!(quick.config.simulate_delivery, Some(Duration::from_millis(200)));
    }
}

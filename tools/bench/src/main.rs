//! The benchmarks. Each figure is printed with a baseline measured in the same
//! run and its ratio:
//!
//! ```text
//! bench <cold-start|cascade|handlers|send|all> [--quick] [--runs N] [--no-build] [--write-docs]
//!       [--partition-wcu N] [--latency-ms N]
//! ```
//!
//! Run it through `scripts/bench.sh` (emulator, release builds, docs). `--quick` shrinks
//! every count for a smoke run; `--no-build` takes the function binaries from this
//! executable's directory instead of asking cargo; `--write-docs` puts the table into
//! docs/BENCHMARKS.md. `--partition-wcu` (default 100) and `--latency-ms` (default 4) set
//! the DynamoDB capacity model of the cascade benchmark (`dynamo_model.rs`).

mod cascade;
mod coldstart;
mod dynamo_model;
mod handlers;
mod interruptions;
mod probe;
mod report;
mod send;
mod stats;
mod world;

use anyhow::{bail, Context};
use report::{Machine, Report};

const USAGE: &str =
    "usage: bench <cold-start|cascade|handlers|send|all> [--quick] [--runs N] [--no-build] [--write-docs] \
                     [--partition-wcu N] [--latency-ms N]";
/// The capacity model's defaults: DynamoDB's 1,000 WCU per partition scaled down to what the
/// emulator sustains with five partitions written at once (at 250 it was the emulator, one
/// Python process at 95% of a core, that set the pace: 1,250 writes a second plus the
/// lookups), and a round trip inside a region.
const DEFAULT_PARTITION_WCU: f64 = 100.0;
const DEFAULT_LATENCY_MS: u64 = 4;

struct Args {
    command: String,
    quick: bool,
    runs: Option<usize>,
    no_build: bool,
    write_docs: bool,
    partition_wcu: f64,
    latency_ms: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        command: String::new(),
        quick: false,
        runs: None,
        no_build: false,
        write_docs: false,
        partition_wcu: DEFAULT_PARTITION_WCU,
        latency_ms: DEFAULT_LATENCY_MS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--no-build" => args.no_build = true,
            "--write-docs" => args.write_docs = true,
            "--runs" => {
                let n = it.next().context("--runs needs a number")?;
                args.runs = Some(n.parse().with_context(|| format!("--runs {n}: not a number"))?);
            }
            "--partition-wcu" => {
                let n = it.next().context("--partition-wcu needs a number")?;
                args.partition_wcu = n
                    .parse()
                    .ok()
                    .filter(|w: &f64| *w >= 1.0)
                    .with_context(|| format!("--partition-wcu {n}: not a number of at least 1"))?;
            }
            "--latency-ms" => {
                let n = it.next().context("--latency-ms needs a number")?;
                args.latency_ms = n
                    .parse()
                    .with_context(|| format!("--latency-ms {n}: not a whole number"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            cmd if !cmd.starts_with('-') && args.command.is_empty() => args.command = cmd.to_owned(),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if !["cold-start", "cascade", "handlers", "send", "all"].contains(&args.command.as_str()) {
        bail!("{USAGE}");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("probe-init") {
        // A child of the cold-start benchmark (see probe.rs).
        return probe::probe(probe::Mode::parse(std::env::args().nth(2).as_deref())).await;
    }
    let args = args()?;
    let all = args.command == "all";
    let wants = |name: &str| all || args.command == name;
    let needs_emulator = wants("cold-start") || wants("cascade") || wants("send");
    let emulator = if needs_emulator {
        Some(world::emulator()?)
    } else {
        None
    };
    let emulator_text = emulator.as_ref().map_or_else(
        || "not used".to_owned(),
        |e| format!("moto server at {}", e.endpoint()),
    );
    // The cascade keeps the user-data tables in dynalite when scripts/bench.sh started it.
    let dynalite = if wants("cascade") {
        test_support::dynalite::Dynalite::from_env()
    } else {
        None
    };
    let emulator_text = match &dynalite {
        Some(d) => format!(
            "{emulator_text}; the cascade's user-data tables in dynalite at {}",
            d.endpoint()
        ),
        None => emulator_text,
    };
    let machine = Machine::detect(emulator_text);
    eprintln!(
        "bench: {} CPUs ({}), {}, {} profile{}",
        machine.cpus,
        machine.cpu_model,
        machine.date,
        machine.profile,
        if args.quick { ", QUICK counts" } else { "" }
    );
    if machine.profile == "debug" {
        eprintln!("bench: debug build: figures are for smoke runs only; use scripts/bench.sh for real ones");
    }

    let mut report = Report::default();
    if wants("handlers") {
        report.extend(handlers::run(if args.quick { 1_000 } else { 10_000 }).await?);
    }
    if let Some(emulator) = &emulator {
        if wants("cold-start") {
            let runs = args.runs.unwrap_or(if args.quick { 3 } else { 20 });
            report.extend(
                coldstart::run(
                    emulator,
                    &coldstart::Options {
                        runs,
                        no_build: args.no_build,
                    },
                )
                .await?,
            );
        }
        if wants("cascade") {
            let model = dynamo_model::Model {
                latency: std::time::Duration::from_millis(args.latency_ms),
                wcu_per_s: args.partition_wcu,
            };
            let (items, naive_items) = if args.quick {
                (2_000, 500)
            } else {
                // The naive loop deletes one item at a time, so its time is linear in the items:
                // a quarter of them, scaled up, says the same in a quarter of the time.
                (20_000, 5_000)
            };
            report.extend(
                cascade::run(
                    emulator,
                    dynalite.as_ref(),
                    &cascade::Options {
                        items,
                        naive_items,
                        model,
                    },
                )
                .await?,
            );
        }
        if wants("send") {
            report.extend(send::run(emulator, if args.quick { 50 } else { 500 }).await?);
        }
    }
    if args.quick {
        report.note("QUICK run (--quick): reduced counts, for smoke testing only.");
    }

    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let text = report.render(&machine, &format!("bench {command}"));
    println!("\n{text}");
    if args.write_docs {
        let path = lambda_sim::cargo::workspace_root().join("docs/BENCHMARKS.md");
        let path = path.canonicalize().unwrap_or(path);
        report::write_docs(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote the table into {}", path.display());
    }
    Ok(())
}

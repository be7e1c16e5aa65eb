//! The benchmarks of issue 8. Each figure is printed with a baseline measured in the same
//! run and its ratio:
//!
//! ```text
//! bench <cold-start|cascade|handlers|send|all> [--quick] [--runs N] [--no-build] [--write-docs]
//! ```
//!
//! Run it through `scripts/bench.sh` (emulator, release builds, docs). `--quick` shrinks
//! every count for a smoke run; `--no-build` takes the function binaries from this
//! executable's directory instead of asking cargo; `--write-docs` puts the table into
//! docs/BENCHMARKS.md.

mod cascade;
mod coldstart;
mod handlers;
mod probe;
mod report;
mod send;
mod stats;
mod world;

use anyhow::{bail, Context};
use report::{Machine, Report};

const USAGE: &str =
    "usage: bench <cold-start|cascade|handlers|send|all> [--quick] [--runs N] [--no-build] [--write-docs]";

struct Args {
    command: String,
    quick: bool,
    runs: Option<usize>,
    no_build: bool,
    write_docs: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        command: String::new(),
        quick: false,
        runs: None,
        no_build: false,
        write_docs: false,
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
            let options = if args.quick {
                cascade::Options {
                    items: 2_000,
                    naive_items: 500,
                    rounds: 1,
                }
            } else {
                cascade::Options {
                    items: 20_000,
                    naive_items: 20_000,
                    rounds: 2,
                }
            };
            report.extend(cascade::run(emulator, &options).await?);
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

//! The results table: every figure with its baseline (measured in the same run), the ratio,
//! the target and whether it is met. Printed, and written into docs/BENCHMARKS.md between
//! markers with `--write-docs`.

use std::fmt::Write as _;
use std::path::Path;

pub const BEGIN: &str =
    "<!-- bench:results:begin (written by `bench --write-docs`; edit outside these markers) -->";
pub const END: &str = "<!-- bench:results:end -->";

/// One figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub area: String,
    pub figure: String,
    pub value: String,
    pub baseline: String,
    /// value / baseline (or baseline / value where more is better: see `target`).
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(area: &str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            area: area.to_owned(),
            figure: figure.into(),
            value: value.into(),
            baseline: String::new(),
            ratio: None,
            target: String::new(),
            met: None,
        }
    }

    pub fn baseline(mut self, baseline: impl Into<String>, ratio: f64) -> Row {
        self.baseline = baseline.into();
        self.ratio = Some(ratio);
        self
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

/// The machine the figures come from.
#[derive(Debug, Clone)]
pub struct Machine {
    pub date: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub profile: &'static str,
    pub emulator: String,
}

impl Machine {
    pub fn detect(emulator: String) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / (1024.0 * 1024.0)),
            );
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory,
            kernel,
            rustc,
            profile: lambda_sim::cargo::Profile::current().name(),
            emulator,
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn extend(&mut self, other: Report) {
        self.rows.extend(other.rows);
        self.notes.extend(other.notes);
    }

    /// Markdown: machine, table, notes.
    pub fn render(&self, machine: &Machine, command: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Run: `{command}` on {}.", machine.date);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), {} RAM, Linux {}; {}; binaries and bench built with the `{}` profile; \
             AWS emulator: {}.",
            machine.cpus,
            machine.cpu_model,
            machine.memory,
            machine.kernel,
            machine.rustc,
            machine.profile,
            machine.emulator
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| area | figure | value | baseline (same run) | ratio | target | met |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for r in &self.rows {
            let ratio = r.ratio.map_or_else(String::new, |x| format!("{x:.2}x"));
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.area, r.figure, r.value, r.baseline, ratio, r.target, met
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

/// Replaces the block between the markers of `path` with `block` (appends the markers when
/// the file has none).
pub fn write_docs(path: &Path, block: &str) -> std::io::Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let fenced = format!("{BEGIN}\n\n{}\n{END}", block.trim_end());
    let next = match (current.find(BEGIN), current.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{fenced}{}", &current[..b], &current[e + END.len()..]),
        _ if current.trim().is_empty() => format!("# Benchmarks\n\n{fenced}\n"),
        _ => format!("{}\n\n{fenced}\n", current.trim_end()),
    };
    std::fs::write(path, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_block_is_replaced_between_the_markers_and_the_rest_is_kept() {
        let dir = std::env::temp_dir().join(format!("bench-docs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(
            &path,
            format!("# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\nanalysis\n"),
        )
        .unwrap();
        write_docs(&path, "new table\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("# B\n\nintro\n\n{BEGIN}\n\nnew table\n{END}\n\nanalysis\n")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Locating a workspace binary: `cargo build --message-format=json` names the executable it
//! built, whatever the target directory, profile or platform. A no-op when it is up to date.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    /// The profile this crate itself was compiled with.
    pub fn current() -> Profile {
        if cfg!(debug_assertions) {
            Profile::Debug
        } else {
            Profile::Release
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("could not run cargo: {0}")]
    Run(#[source] std::io::Error),
    #[error("cargo build failed:\n{0}")]
    Failed(String),
    #[error("cargo built no executable named {0}")]
    NotBuilt(String),
}

/// The workspace's `Cargo.toml`.
pub fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml")
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the binary `bin` of package `package` and returns its path.
pub fn build_bin(package: &str, bin: &str, profile: Profile) -> Result<PathBuf, BuildError> {
    let mut built = build_bins(&[(package, bin)], profile, false)?;
    built
        .remove(bin)
        .ok_or_else(|| BuildError::NotBuilt(bin.to_owned()))
}

/// Builds several binaries in one cargo run: `(package, bin)` pairs → bin name → path.
/// With `show_progress`, cargo's own progress goes to this process's stderr.
pub fn build_bins(
    bins: &[(&str, &str)], profile: Profile, show_progress: bool,
) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_manifest())
        .arg("--message-format=json-render-diagnostics");
    for (package, bin) in bins {
        cmd.args(["-p", package, "--bin", bin]);
    }
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    cmd.stdout(Stdio::piped()).stderr(if show_progress {
        Stdio::inherit()
    } else {
        Stdio::piped()
    });
    let output = cmd.output().map_err(BuildError::Run)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let rendered: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|m| m["message"]["rendered"].as_str().map(str::to_owned))
            .collect();
        return Err(BuildError::Failed(format!(
            "{}{}",
            rendered.join(""),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut built = BTreeMap::new();
    for message in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let (Some(name), Some(exe)) = (message["target"]["name"].as_str(), message["executable"].as_str())
        else {
            continue;
        };
        if bins.iter().any(|(_, bin)| *bin == name) {
            built.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    for (_, bin) in bins {
        if !built.contains_key(*bin) {
            return Err(BuildError::NotBuilt((*bin).to_owned()));
        }
    }
    Ok(built)
}

//! A second, independent DynamoDB for the user-data tables: dynalite (npm, on LevelDB), which
//! is strict where moto is lenient (request validation, 25-item batches, 100-key batch gets,
//! 1 MB pages, unused expression names, AWS's error shapes). It has no transactions, so only
//! the tables the cascade reads and deletes through `DynamoUserData` go there; everything
//! else stays on moto.
//!
//! `scripts/test.sh` installs it (`tests/dynalite`, `npm ci`), starts it on a free loopback
//! port and runs the cascade flows a second time with `DYNALITE_ENDPOINT` set. Without that
//! variable the user-data tables live on moto like every other table.

use aws_config::SdkConfig;

/// The variable that names dynalite's endpoint (`http://127.0.0.1:<port>`).
pub const ENDPOINT_VAR: &str = "DYNALITE_ENDPOINT";

/// dynalite at `DYNALITE_ENDPOINT`.
#[derive(Clone, Debug)]
pub struct Dynalite {
    endpoint: String,
    sdk: SdkConfig,
}

impl Dynalite {
    /// dynalite when `DYNALITE_ENDPOINT` is set; `None` when it is not (the user-data tables
    /// then live on moto). Panics when it is set and nothing answers there: a run that was
    /// meant to use dynalite never quietly falls back to moto.
    pub fn from_env() -> Option<Dynalite> {
        let endpoint = std::env::var(ENDPOINT_VAR).ok()?;
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        if endpoint.is_empty() {
            return None;
        }
        if let Err(err) = reachable(&endpoint) {
            panic!(
                "{ENDPOINT_VAR} is {endpoint}, but nothing answers there ({err}); scripts/test.sh starts dynalite"
            );
        }
        // dynalite checks request signatures: dummy credentials, any region.
        let sdk = crate::emulator::local_sdk(&endpoint, "dynalite");
        Some(Dynalite { endpoint, sdk })
    }

    /// SDK settings for dynalite (a client for it: `aws_sdk_dynamodb::Client::new(d.sdk())`).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

fn reachable(endpoint: &str) -> Result<(), String> {
    crate::emulator::connect(endpoint).map(drop)
}

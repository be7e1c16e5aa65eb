//! The test harness for adapter and flow tests against the AWS emulator.
//!
//! - [`Emulator`]: the moto server that `scripts/test.sh` starts (`AWS_ENDPOINT_URL`); a test
//!   that needs it and does not find it panics with instructions, it never skips.
//! - [`infra`]: the DynamoDB tables exactly as `infra/template.yaml` defines them;
//!   [`create_tables`] creates them under a random prefix, so tests run in parallel without
//!   ever resetting the emulator, and returns the env-var → table-name lookup ([`TableSet`]).
//! - [`isolation`]: an SDK configuration whose `TransactWriteItems` are isolated from every
//!   other request, as DynamoDB isolates them (moto does not).
//! - [`faults`]: answers lost after the request took effect (the SDK then retries it);
//!   [`blackhole`]: an endpoint that never answers.
//! - [`dynalite`]: the second DynamoDB (`DYNALITE_ENDPOINT`) that the user-data tables are
//!   created in ([`create_user_data_tables`]) when a run asks for it.
//! - [`rows`]: plain reads and writes of raw rows, to check what the adapters stored;
//!   [`settings`]: the tables of the environment contract as the design names them;
//!   [`yaml`]: the repository's YAML documents, short tags looked through.
//! - Fixtures for SESv2 ([`ses`]: verified senders, the mail moto recorded, the SendEmail
//!   request as sent on the wire), Cognito ([`cognito`]) and SQS ([`sqs`]).

pub mod blackhole;
pub mod cognito;
pub mod dynalite;
mod emulator;
pub mod faults;
pub mod infra;
pub mod isolation;
pub mod rows;
pub mod ses;
pub mod settings;
pub mod sqs;
mod tables;
pub mod yaml;

pub use emulator::{local_sdk, Emulator};
pub use tables::{create_tables, create_user_data_tables, user_data_table_defs, TableSet, TestEnv};

/// A short random id for names that must not collide between parallel tests.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..12])
}

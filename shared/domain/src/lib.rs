//! The domain of the admin Users tab: types that parse, ports, and the use cases
//! (send a message, the delete routine, history, the user list). No AWS in here: the same
//! code runs in Lambda (with `aws-adapters`), in the dev server and in tests (with
//! [`memory::InMemoryBackend`]).

pub mod access;
pub mod audit;
pub mod cascade;
pub mod cursor;
pub mod deletion;
pub mod delivery;
pub mod job;
pub mod memory;
pub mod messaging;
pub mod model;
pub mod ports;
pub mod revocation;
pub mod schedule;
pub mod sweep;
pub mod types;
pub mod users;

pub use policy;

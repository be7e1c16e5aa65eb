//! Reliability tests of the admin Users tab backend. The tests live in `tests/`;
//! this library holds what they share:
//!
//! - [`answer`]: a handler's response read like a client reads it, and what every answer
//!   must be (status, problem+json, opaque 5xx);
//! - [`world`]: the real handlers on the in-memory backend, events for every route, and
//!   state comparisons ("nothing changed");
//! - [`logs`]: a JSON `tracing` subscriber that captures every log line of a test binary and
//!   checks it against the personal data the tests seeded;
//! - [`proxy`]: a fault-injecting HTTP proxy between the real AWS SDK clients and the
//!   emulator;
//! - [`cloud`]: the real adapters against the emulator (moto server, started by
//!   `scripts/test.sh`), with tables created from `infra/template.yaml`;
//! - [`esm`]: SQS's event source mapping and the sweep's schedule, played against the
//!   emulator's queue for the in-process worker or the built binary;
//! - [`sim`]: the same around the in-memory backend, in tokio's paused time;
//! - [`functions`]: the built function binaries under `lambda-sim`.
//!
//! What each test proves is listed in `docs/RELIABILITY.md`.

pub mod answer;
pub mod cloud;
pub mod esm;
pub mod functions;
pub mod logs;
pub mod proxy;
pub mod sim;
pub mod world;

pub use answer::Answer;

//! The HTTP edge shared by the Lambda handlers (API Gateway HTTP API, payload format 2.0).
//!
//! A handler does four things, and this crate gives it the pieces for each:
//! - read the request: [`request::meta`] (caller from the JWT claims, request id, source IP,
//!   user agent), [`request::user_id`], [`request::page`] and [`body::read_json`] (size,
//!   content type, UTF-8, duplicate keys, unknown fields, wrong types);
//! - parse into domain types (the domain's parsers; [`errors::parse_error`] for their errors);
//! - call the use case;
//! - answer: [`response::json`] for success, and one mapping function per use-case error in
//!   [`errors`] turning it into a [`Problem`] (RFC 9457 `application/problem+json`, with the
//!   stable `code` listed in `docs/DESIGN.md`, "Errors").
//!
//! Every expected failure is an answer, never an `Err` and never a panic. 5xx answers are
//! opaque (the request id only) and their cause chain is logged once, here, at the boundary.
//! No email address, subject, body or token is ever logged.
//!
//! [`event::ApiEvent`] builds real payload 2.0 events for tests and the local dev server.

pub mod body;
pub mod errors;
pub mod event;
pub mod problem;
pub mod request;
pub mod response;
pub mod telemetry;

pub use problem::{code, Problem, ALL_CODES};

//! `infra/template.yaml` checked against the code's contracts, with no emulator and no AWS (the
//! checks live in `tests/tests/infra/`, one module per concern):
//!
//! - tables: every DynamoDB table is either cascaded (`domain::cascade::CASCADE_PLAN`) or
//!   deliberately kept (`KEPT_TABLES`), a table keyed on a user id cannot be forgotten, every
//!   plan entry's key schema and lookup matches its table, and every table is retained and
//!   deletion-protected;
//! - environment: every function gets every setting it reads, table variables name real tables,
//!   the budgets fit inside the timeouts and the lease outlives the runner; the access-token
//!   lifetime is a documented parameter within Cognito's bounds;
//! - grants: every function is granted exactly the calls of its adapters, each DynamoDB write
//!   limited to the attributes it names (`dynamodb:Attributes`), to what it asks back
//!   (`dynamodb:ReturnValues`) and, on the idempotency table, to its partition keys
//!   (`dynamodb:LeadingKeys`); evaluated the way IAM combines statements, no function can write
//!   a profile's role or a message's subject and body unless it owns them, and none reaches a
//!   table beyond its own; the row-writers' attribute lists match what the code writes (rows);
//! - audit: no IAM statement lets any function update or delete `security_logs`;
//! - routes: every admin route exists, behind the Cognito JWT authorizer with a required scope;
//!   CORS exposes the headers the dashboard reads; every function is built from its own crate;
//! - queues: the continuation queue outlives the worker and ends in an alarmed dead-letter queue;
//! - delivery: delivery-events is subscribed to the topic SES publishes every event type it
//!   records to, the topic is encrypted with the stack's own KMS key that SES and SNS may use,
//!   and what it cannot record ends in an alarmed dead-letter queue that keeps it briefly;
//! - alarms: an overdue deletion (sweeper) and a Cognito user missing at lock-out (delete-user,
//!   deletion-worker) raise alarms from their log lines; the sweep runs every 5 minutes;
//! - references: every `!Ref` / `!GetAtt` / `${...}` names something that exists.
//!
//! Each checker returns the list of problems it found; the tests also run every checker on
//! deliberately broken copies of the template, so a checker that cannot fail fails the suite.
//! `INFRA_TEMPLATE=<file>` runs them all on another template (for example the one before a
//! change, to see which rules it breaks).

mod infra;

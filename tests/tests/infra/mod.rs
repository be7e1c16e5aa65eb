//! The checks of `infra/template.yaml`, one module per concern; `cfn` reads the template for
//! all of them, `iam` evaluates its statements, `expected` is what the code needs.

mod alarms;
mod audit;
mod cfn;
mod delivery;
mod environment;
mod expected;
mod grants;
mod iam;
mod queues;
mod references;
mod routes;
mod rows;
mod tables;

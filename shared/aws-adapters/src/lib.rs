//! The domain's ports on real AWS services: DynamoDB tables, SESv2, Cognito and SQS.
//!
//! Every adapter is a thin translation between a port of `domain::ports` and one SDK
//! client. Every write that must not be lost is conditional or transactional; SDK failures
//! become [`domain::ports::DependencyError`]s that name the table or operation (never an
//! email address, subject or body) and say whether a retry may help.
//!
//! [`env`] builds the use cases from the environment, one SDK client per service; [`sdk`]
//! sets up the SDK itself (in Lambda: environment credentials, Amazon roots only).

mod attrs;
mod cognito;
pub mod deadline;
mod dynamo;
pub mod env;
mod errors;
pub mod sdk;
mod ses;
mod sqs;
pub mod telemetry;

pub use cognito::CognitoAuthDirectory;
pub use dynamo::deletion_jobs::DynamoDeletionJobs;
pub use dynamo::delivery::DynamoDeliveryLog;
pub use dynamo::idempotency::{DynamoIdempotency, DynamoRateLimiter};
pub use dynamo::outbox::DynamoMessageOutbox;
pub use dynamo::profiles::DynamoProfiles;
pub use dynamo::security_log::DynamoSecurityLog;
pub use dynamo::user_data::{DynamoUserData, MAX_BATCH_WRITE};
pub use ses::{SesMailer, SesSuppressionList};
pub use sqs::SqsDeletionQueue;

//! The use cases, built from the environment: each Lambda's `main` calls one of the
//! `*_from_env` functions once at start-up. A missing or unusable setting fails there, with
//! its name ([`ConfigError`]).
//!
//! The `*_from` variants read through a lookup function, so tests build the same objects
//! without touching the process environment.

use crate::{
    CognitoAuthDirectory, DynamoDeletionJobs, DynamoDeliveryLog, DynamoIdempotency, DynamoMessageOutbox,
    DynamoProfiles, DynamoRateLimiter, DynamoSecurityLog, DynamoUserData, SesMailer, SesSuppressionList,
    SqsDeletionQueue,
};
use aws_config::SdkConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use domain::audit::AuditLog;
use domain::cascade::CASCADE_PLAN;
use domain::deletion::{Deletion, DeletionSettings};
use domain::delivery::Delivery;
use domain::messaging::{Messaging, MessagingSettings, DEFAULT_REPLY_TO};
use domain::ports::SystemClock;
use domain::revocation::Revocation;
use domain::sweep::{SweepSettings, Sweeper};
use domain::users::Directory;
use std::sync::Arc;
use std::time::Duration;

/// A setting is missing or unusable. The message names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    message: String,
}

impl ConfigError {
    pub fn missing(variable: &'static str) -> Self {
        ConfigError {
            variable,
            message: format!("missing environment variable {variable}"),
        }
    }

    pub fn invalid(variable: &'static str, expected: &str) -> Self {
        ConfigError {
            variable,
            message: format!("invalid environment variable {variable}: expected {expected}"),
        }
    }
}

/// How settings are read: `std::env::var` in Lambda, a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A required setting (blank counts as missing).
pub fn required(lookup: Lookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    optional(lookup, name).ok_or_else(|| ConfigError::missing(name))
}

/// An optional setting (blank counts as unset).
pub fn optional(lookup: Lookup<'_>, name: &'static str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(
    lookup: Lookup<'_>, name: &'static str, default: T,
) -> Result<T, ConfigError> {
    match optional(lookup, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ConfigError::invalid(name, "a whole number")),
    }
}

/// A duration in milliseconds (`DELETE_BUDGET_MS`, `WORKER_BUDGET_MS`, ...), `default_ms` when unset.
pub fn duration_ms(lookup: Lookup<'_>, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
    number(lookup, name, default_ms).map(Duration::from_millis)
}

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`, ...).
/// In Lambda: the environment's credentials and one HTTPS client trusting the Amazon roots,
/// unless `SDK_SYSTEM_TRUST_AND_DEFAULT_CREDENTIALS` is true ([`crate::sdk`]).
/// A function's start-up: tracing, the SDK configuration, then `build` (its use case from the
/// environment). A configuration `build` cannot use ends the process at init, naming the
/// variable ([`crate::telemetry::startup_failed`]).
pub async fn start<T>(build: impl FnOnce(&SdkConfig) -> Result<T, ConfigError>) -> T {
    crate::telemetry::init();
    let sdk = sdk_config().await;
    build(&sdk).unwrap_or_else(|e| crate::telemetry::startup_failed(e))
}

/// `APP_CLIENT_ID`: the app client whose access tokens the HTTP functions accept.
pub fn app_client_id() -> Result<String, ConfigError> {
    required(&process_env, "APP_CLIENT_ID")
}

pub async fn sdk_config() -> SdkConfig {
    crate::sdk::sdk_config_from(&process_env).await
}

/// Every client's own bound on one call (all attempts): well inside the shortest Lambda
/// timeout of the functions that use it. The invocation's deadline bounds calls further
/// (see [`crate::deadline`]).
fn timeouts(attempt: Duration, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
}

/// The SDK's retry quota refills this many tokens a second (a retry costs 14 of the 500).
///
/// The SDK's default quota never refills by itself (no success reward, no refill rate): a
/// process that lived through a few seconds of a dependency outage (35 failed retries) would
/// retry nothing for the rest of its life, and a long-lived Lambda environment would then turn
/// every single throttle into an error. With a refill, the quota still stops retry storms
/// during an outage and comes back within seconds after it.
const RETRY_QUOTA_REFILL_PER_SECOND: f32 = 50.0;

/// One retry partition per service, with a quota that refills over time (see above).
fn retry_partition(service: &'static str) -> aws_sdk_dynamodb::config::retry::RetryPartition {
    use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(service)
        .token_bucket(
            TokenBucket::builder()
                .refill_rate(RETRY_QUOTA_REFILL_PER_SECOND)
                .build(),
        )
        .build()
}

fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeouts(Duration::from_secs(3), Duration::from_secs(8)))
        .retry_partition(retry_partition("teleperson-dynamodb"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The cascade's DynamoDB client: the same, but a throttled call is tried again after tens
/// of milliseconds, not the SDK's default of up to a second. Its writes go to the one
/// partition a user's rows share; waiting longer than the partition keeps unused capacity
/// would leave it idle (the cascade also adapts how many batches it keeps in flight).
fn user_data_client(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    let config = client
        .config()
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(25))
                .with_max_backoff(Duration::from_secs(2)),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn cognito(sdk: &SdkConfig) -> aws_sdk_cognitoidentityprovider::Client {
    let config = aws_sdk_cognitoidentityprovider::config::Builder::from(sdk)
        .timeout_config(timeouts(Duration::from_secs(3), Duration::from_secs(8)))
        .retry_partition(retry_partition("teleperson-cognito"))
        .build();
    aws_sdk_cognitoidentityprovider::Client::from_conf(config)
}

fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(timeouts(Duration::from_secs(3), Duration::from_secs(8)))
        .retry_partition(retry_partition("teleperson-sqs"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// `POST /admin/users/{id}/messages` and the message history.
///
/// Reads `PROFILES_TABLE`, `ADMIN_MESSAGES_TABLE`, `SECURITY_LOGS_TABLE`, `IDEMPOTENCY_TABLE`,
/// `MAIL_FROM`; optional `SUPPORT_REPLY_TO` (default `hello@teleperson.com`),
/// `SES_CONFIGURATION_SET`, `MESSAGES_PER_MINUTE` (default 0 = off).
pub fn messaging_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Messaging, ConfigError> {
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let messages_table = required(lookup, "ADMIN_MESSAGES_TABLE")?;
    let logs_table = required(lookup, "SECURITY_LOGS_TABLE")?;
    let idempotency_table = required(lookup, "IDEMPOTENCY_TABLE")?;
    let settings = MessagingSettings {
        mail_from: required(lookup, "MAIL_FROM")?,
        reply_to: optional(lookup, "SUPPORT_REPLY_TO").unwrap_or_else(|| DEFAULT_REPLY_TO.to_owned()),
        messages_per_minute: number(lookup, "MESSAGES_PER_MINUTE", 0)?,
        ..MessagingSettings::default()
    };
    let configuration_set = optional(lookup, "SES_CONFIGURATION_SET");
    Ok(messaging_with_mailer(
        dynamodb(sdk),
        SesMailer::new(sdk, configuration_set),
        SesSuppressionList::with_client(aws_sdk_sesv2::Client::from_conf(
            SesSuppressionList::client_config(sdk)
                .retry_partition(retry_partition("teleperson-ses-reads"))
                .build(),
        )),
        [profiles_table, messages_table, logs_table, idempotency_table],
        settings,
    ))
}

/// [`messaging_from`] with a mailer built by the caller (tests capture the SESv2 request).
pub fn messaging_from_with_mailer(
    lookup: Lookup<'_>, sdk: &SdkConfig, mailer: SesMailer,
) -> Result<Messaging, ConfigError> {
    let mut messaging = messaging_from(lookup, sdk)?;
    messaging.mailer = Arc::new(mailer);
    Ok(messaging)
}

fn messaging_with_mailer(
    client: aws_sdk_dynamodb::Client, mailer: SesMailer, suppressions: SesSuppressionList,
    [profiles, messages, logs, idempotency]: [String; 4], settings: MessagingSettings,
) -> Messaging {
    Messaging {
        profiles: Arc::new(DynamoProfiles::new(client.clone(), &profiles)),
        outbox: Arc::new(DynamoMessageOutbox::new(
            client.clone(),
            messages,
            &profiles,
            &logs,
        )),
        log: Arc::new(DynamoSecurityLog::new(client.clone(), logs)),
        mailer: Arc::new(mailer),
        suppressions: Arc::new(suppressions),
        idempotency: Arc::new(DynamoIdempotency::new(client.clone(), &idempotency)),
        limiter: Arc::new(DynamoRateLimiter::new(client, idempotency)),
        clock: Arc::new(SystemClock),
        settings,
    }
}

/// Each table of the cascade plan with its physical name (`TRANSACTIONS_TABLE`, ...).
fn cascade_tables(lookup: Lookup<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    CASCADE_PLAN
        .iter()
        .map(|t| required(lookup, t.env_var).map(|physical| (t.name.to_owned(), physical)))
        .collect()
}

/// The cascade's user-data adapter exactly as [`deletion_from`] builds it (its client and
/// retry settings, the cascade plan's tables), on the DynamoDB of `sdk`: for a harness that
/// keeps the user-data tables in a store of their own (the benchmark, on dynalite).
pub fn user_data_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<DynamoUserData, ConfigError> {
    Ok(DynamoUserData::new(
        user_data_client(&dynamodb(sdk)),
        cascade_tables(lookup)?,
    ))
}

/// `DELETE /admin/users/{id}`, the deletion status and preview, and the deletion worker.
///
/// Reads `PROFILES_TABLE`, `SECURITY_LOGS_TABLE`, `DELETION_JOBS_TABLE`, the table of every
/// entry of the cascade plan (`TRANSACTIONS_TABLE`, ..., `ADMIN_MESSAGES_TABLE`),
/// `USER_POOL_ID`, `DELETION_QUEUE_URL`; optional `DELETIONS_PER_HOUR` (default 0 = off) and,
/// only when that limit is on, `IDEMPOTENCY_TABLE` (where the limit's windows are counted);
/// optional `ACCESS_TOKEN_LIFETIME_SECONDS` (default 3600: when the late pass runs after the
/// lock-out) and `DELETION_LEASE_MARGIN_MS` (default 30000: how long past its budget a
/// runner's lease lasts, and so how soon a continuation takes over from a runner that died).
pub fn deletion_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Deletion, ConfigError> {
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let logs_table = required(lookup, "SECURITY_LOGS_TABLE")?;
    let jobs_table = required(lookup, "DELETION_JOBS_TABLE")?;
    let cascade = cascade_tables(lookup)?;
    let user_pool_id = required(lookup, "USER_POOL_ID")?;
    let queue_url = required(lookup, "DELETION_QUEUE_URL")?;
    let defaults = DeletionSettings::default();
    let settings = DeletionSettings {
        deletions_per_hour: number(lookup, "DELETIONS_PER_HOUR", 0)?,
        token_lifetime: Duration::from_secs(number(
            lookup,
            "ACCESS_TOKEN_LIFETIME_SECONDS",
            defaults.token_lifetime.as_secs(),
        )?),
        lease_margin: duration_ms(
            lookup,
            "DELETION_LEASE_MARGIN_MS",
            u64::try_from(defaults.lease_margin.as_millis()).unwrap_or(30_000),
        )?,
        ..defaults
    };
    let client = dynamodb(sdk);
    let limiter: Arc<dyn domain::ports::RateLimiter> = if settings.deletions_per_hour > 0 {
        Arc::new(DynamoRateLimiter::new(
            client.clone(),
            required(lookup, "IDEMPOTENCY_TABLE")?,
        ))
    } else {
        Arc::new(domain::ports::NoRateLimit)
    };
    Ok(Deletion {
        profiles: Arc::new(DynamoProfiles::new(client.clone(), &profiles_table)),
        jobs: Arc::new(DynamoDeletionJobs::new(
            client.clone(),
            jobs_table,
            &profiles_table,
        )),
        log: Arc::new(DynamoSecurityLog::new(client.clone(), logs_table)),
        auth: Arc::new(CognitoAuthDirectory::new(cognito(sdk), user_pool_id)),
        user_data: Arc::new(DynamoUserData::new(user_data_client(&client), cascade)),
        queue: Arc::new(SqsDeletionQueue::new(sqs(sdk), queue_url)),
        limiter,
        clock: Arc::new(SystemClock),
        settings,
    })
}

/// `GET /admin/users`. Reads `PROFILES_TABLE`, `SECURITY_LOGS_TABLE`.
pub fn directory_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Directory, ConfigError> {
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let logs_table = required(lookup, "SECURITY_LOGS_TABLE")?;
    let client = dynamodb(sdk);
    Ok(Directory {
        profiles: Arc::new(DynamoProfiles::new(client.clone(), profiles_table)),
        log: Arc::new(DynamoSecurityLog::new(client, logs_table)),
        clock: Arc::new(SystemClock),
    })
}

/// `GET /admin/audit` and `GET /admin/erasures`. Reads `PROFILES_TABLE`,
/// `SECURITY_LOGS_TABLE`, `DELETION_JOBS_TABLE`.
pub fn audit_log_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<AuditLog, ConfigError> {
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let logs_table = required(lookup, "SECURITY_LOGS_TABLE")?;
    let jobs_table = required(lookup, "DELETION_JOBS_TABLE")?;
    let client = dynamodb(sdk);
    let log = Arc::new(DynamoSecurityLog::new(client.clone(), logs_table));
    Ok(AuditLog {
        profiles: Arc::new(DynamoProfiles::new(client.clone(), &profiles_table)),
        log: log.clone(),
        trail: log,
        jobs: Arc::new(DynamoDeletionJobs::new(client, jobs_table, &profiles_table)),
        clock: Arc::new(SystemClock),
    })
}

pub fn audit_log_from_env(sdk: &SdkConfig) -> Result<AuditLog, ConfigError> {
    audit_log_from(&process_env, sdk)
}

/// The delivery-status update from SES events. Reads `ADMIN_MESSAGES_TABLE`.
pub fn delivery_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Delivery, ConfigError> {
    let messages_table = required(lookup, "ADMIN_MESSAGES_TABLE")?;
    Ok(Delivery {
        log: Arc::new(DynamoDeliveryLog::new(dynamodb(sdk), messages_table)),
        clock: Arc::new(SystemClock),
    })
}

/// The scheduled sweep. Reads `DELETION_JOBS_TABLE`, `ADMIN_MESSAGES_TABLE`,
/// `DELETION_QUEUE_URL`, and `PROFILES_TABLE` / `SECURITY_LOGS_TABLE` (named by the adapters;
/// the sweep reads and writes neither).
pub fn sweeper_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Sweeper, ConfigError> {
    let jobs_table = required(lookup, "DELETION_JOBS_TABLE")?;
    let messages_table = required(lookup, "ADMIN_MESSAGES_TABLE")?;
    let queue_url = required(lookup, "DELETION_QUEUE_URL")?;
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let logs_table = required(lookup, "SECURITY_LOGS_TABLE")?;
    let client = dynamodb(sdk);
    Ok(Sweeper {
        jobs: Arc::new(DynamoDeletionJobs::new(
            client.clone(),
            jobs_table,
            &profiles_table,
        )),
        queue: Arc::new(SqsDeletionQueue::new(sqs(sdk), queue_url)),
        outbox: Arc::new(DynamoMessageOutbox::new(
            client,
            messages_table,
            profiles_table,
            logs_table,
        )),
        clock: Arc::new(SystemClock),
        settings: SweepSettings::default(),
    })
}

/// The token revocation (Cognito sign-outs and disables). Reads `PROFILES_TABLE`,
/// `USER_POOL_ID`.
pub fn revocation_from(lookup: Lookup<'_>, sdk: &SdkConfig) -> Result<Revocation, ConfigError> {
    let profiles_table = required(lookup, "PROFILES_TABLE")?;
    let user_pool_id = required(lookup, "USER_POOL_ID")?;
    Ok(Revocation {
        profiles: Arc::new(DynamoProfiles::new(dynamodb(sdk), profiles_table)),
        auth: Arc::new(CognitoAuthDirectory::new(cognito(sdk), &user_pool_id)),
        clock: Arc::new(SystemClock),
        user_pool_id,
    })
}

pub fn revocation_from_env(sdk: &SdkConfig) -> Result<Revocation, ConfigError> {
    revocation_from(&process_env, sdk)
}

pub fn sweeper_from_env(sdk: &SdkConfig) -> Result<Sweeper, ConfigError> {
    sweeper_from(&process_env, sdk)
}

pub fn delivery_from_env(sdk: &SdkConfig) -> Result<Delivery, ConfigError> {
    delivery_from(&process_env, sdk)
}

pub fn messaging_from_env(sdk: &SdkConfig) -> Result<Messaging, ConfigError> {
    messaging_from(&process_env, sdk)
}

pub fn deletion_from_env(sdk: &SdkConfig) -> Result<Deletion, ConfigError> {
    deletion_from(&process_env, sdk)
}

pub fn directory_from_env(sdk: &SdkConfig) -> Result<Directory, ConfigError> {
    directory_from(&process_env, sdk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::BehaviorVersion;
    use std::collections::HashMap;

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build()
    }

    fn all() -> HashMap<&'static str, String> {
        let mut vars: HashMap<&'static str, String> = [
            "PROFILES_TABLE",
            "ADMIN_MESSAGES_TABLE",
            "SECURITY_LOGS_TABLE",
            "DELETION_JOBS_TABLE",
            "IDEMPOTENCY_TABLE",
            "USER_POOL_ID",
            "DELETION_QUEUE_URL",
            "MAIL_FROM",
        ]
        .into_iter()
        .map(|k| (k, format!("value-of-{k}")))
        .collect();
        for t in CASCADE_PLAN {
            vars.insert(t.env_var, format!("value-of-{}", t.env_var));
        }
        vars
    }

    fn lookup<'a>(vars: &'a HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + 'a {
        |name| vars.get(name).cloned()
    }

    #[test]
    fn every_constructor_builds_from_a_complete_environment() {
        let vars = all();
        let messaging = messaging_from(&lookup(&vars), &sdk()).unwrap();
        assert_eq!(messaging.settings.reply_to, "hello@teleperson.com");
        assert_eq!(messaging.settings.messages_per_minute, 0);
        assert!(deletion_from(&lookup(&vars), &sdk()).is_ok());
        assert!(directory_from(&lookup(&vars), &sdk()).is_ok());
        assert!(delivery_from(&lookup(&vars), &sdk()).is_ok());
        assert!(sweeper_from(&lookup(&vars), &sdk()).is_ok());
        assert!(revocation_from(&lookup(&vars), &sdk()).is_ok());
        let deletion = deletion_from(&lookup(&vars), &sdk()).unwrap();
        assert_eq!(deletion.settings.token_lifetime, Duration::from_secs(3600));
        assert_eq!(deletion.settings.lease_margin, Duration::from_secs(30));
    }

    #[test]
    fn the_deletion_timings_are_read_and_checked() {
        let mut vars = all();
        vars.insert("ACCESS_TOKEN_LIFETIME_SECONDS", "86400".into());
        vars.insert("DELETION_LEASE_MARGIN_MS", "1500".into());
        let deletion = deletion_from(&lookup(&vars), &sdk()).unwrap();
        assert_eq!(deletion.settings.token_lifetime, Duration::from_secs(86_400));
        assert_eq!(deletion.settings.lease_margin, Duration::from_millis(1500));
        vars.insert("ACCESS_TOKEN_LIFETIME_SECONDS", "1h".into());
        assert_eq!(
            deletion_from(&lookup(&vars), &sdk()).err().unwrap().variable,
            "ACCESS_TOKEN_LIFETIME_SECONDS"
        );
    }

    #[test]
    fn the_deletion_functions_need_the_idempotency_table_only_for_a_deletion_limit() {
        let mut vars = all();
        vars.remove("IDEMPOTENCY_TABLE");
        vars.remove("DELETIONS_PER_HOUR");
        assert!(deletion_from(&lookup(&vars), &sdk()).is_ok());
        vars.insert("DELETIONS_PER_HOUR", "0".into());
        assert!(deletion_from(&lookup(&vars), &sdk()).is_ok());
        vars.insert("DELETIONS_PER_HOUR", "5".into());
        let err = deletion_from(&lookup(&vars), &sdk()).err().unwrap();
        assert_eq!(err.to_string(), "missing environment variable IDEMPOTENCY_TABLE");
    }

    #[test]
    fn a_missing_required_variable_is_named_in_the_error() {
        let required_by_messaging = [
            "PROFILES_TABLE",
            "ADMIN_MESSAGES_TABLE",
            "SECURITY_LOGS_TABLE",
            "IDEMPOTENCY_TABLE",
            "MAIL_FROM",
        ];
        for name in required_by_messaging {
            let mut vars = all();
            vars.remove(name);
            let err = messaging_from(&lookup(&vars), &sdk()).err().unwrap();
            assert_eq!(err.to_string(), format!("missing environment variable {name}"));
            assert_eq!(err.variable, name);
        }
        let mut required_by_deletion = vec![
            "PROFILES_TABLE",
            "SECURITY_LOGS_TABLE",
            "DELETION_JOBS_TABLE",
            "USER_POOL_ID",
            "DELETION_QUEUE_URL",
        ];
        required_by_deletion.extend(CASCADE_PLAN.iter().map(|t| t.env_var));
        for name in required_by_deletion {
            let mut vars = all();
            vars.insert(name, "   ".into()); // blank is missing
            let err = deletion_from(&lookup(&vars), &sdk()).err().unwrap();
            assert_eq!(err.to_string(), format!("missing environment variable {name}"));
        }
        for name in ["PROFILES_TABLE", "SECURITY_LOGS_TABLE"] {
            let mut vars = all();
            vars.remove(name);
            assert_eq!(
                directory_from(&lookup(&vars), &sdk()).err().unwrap().variable,
                name
            );
        }
    }

    #[test]
    fn each_use_case_reads_only_what_it_needs() {
        let vars: HashMap<&'static str, String> = [
            ("PROFILES_TABLE", "p".to_owned()),
            ("SECURITY_LOGS_TABLE", "s".to_owned()),
        ]
        .into();
        assert!(directory_from(&lookup(&vars), &sdk()).is_ok());
        let vars: HashMap<&'static str, String> = [("ADMIN_MESSAGES_TABLE", "m".to_owned())].into();
        assert!(delivery_from(&lookup(&vars), &sdk()).is_ok());
        assert_eq!(
            delivery_from(&lookup(&HashMap::new()), &sdk())
                .err()
                .unwrap()
                .variable,
            "ADMIN_MESSAGES_TABLE"
        );
    }

    #[test]
    fn optional_settings_are_read_and_checked() {
        let mut vars = all();
        vars.insert("SUPPORT_REPLY_TO", "support@example.com".into());
        vars.insert("MESSAGES_PER_MINUTE", "12".into());
        let messaging = messaging_from(&lookup(&vars), &sdk()).unwrap();
        assert_eq!(messaging.settings.reply_to, "support@example.com");
        assert_eq!(messaging.settings.messages_per_minute, 12);

        vars.insert("MESSAGES_PER_MINUTE", "lots".into());
        let err = messaging_from(&lookup(&vars), &sdk()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid environment variable MESSAGES_PER_MINUTE: expected a whole number"
        );

        vars.insert("DELETIONS_PER_HOUR", "-1".into());
        assert_eq!(
            deletion_from(&lookup(&vars), &sdk()).err().unwrap().variable,
            "DELETIONS_PER_HOUR"
        );
    }

    #[test]
    fn durations_are_milliseconds_with_a_default() {
        let vars: HashMap<&'static str, String> = [("DELETE_BUDGET_MS", "1500".to_owned())].into();
        assert_eq!(
            duration_ms(&lookup(&vars), "DELETE_BUDGET_MS", 20_000).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            duration_ms(&lookup(&vars), "WORKER_BUDGET_MS", 60_000).unwrap(),
            Duration::from_secs(60)
        );
        let bad: HashMap<&'static str, String> = [("DELETE_BUDGET_MS", "20s".to_owned())].into();
        assert!(duration_ms(&lookup(&bad), "DELETE_BUDGET_MS", 1).is_err());
    }
}

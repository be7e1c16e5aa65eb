//! The real adapters against the emulator (moto server, started by `scripts/test.sh`):
//! a fresh set of tables from `infra/template.yaml`, a Cognito pool, an SQS queue and a
//! verified sender per test, the four functions' apps built by `aws_adapters::env` exactly as
//! the Lambdas build them, and plain SDK reads to check what was stored.

use crate::esm::{in_process_worker, EventSourceMapping};
use crate::world::Apps;
use aws_adapters::env::{
    audit_log_from, deletion_from, delivery_from, directory_from, messaging_from, sweeper_from,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use delete_user::DeleteApp;
use deletion_worker::WorkerApp;
use domain::cascade::{CascadeTable, CASCADE_PLAN};
use domain::delivery::Delivery;
use domain::model::Profile;
use domain::ports::Clock;
use domain::sweep::Sweeper;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use test_support::rows::{self, user_attr};
use test_support::ses::RecordedEmail;
use test_support::{cognito, create_tables, ses, sqs, Emulator, TableSet, TestEnv};

pub use test_support::rows::{s, str_attr, Item};

/// The sender every test verifies in the emulator.
pub const MAIL_FROM: &str = "no-reply@teleperson.com";

/// SDK settings like the Lambdas' (`aws_config` defaults: standard retries, 3 attempts,
/// 3.1 s connect timeout), with every service at `endpoint`.
pub fn sdk_for(endpoint: &str) -> SdkConfig {
    test_support::local_sdk(endpoint, "reliability-tests")
        .into_builder()
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .build(),
        )
        .build()
}

/// One test's slice of the emulator.
pub struct Cloud {
    pub emulator: Emulator,
    pub tables: TableSet,
    pub pool: String,
    pub queue: String,
    pub dynamo: aws_sdk_dynamodb::Client,
}

impl Cloud {
    /// Fresh tables, user pool and queue; the sender verified. Panics with instructions
    /// when the emulator is not running.
    pub async fn new() -> Cloud {
        let emulator = Emulator::start_or_panic();
        let (tables, pool, queue) = futures::join!(
            create_tables(emulator.sdk()),
            cognito::create_user_pool(&emulator),
            sqs::create_queue(&emulator)
        );
        ses::verify_sender(&emulator, MAIL_FROM).await;
        let dynamo = emulator.dynamodb();
        Cloud {
            emulator,
            tables,
            pool,
            queue,
            dynamo,
        }
    }

    /// Every variable the functions read, as `infra/template.yaml` sets them, with a lease
    /// margin of 1 s instead of 30 s (`DELETION_LEASE_MARGIN_MS`): a run's continuation is
    /// due 1 s after its budget, so that a job handed to the queue finishes within seconds.
    pub fn env(&self) -> TestEnv {
        self.tables
            .env()
            .set("USER_POOL_ID", &self.pool)
            .set("DELETION_QUEUE_URL", &self.queue)
            .set("MAIL_FROM", MAIL_FROM)
            .set("DELETION_LEASE_MARGIN_MS", "1000")
            .set("APP_CLIENT_ID", http_api::event::CLIENT_ID)
    }

    /// The four functions' apps on the emulator, directly.
    pub fn apps(&self) -> Apps {
        self.apps_with(self.emulator.sdk())
    }

    /// The apps with SDK clients built from `sdk` (for example through the fault proxy).
    pub fn apps_with(&self, sdk: &SdkConfig) -> Apps {
        let env = self.env();
        let lookup = env.lookup();
        let messaging = messaging_from(&lookup, sdk).expect("messaging configured");
        let deletion = deletion_from(&lookup, sdk).expect("deletion configured");
        let worker = deletion_from(&lookup, sdk).expect("deletion configured");
        let directory = directory_from(&lookup, sdk).expect("directory configured");
        let audit = audit_log_from(&lookup, sdk).expect("audit log configured");
        Apps {
            messaging,
            delete: DeleteApp {
                deletion,
                budget: Duration::from_secs(20),
                tokens: crate::world::tokens(),
            },
            worker: WorkerApp {
                deletion: worker,
                budget: Duration::from_secs(60),
            },
            directory,
            audit,
        }
    }

    /// The sweep, built by `aws_adapters::env` as the sweeper function builds it, with its
    /// clock `ahead` of the wall clock: the sweep that runs that much later.
    pub fn sweeper_ahead(&self, sdk: &SdkConfig, ahead: Duration) -> Sweeper {
        let env = self.env();
        let mut sweeper = sweeper_from(&env.lookup(), sdk).expect("sweeper configured");
        sweeper.clock = Arc::new(Ahead(chrono::Duration::from_std(ahead).expect("a short time")));
        sweeper
    }

    /// The delivery-events use case (SES events to message statuses), as its function builds it.
    pub fn delivery(&self) -> Delivery {
        delivery_from(&self.env().lookup(), self.emulator.sdk()).expect("delivery configured")
    }

    pub fn table(&self, env_var: &str) -> String {
        self.tables.name(env_var).to_owned()
    }

    pub async fn put_profile(&self, p: &Profile) {
        self.dynamo
            .put_item()
            .table_name(self.table("PROFILES_TABLE"))
            .set_item(Some(rows::profile_item(p)))
            .send()
            .await
            .expect("put_item profile");
    }

    /// A profile and its Cognito user, whose username is `id`. The profile names that
    /// username (`auth_username`): the emulator gives every Cognito user a random `sub`,
    /// which is not `id` (for a profile keyed by the real `sub`, see [`Cloud::add_user_by_sub`]).
    pub async fn add_user(&self, id: &str, role: &str, email: Option<&str>) {
        let mut profile = crate::world::profile(id, role, email);
        profile.auth_username = Some(id.to_owned());
        self.put_profile(&profile).await;
        cognito::create_user(&self.emulator, &self.pool, id, None).await;
    }

    /// A Cognito user signing in as `login`, and a profile keyed by its `sub` (the JWT's
    /// `sub` claim, as in production) without `auth_username`: the delete routine finds the
    /// username with `ListUsers` by `sub`. Returns the `sub`.
    pub async fn add_user_by_sub(&self, login: &str, role: &str, email: Option<&str>) -> String {
        cognito::create_user(&self.emulator, &self.pool, login, None).await;
        let (_, sub) = cognito::username_and_sub(&self.emulator, &self.pool, login).await;
        self.put_profile(&crate::world::profile(&sub, role, email)).await;
        sub
    }

    /// `n` rows of `user` in every table of the cascade plan.
    pub async fn seed_user_data(&self, user: &str, n: usize) {
        for table in CASCADE_PLAN {
            let rows: Vec<Item> = (0..n).map(|i| user_row(table, user, i)).collect();
            self.batch_put(&self.table(table.env_var), rows).await;
        }
    }

    pub async fn batch_put(&self, table: &str, items: Vec<Item>) {
        for batch in rows::put_batches(&items) {
            rows::write_batch(&self.dynamo, table, batch)
                .await
                .unwrap_or_else(|e| panic!("batch_write_item: {e}"));
        }
    }

    /// Every row of the table behind `env_var`.
    pub async fn scan(&self, env_var: &str) -> Vec<Item> {
        rows::scan(&self.dynamo, &self.table(env_var)).await
    }

    /// Rows of the table behind `env_var` whose string attribute `attr` is `value`.
    pub async fn rows_where(&self, env_var: &str, attr: &str, value: &str) -> Vec<Item> {
        self.scan(env_var)
            .await
            .into_iter()
            .filter(|i| str_attr(i, attr) == Some(value))
            .collect()
    }

    /// Every row of every table of the template: (env var, row).
    pub async fn scan_all(&self) -> Vec<(String, Item)> {
        let mut out = Vec::new();
        for env_var in self.tables.vars().keys() {
            for item in self.scan(env_var).await {
                out.push((env_var.clone(), item));
            }
        }
        out
    }

    /// Items of `user` left in each table of the cascade plan (consistent scans).
    pub async fn items_of(&self, user: &str) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for table in CASCADE_PLAN {
            let n = self.rows_where(table.env_var, user_attr(table), user).await.len();
            out.insert(table.name, n);
        }
        out
    }

    /// `security_logs` rows of `event_type` about `target`.
    pub async fn events_about(&self, target: &str, event_type: &str) -> Vec<Item> {
        self.scan("SECURITY_LOGS_TABLE")
            .await
            .into_iter()
            .filter(|e| {
                str_attr(e, "target_id") == Some(target) && str_attr(e, "event_type") == Some(event_type)
            })
            .collect()
    }

    /// The per-table counts of a job row (`deleted`, or `late` for the late pass).
    pub fn counts(row: &Item, attr: &str) -> BTreeMap<String, u64> {
        row.get(attr)
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The profile row of `user_id`.
    pub async fn profile_row(&self, user_id: &str) -> Option<Item> {
        rows::get(&self.dynamo, &self.table("PROFILES_TABLE"), "user_id", user_id).await
    }

    /// Panics when any `security_logs` row holds an `@` (an address of any kind) or one of
    /// `contents` (subjects, bodies). Returns the number of rows checked.
    pub async fn assert_security_logs_clean(&self, contents: &[&str]) -> usize {
        let rows = self.scan("SECURITY_LOGS_TABLE").await;
        for row in &rows {
            for value in all_strings(row) {
                assert!(
                    !value.contains('@'),
                    "a security_logs row holds an address: {row:?}"
                );
                for c in contents {
                    assert!(
                        !value.to_lowercase().contains(&c.to_lowercase()),
                        "a security_logs row holds message content: {row:?}"
                    );
                }
            }
        }
        rows.len()
    }

    /// Mail the emulator accepted for `address` (see [`ses::SES_MESSAGES_PATH`]).
    pub async fn emails_to(&self, address: &str) -> Vec<RecordedEmail> {
        ses::emails_to(&self.emulator, address).await
    }

    /// Every mail the emulator accepted, in one read.
    pub async fn emails(&self) -> Vec<RecordedEmail> {
        ses::sent_emails(&self.emulator).await
    }

    /// The deletion job row of `user_id` (consistent read).
    pub async fn job_row(&self, user_id: &str) -> Option<Item> {
        rows::get(
            &self.dynamo,
            &self.table("DELETION_JOBS_TABLE"),
            "user_id",
            user_id,
        )
        .await
    }

    /// The `status` of the deletion job of `user_id` (`in_progress`, `completed`), if any.
    pub async fn job_status(&self, user_id: &str) -> Option<String> {
        self.job_row(user_id)
            .await
            .and_then(|row| str_attr(&row, "status").map(str::to_owned))
    }

    /// Plays SQS's event source mapping for `worker` (in this process) until the deletion
    /// job of `user_id` is completed: whatever the routine queued, delays honoured, finishes
    /// it. Nobody sends the DELETE again. Returns the time it took.
    pub async fn finish_deletion(&self, worker: &WorkerApp, user_id: &str) -> Duration {
        self.finish_deletion_by(in_process_worker(worker), user_id).await
    }

    /// [`Cloud::finish_deletion`] with the worker binary.
    pub async fn finish_deletion_with(&self, worker: &lambda_sim::Function, user_id: &str) -> Duration {
        self.finish_deletion_by(crate::functions::worker_invoker(worker), user_id)
            .await
    }

    async fn finish_deletion_by<W, WF>(&self, invoke: W, user_id: &str) -> Duration
    where
        W: FnMut(serde_json::Value) -> WF,
        WF: std::future::Future<Output = Result<serde_json::Value, String>>,
    {
        let mut esm = EventSourceMapping::new(self.emulator.sqs(), &self.queue);
        let outcome = esm
            .run_until(
                Duration::from_secs(120),
                Duration::from_secs(3600),
                invoke,
                || async {},
                || async { self.job_status(user_id).await.as_deref() == Some("completed") },
            )
            .await;
        match outcome {
            Ok(took) => took,
            Err(e) => panic!(
                "the deletion of {user_id} did not finish: {e}; the job: {:?}; the queue: {:?}",
                self.job_row(user_id).await,
                test_support::sqs::counts(&self.emulator, &self.queue).await
            ),
        }
    }
}

/// The wall clock, this much ahead.
#[derive(Debug, Clone, Copy)]
pub struct Ahead(pub chrono::Duration);

impl Clock for Ahead {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.0
    }
}

/// An SES configuration set's `Send` event for one mail, as SNS hands its `Message` to the
/// delivery-events function.
pub fn ses_send_event(ses_message_id: &str, message_id: &str) -> String {
    serde_json::json!({
        "eventType": "Send",
        "mail": {
            "timestamp": domain::model::timestamp(chrono::Utc::now()),
            "messageId": ses_message_id,
            "source": MAIL_FROM,
            "tags": { "message_id": [message_id] }
        },
        "send": {}
    })
    .to_string()
}

/// Every string anywhere in a row, attribute names included.
pub fn all_strings(item: &Item) -> Vec<String> {
    fn walk(v: &AttributeValue, out: &mut Vec<String>) {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
            AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out);
            }),
            AttributeValue::L(l) => l.iter().for_each(|v| walk(v, out)),
            AttributeValue::Ss(l) | AttributeValue::Ns(l) => out.extend(l.iter().cloned()),
            AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
            _ => {}
        }
    }
    let mut out: Vec<String> = item.keys().cloned().collect();
    item.values().for_each(|v| walk(v, &mut out));
    out
}

/// A row of `user` in a table of the cascade plan.
pub fn user_row(table: &CascadeTable, user: &str, i: usize) -> Item {
    let mut item = Item::new();
    item.insert(user_attr(table).to_owned(), s(user));
    for k in table.key {
        item.entry((*k).to_owned())
            .or_insert_with(|| s(format!("{user}-{}-{i:04}", table.name)));
    }
    if table.name == "admin_messages" {
        item.insert(
            "created_at".into(),
            s(format!("2025-01-01T00:00:{:02}.{:03}Z", i % 60, i % 1000)),
        );
        item.insert("sender_id".into(), s("someone"));
        item.insert("status".into(), s("sent"));
        item.insert("subject".into(), s("s"));
        item.insert("body".into(), s("b"));
    } else {
        item.insert("payload".into(), s("data"));
    }
    item
}

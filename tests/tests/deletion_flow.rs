//! The delete routine as the `delete-user` and `deletion-worker` Lambdas build it
//! (`aws_adapters::env`), against the emulator: tables from `infra/`, Cognito, SQS.

use aws_adapters::env::deletion_from;
use domain::cascade::{CascadeTable, Lookup, CASCADE_PLAN};
use domain::deletion::{DeleteError, DeleteOutcome, Deletion, Resumed};
use domain::job::DeletionJob;
use domain::model::{Profile, RequestMeta};
use domain::types::{EmailAddress, UserId};
use integration_tests::{all_strings, item, profile, str_attr, user_id, Harness, Item};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use test_support::{cognito, sqs};

struct Flow {
    h: Harness,
    deletion: Deletion,
    pool: String,
    queue: String,
    admin: String,
    target: String,
    target_email: String,
    cognito_username: String,
    bystander: String,
}

/// Items seeded per cascade table for the target (5,000 in all) and for a bystander.
const BIG: &[(&str, usize)] = &[
    ("transactions", 2_000),
    ("followed_companies", 600),
    ("billing_records", 600),
    ("sessions", 1_000),
    ("help_requests", 500),
    ("admin_messages", 300),
];
const SMALL: &[(&str, usize)] = &[
    ("transactions", 40),
    ("followed_companies", 10),
    ("billing_records", 10),
    ("sessions", 20),
    ("help_requests", 10),
    ("admin_messages", 10),
];
const BYSTANDER_ITEMS: usize = 7;

fn row(table: &CascadeTable, user: &str, i: usize) -> Item {
    let id = format!("{user}-{i:05}");
    match table.name {
        "transactions" => item(&[
            ("user_id", user),
            ("transaction_id", &id),
            ("amount_cents", "1250"),
        ]),
        "followed_companies" => item(&[
            ("user_id", user),
            ("company_id", &id),
            ("followed_at", "2025-01-01"),
        ]),
        "billing_records" => item(&[("user_id", user), ("record_id", &id), ("plan", "pro")]),
        "sessions" => item(&[("session_id", &id), ("user_id", user), ("device", "phone")]),
        "help_requests" => item(&[("request_id", &id), ("user_id", user), ("topic", "billing")]),
        "admin_messages" => item(&[
            ("message_id", &id),
            ("recipient_id", user),
            ("sender_id", "someone"),
            ("created_at", &format!("2025-01-01T00:00:00.{:03}Z", i % 1000)),
            ("status", "sent"),
            ("subject", "s"),
            ("body", "b"),
        ]),
        other => panic!("no fixture rows for {other}"),
    }
}

fn user_attr(table: &CascadeTable) -> &'static str {
    match table.lookup {
        Lookup::PartitionKey { attr } | Lookup::Index { attr, .. } => attr,
    }
}

async fn flow(sizes: &[(&str, usize)]) -> Flow {
    let h = Harness::new().await;
    let pool = cognito::create_user_pool(&h.emulator).await;
    let queue = sqs::create_queue(&h.emulator).await;
    let admin = user_id("admin");
    let target = user_id("user");
    let bystander = user_id("other");
    let target_email = format!("  {}@Example.com ", target.to_uppercase());
    let cognito_username = format!("cognito-{target}");

    h.put_profile(&profile(&admin, Some("ada@teleperson.com"), "admin", "Ada Admin"))
        .await;
    let mut p = profile(&target, Some(&target_email), "user", "Ulla User");
    p.auth_username = Some(cognito_username.clone());
    h.put_profile(&p).await;
    h.put_profile(&profile(
        &bystander,
        Some("bo@example.com"),
        "user",
        "Bo Bystander",
    ))
    .await;
    cognito::create_user(&h.emulator, &pool, &cognito_username, Some("ulla@example.com")).await;
    cognito::create_user(&h.emulator, &pool, &bystander, None).await;

    let started = Instant::now();
    let mut seeded = 0;
    for (name, n) in sizes {
        let t = domain::cascade::table(name).unwrap();
        let mut rows: Vec<Item> = (0..*n).map(|i| row(t, &target, i)).collect();
        rows.extend((0..BYSTANDER_ITEMS).map(|i| row(t, &bystander, i)));
        seeded += rows.len();
        h.seed(&h.table(t.env_var), rows).await;
    }
    eprintln!(
        "seeded {seeded} items in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let env = h
        .tables
        .env()
        .set("USER_POOL_ID", &pool)
        .set("DELETION_QUEUE_URL", &queue);
    let deletion = deletion_from(&env.lookup(), h.emulator.sdk()).expect("configured");
    Flow {
        h,
        deletion,
        pool,
        queue,
        admin,
        target,
        target_email,
        cognito_username,
        bystander,
    }
}

impl Flow {
    fn meta(&self, request_id: &str) -> RequestMeta {
        RequestMeta {
            caller: Some(self.admin.clone()),
            request_id: request_id.to_owned(),
            source_ip: Some("198.51.100.4".into()),
            user_agent: Some("integration-tests".into()),
        }
    }

    fn target_id(&self) -> UserId {
        UserId::parse(&self.target).unwrap()
    }

    async fn delete(&self, request_id: &str, budget: Duration) -> Result<DeleteOutcome, DeleteError> {
        let deadline = tokio::time::Instant::now() + budget;
        self.deletion
            .delete(&self.meta(request_id), &self.target_id(), false, deadline)
            .await
    }

    /// What the deletion worker does: take messages off the queue and resume their jobs, each
    /// run with `budget`, until the job is completed. Returns the job and the runs it took.
    async fn work_the_queue(&self, budget: Duration) -> (DeletionJob, usize) {
        let mut runs = 0;
        loop {
            let bodies = sqs::drain(&self.h.emulator, &self.queue).await;
            assert!(
                !bodies.is_empty(),
                "an unfinished job always has a message on the queue"
            );
            for body in bodies {
                let msg: serde_json::Value = serde_json::from_str(&body).expect("a JSON message");
                let user = msg["user_id"].as_str().expect("user_id");
                assert!(msg["job_id"].is_string());
                runs += 1;
                let deadline = tokio::time::Instant::now() + budget;
                match self.deletion.resume(user, deadline).await.expect("resume") {
                    Resumed::Completed(job) => return (job, runs),
                    Resumed::Continued(_) => {}
                    other => panic!("unexpected worker outcome {other:?}"),
                }
            }
            assert!(runs < 2_000, "the worker makes progress");
        }
    }

    async fn security_events(&self) -> Vec<Item> {
        self.h
            .rows_where(&self.h.table("SECURITY_LOGS_TABLE"), "target_id", &self.target)
            .await
    }

    /// Everything DESIGN.md section 5 promises once a job is completed.
    async fn assert_fully_erased(&self, job: &DeletionJob, sizes: &[(&str, usize)]) {
        assert!(job.is_completed());
        let want: BTreeMap<String, u64> = CASCADE_PLAN
            .iter()
            .map(|t| {
                (
                    t.name.to_owned(),
                    sizes
                        .iter()
                        .find(|(n, _)| *n == t.name)
                        .map_or(0, |(_, c)| *c as u64),
                )
            })
            .collect();
        assert_eq!(job.counts(), want, "exact per-table counts");

        // Auth record gone; the bystander untouched.
        assert_eq!(
            cognito::user_enabled(&self.h.emulator, &self.pool, &self.cognito_username).await,
            None
        );
        assert_eq!(
            cognito::user_enabled(&self.h.emulator, &self.pool, &self.bystander).await,
            Some(true)
        );

        // The tombstone.
        let p = self
            .h
            .get(&self.h.table("PROFILES_TABLE"), "user_id", &self.target)
            .await
            .expect("tombstone");
        assert_eq!(str_attr(&p, "display_name"), Some(Profile::TOMBSTONE_NAME));
        assert!(!p.contains_key("email") && !p.contains_key("auth_username"));
        assert!(p.contains_key("deleted_at"));

        // Every user-data row is gone; the bystander's stay.
        for t in CASCADE_PLAN {
            let physical = self.h.table(t.env_var);
            let attr = user_attr(t);
            assert!(
                self.h.rows_where(&physical, attr, &self.target).await.is_empty(),
                "{} still has rows",
                t.name
            );
            assert_eq!(
                self.h.rows_where(&physical, attr, &self.bystander).await.len(),
                BYSTANDER_ITEMS,
                "{}",
                t.name
            );
        }

        // One deletion event with the hash, one completion event; no raw email anywhere.
        let events = self.security_events().await;
        let of = |kind: &str| {
            events
                .iter()
                .filter(|e| str_attr(e, "event_type") == Some(kind))
                .collect::<Vec<_>>()
        };
        let deleted = of("admin_deleted_user");
        assert_eq!(deleted.len(), 1, "exactly one admin_deleted_user");
        let e = deleted[0];
        let hash = EmailAddress::parse(&self.target_email).unwrap().sha256_hex();
        assert_eq!(str_attr(e, "target_email_sha256"), Some(hash.as_str()));
        assert_eq!(str_attr(e, "target_role"), Some("user"));
        assert_eq!(str_attr(e, "actor_id"), Some(self.admin.as_str()));
        assert_eq!(str_attr(e, "job_id"), Some(job.job_id.as_str()));
        assert_eq!(
            of("admin_deletion_completed").len(),
            1,
            "exactly one completion event"
        );
        let normal = EmailAddress::parse(&self.target_email)
            .unwrap()
            .as_str()
            .to_owned();
        for event in &events {
            for value in all_strings(event) {
                assert!(
                    !value.to_lowercase().contains(&normal),
                    "an audit row holds the email"
                );
            }
        }

        // The job row: the erasure receipt.
        let row = self
            .h
            .get(&self.h.table("DELETION_JOBS_TABLE"), "user_id", &self.target)
            .await
            .expect("job");
        assert_eq!(str_attr(&row, "status"), Some("completed"));
        let counts = row["deleted"].as_m().expect("deleted counts");
        assert_eq!(
            counts["transactions"].as_n().unwrap(),
            &want["transactions"].to_string()
        );
        assert!(
            !row.contains_key("auth_username"),
            "the job forgets the Cognito username"
        );
    }
}

fn total(sizes: &[(&str, usize)]) -> usize {
    sizes.iter().map(|(_, n)| n).sum()
}

#[tokio::test]
async fn a_user_with_five_thousand_items_is_erased_completely() {
    let f = flow(BIG).await;
    assert!(total(BIG) >= 5_000);
    let started = Instant::now();
    let outcome = f
        .delete("req-big", Duration::from_secs(600))
        .await
        .expect("delete");
    let took = started.elapsed().as_secs_f64();
    let DeleteOutcome::Completed(job) = outcome else {
        panic!("a generous budget finishes in one run: {outcome:?}");
    };
    eprintln!(
        "deleted {} items in {took:.1} s: {:.0} items/s (moto server, debug build)",
        total(BIG),
        total(BIG) as f64 / took
    );
    f.assert_fully_erased(&job, BIG).await;
    assert!(
        sqs::drain(&f.h.emulator, &f.queue).await.is_empty(),
        "nothing left for the worker"
    );

    // Asking again answers from the completed job? The user is deleted now.
    let again = f.delete("req-again", Duration::from_secs(30)).await;
    assert!(
        matches!(
            again,
            Err(DeleteError::Denied(domain::policy::Denial::UserDeleted))
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_one_second_budget_hands_the_rest_to_the_worker_which_finishes_it() {
    let f = flow(BIG).await;
    let outcome = f
        .delete("req-budget", Duration::from_secs(1))
        .await
        .expect("delete");
    let DeleteOutcome::InProgress(job) = &outcome else {
        panic!("5,000 items do not go in one second here: {outcome:?}");
    };
    assert!(!job.is_completed());
    // The user is already locked out and anonymised, or about to be: never half-visible.
    let started = Instant::now();
    let (done, runs) = f.work_the_queue(Duration::from_secs(1)).await;
    eprintln!(
        "the worker finished the job in {runs} one-second runs ({:.1} s, {:.0} items/s)",
        started.elapsed().as_secs_f64(),
        total(BIG) as f64 / started.elapsed().as_secs_f64()
    );
    assert_eq!(done.job_id, job.job_id);
    f.assert_fully_erased(&done, BIG).await;
}

#[tokio::test]
async fn ten_concurrent_deletes_of_one_user_make_one_job_and_one_audit_event() {
    let f = flow(SMALL).await;
    let request_ids: Vec<String> = (0..10).map(|i| format!("req-{i}")).collect();
    let results =
        futures::future::join_all(request_ids.iter().map(|id| f.delete(id, Duration::from_secs(60)))).await;
    let mut job_ids = Vec::new();
    for r in &results {
        match r {
            Ok(outcome) => job_ids.push(outcome.job().job_id.clone()),
            // A request that arrives after the job completed sees a deleted user.
            Err(DeleteError::Denied(domain::policy::Denial::UserDeleted)) => {}
            Err(e) => panic!("unexpected answer {e:?}"),
        }
    }
    assert!(!job_ids.is_empty());
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "every request joined the same job");

    // Whatever is left (if a runner paused) is finished by the worker.
    let job = loop {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        match f.deletion.resume(&f.target, deadline).await.expect("resume") {
            Resumed::Completed(job) => break job,
            Resumed::Continued(_) | Resumed::Busy => tokio::time::sleep(Duration::from_millis(50)).await,
            Resumed::NoJob => panic!("the job exists"),
        }
    };
    assert_eq!(job.job_id, job_ids[0]);
    let jobs = f.h.scan(&f.h.table("DELETION_JOBS_TABLE")).await;
    assert_eq!(jobs.len(), 1, "one job row");
    f.assert_fully_erased(&job, SMALL).await;
}

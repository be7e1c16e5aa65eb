//! The delete routine as the `delete-user`, `deletion-worker` and `sweeper` Lambdas build it
//! (`aws_adapters::env`), against the emulator: tables from `infra/`, Cognito, SQS.
//!
//! This file also runs in the `dynalite` stage of `scripts/test.sh`: the user-data tables (and
//! so the whole cascade: paging, batch deletes, the re-queries of index tables with their
//! consistent existence checks, the counts) are then in dynalite, which is strict where moto
//! is lenient; profiles, jobs, the audit log, Cognito and SQS stay on moto.

use domain::cascade::CASCADE_PLAN;
use domain::deletion::{Continuation, Continued, DeleteError, DeleteOutcome, Deletion};
use domain::job::{DeletionJob, Step};
use domain::model::{Profile, RequestMeta};
use domain::policy::Denial;
use domain::ports::ManualClock;
use domain::sweep::Sweeper;
use domain::types::{EmailAddress, UserId};
use integration_tests::{
    all_strings, item, profile, str_attr, user_attr, user_data_row, user_id, Harness, Item,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::faults::{self, Lag, LaggingIndex};
use test_support::{cognito, sqs, TestEnv};

struct Flow {
    h: Harness,
    env: TestEnv,
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

/// How the target's Cognito user is named.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The profile names the username (`auth_username`).
    Named,
    /// A federated user (`Google_<id>`): the profile id is the sub, and the profile has no
    /// `auth_username`, so the routine resolves the username by sub with `ListUsers`.
    BySub,
    /// The profile names a username that no longer exists (renamed): the lock-out finds
    /// nobody, and the routine resolves the user again by sub.
    Stale,
}

/// `ACCESS_TOKEN_LIFETIME_SECONDS` of these flows: no late pass comes due while a test runs
/// (the late-pass test moves the clock).
const TOKEN_LIFETIME: &str = "3600";

async fn flow(sizes: &[(&str, usize)]) -> Flow {
    flow_with(sizes, Auth::Named).await
}

async fn flow_with(sizes: &[(&str, usize)], auth: Auth) -> Flow {
    let h = Harness::new().await;
    let pool = cognito::create_user_pool(&h.emulator).await;
    let queue = sqs::create_queue(&h.emulator).await;
    let admin = user_id("admin");
    let bystander = user_id("other");
    let mut target = user_id("user");
    let mut cognito_username = format!("cognito-{target}");
    if auth != Auth::Named {
        cognito_username = test_support::unique("Google_");
        cognito::create_user(&h.emulator, &pool, &cognito_username, Some("ulla@example.com")).await;
        target = cognito::username_and_sub(&h.emulator, &pool, &cognito_username)
            .await
            .1;
    } else {
        cognito::create_user(&h.emulator, &pool, &cognito_username, Some("ulla@example.com")).await;
    }
    let target_email = format!("  {}@Example.com ", target.to_uppercase());

    h.put_profile(&profile(&admin, Some("ada@teleperson.com"), "admin", "Ada Admin"))
        .await;
    let mut p = profile(&target, Some(&target_email), "user", "Ulla User");
    p.auth_username = match auth {
        Auth::Named => Some(cognito_username.clone()),
        Auth::BySub => None,
        Auth::Stale => Some(format!("renamed-{target}")),
    };
    h.put_profile(&p).await;
    h.put_profile(&profile(
        &bystander,
        Some("bo@example.com"),
        "user",
        "Bo Bystander",
    ))
    .await;
    cognito::create_user(&h.emulator, &pool, &bystander, None).await;

    let started = Instant::now();
    let mut seeded = 0;
    for (name, n) in sizes {
        let t = domain::cascade::table(name).unwrap();
        let mut rows: Vec<Item> = (0..*n).map(|i| user_data_row(t, &target, i)).collect();
        rows.extend((0..BYSTANDER_ITEMS).map(|i| user_data_row(t, &bystander, i)));
        seeded += rows.len();
        h.seed(&h.table(t.env_var), rows).await;
    }
    eprintln!(
        "seeded {seeded} items in {:.1} s (user-data tables on {})",
        started.elapsed().as_secs_f64(),
        h.user_data_backend()
    );

    // A runner's lease lasts half a second past its budget, so a continuation takes over
    // within seconds of a run that died (30 s in production).
    let env = h
        .tables
        .env()
        .set("USER_POOL_ID", &pool)
        .set("DELETION_QUEUE_URL", &queue)
        .set("DELETION_LEASE_MARGIN_MS", "500")
        .set("ACCESS_TOKEN_LIFETIME_SECONDS", TOKEN_LIFETIME);
    let deletion = h.deletion(&env);
    Flow {
        h,
        env,
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

fn meta_of(caller: &str, request_id: &str) -> RequestMeta {
    RequestMeta {
        caller: Some(caller.to_owned()),
        request_id: request_id.to_owned(),
        source_ip: Some("198.51.100.4".into()),
        user_agent: Some("integration-tests".into()),
        token_issued_at: None,
    }
}

/// The job of a deletion that completed in one run.
fn completed_in_one_run(outcome: DeleteOutcome) -> DeletionJob {
    let DeleteOutcome::Completed(job) = outcome else {
        panic!("completed in one run: {outcome:?}");
    };
    job
}

impl Flow {
    fn meta(&self, request_id: &str) -> RequestMeta {
        meta_of(&self.admin, request_id)
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

    /// Deletes the target with a 60 s budget, which is enough to finish in one run.
    async fn delete_in_one_run(&self, request_id: &str) -> DeletionJob {
        let outcome = self.delete(request_id, Duration::from_secs(60)).await;
        completed_in_one_run(outcome.expect("delete"))
    }

    async fn stored_job(&self) -> Option<DeletionJob> {
        self.deletion.jobs.get(&self.target).await.unwrap()
    }

    /// What the deletion worker does: take the continuations off the queue as they become
    /// visible (delayed ones included) and continue their jobs, each run with `budget`, until
    /// the job is completed. Returns the job and the runs it took. The job never waits for
    /// anyone: while it is not completed, a continuation is always queued.
    async fn work_the_queue(&self, budget: Duration) -> (DeletionJob, usize) {
        let mut runs = 0;
        let started = Instant::now();
        loop {
            if let Some(job) = self.stored_job().await.filter(DeletionJob::is_completed) {
                return (job, runs);
            }
            let bodies = sqs::drain(&self.h.emulator, &self.queue).await;
            if bodies.is_empty() {
                let counts = sqs::counts(&self.h.emulator, &self.queue).await;
                assert!(
                    counts.total() > 0,
                    "an unfinished job always has a continuation queued"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for body in bodies {
                let continuation: Continuation = serde_json::from_str(&body).expect("a continuation");
                assert_eq!(continuation.user_id, self.target);
                runs += 1;
                let deadline = tokio::time::Instant::now() + budget;
                let outcome = self
                    .deletion
                    .continue_job(&continuation, deadline)
                    .await
                    .expect("the continuation is handled");
                assert!(
                    !matches!(outcome, Continued::Failed { .. }),
                    "a step failed: {outcome:?}"
                );
            }
            assert!(runs < 2_000, "the worker makes progress");
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "the worker finished the job in time"
            );
        }
    }

    async fn security_events(&self) -> Vec<Item> {
        self.h
            .rows_where(&self.h.table("SECURITY_LOGS_TABLE"), "target_id", &self.target)
            .await
    }

    /// Everything the delete routine promises once a job is completed.
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
        assert_eq!(str_attr(&p, "deletion_job_id"), Some(job.job_id.as_str()));

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

        // Only now the counts: a row left behind is the worse failure, so it is reported first.
        assert_eq!(job.counts(), want, "exact per-table counts");

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
            .normalized()
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

    fn sweeper(&self) -> Sweeper {
        aws_adapters::env::sweeper_from(&self.env.lookup(), &self.h.sdk).expect("the sweep is configured")
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
        "deleted {} items in {took:.1} s: {:.0} items/s (user data on {}, debug build)",
        total(BIG),
        total(BIG) as f64 / took,
        f.h.user_data_backend()
    );
    f.assert_fully_erased(&job, BIG).await;
    assert_eq!(job.step, Step::LatePass, "completed; the late pass comes later");
    // The run queued its own continuation before it ran a step: delayed past its lease, it
    // would have finished the job had this run died.
    assert!(sqs::counts(&f.h.emulator, &f.queue).await.delayed >= 1);

    // Asking again: the user is deleted now.
    let again = f.delete("req-again", Duration::from_secs(30)).await;
    assert!(
        matches!(again, Err(DeleteError::Denied(Denial::UserDeleted))),
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
async fn a_request_that_dies_mid_cascade_is_finished_by_the_continuation_it_queued_first() {
    let f = flow(BIG).await;
    // The request runs with a 5 s budget and dies (its future dropped at an await, as a
    // Lambda that timed out or crashed stops) as soon as the cascade has deleted something.
    let request = f.delete("req-dies", Duration::from_secs(5));
    let watch = async {
        loop {
            if let Some(job) = f.stored_job().await {
                if job.step == Step::Cascade && job.counts().values().sum::<u64>() > 0 {
                    return job;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let seen = tokio::select! {
        outcome = request => panic!("the request was meant to die mid-cascade: {outcome:?}"),
        job = watch => job,
    };
    assert!(seen.lease.is_some(), "it died holding the lease");
    // Nothing but the queue is left to finish it: the continuation it queued before its first
    // step becomes visible once its lease has run out.
    let counts = sqs::counts(&f.h.emulator, &f.queue).await;
    assert_eq!((counts.visible, counts.delayed), (0, 1), "{counts:?}");
    let (done, runs) = f.work_the_queue(Duration::from_secs(30)).await;
    assert!(runs >= 1);
    assert_eq!(done.job_id, seen.job_id);
    f.assert_fully_erased(&done, BIG).await;
}

#[tokio::test]
async fn a_job_whose_continuations_were_all_lost_is_queued_by_the_sweep_and_finished() {
    let f = flow(SMALL).await;
    // The request pauses at once (no budget left), and every continuation is lost.
    let outcome = f.delete("req-lost", Duration::ZERO).await.expect("delete");
    let DeleteOutcome::InProgress(job) = outcome else {
        panic!("no budget, no progress: {outcome:?}");
    };
    sqs::purge(&f.h.emulator, &f.queue).await;
    assert_eq!(sqs::counts(&f.h.emulator, &f.queue).await.total(), 0);

    // The sweep runs before the job is due: nothing to do yet.
    let report = f.sweeper().run().await.expect("sweep");
    assert!(report.queued.is_empty(), "{report:?}");
    // Minutes later the job is due (its lease ran out a grace ago): the sweep queues it.
    let mut sweeper = f.sweeper();
    sweeper.clock = Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::minutes(5),
    ));
    let report = sweeper.run().await.expect("sweep");
    assert_eq!(report.queued, vec![job.job_id.clone()]);
    let (done, _) = f.work_the_queue(Duration::from_secs(30)).await;
    assert_eq!(done.job_id, job.job_id);
    f.assert_fully_erased(&done, SMALL).await;
}

#[tokio::test]
async fn the_late_pass_removes_rows_written_with_an_old_token_and_the_job_then_leaves_the_open_index() {
    let f = flow(SMALL).await;
    let job = f.delete_in_one_run("req-late").await;
    assert_eq!(
        job.step,
        Step::LatePass,
        "the late pass is due an hour after the lock-out"
    );
    f.assert_fully_erased(&job, SMALL).await;
    let open = f.deletion.jobs.open(100).await.unwrap();
    assert!(
        open.iter().any(|o| o.job_id == job.job_id && o.completed),
        "waiting for its late pass: {open:?}"
    );
    // Before it is due, neither the sweep nor a continuation runs it.
    assert!(!f.sweeper().run().await.unwrap().queued.contains(&job.job_id));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    assert_eq!(
        f.deletion
            .continue_job(&Continuation::of(&job), deadline)
            .await
            .unwrap(),
        Continued::Nothing
    );

    // Requests made with an access token issued before the lock-out wrote more rows.
    let late: &[(&str, usize)] = &[("transactions", 3), ("sessions", 2), ("admin_messages", 1)];
    for (name, n) in late {
        let t = domain::cascade::table(name).unwrap();
        let rows = (0..*n).map(|i| user_data_row(t, &f.target, 10_000 + i)).collect();
        f.h.seed(&f.h.table(t.env_var), rows).await;
    }
    // An hour and a bit later (the longest token lifetime has passed since the lock-out), the
    // sweep finds the late pass due and queues it; the worker runs it.
    let later = Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::minutes(61),
    ));
    let mut sweeper = f.sweeper();
    sweeper.clock = later.clone();
    let report = sweeper.run().await.expect("sweep");
    assert_eq!(report.queued, vec![job.job_id.clone()]);
    let bodies = sqs::drain(&f.h.emulator, &f.queue).await;
    assert_eq!(bodies.len(), 1, "the sweep's continuation");
    let continuation: Continuation = serde_json::from_str(&bodies[0]).unwrap();
    let mut worker = f.deletion.clone();
    worker.clock = later.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    assert_eq!(
        worker.continue_job(&continuation, deadline).await.unwrap(),
        Continued::Completed
    );

    let done = f.stored_job().await.unwrap();
    assert_eq!(done.step, Step::Done);
    assert_eq!(done.counts(), job.counts(), "the receipt's counts stay");
    let late_counts: BTreeMap<String, u64> = done.late_counts().into_iter().filter(|(_, n)| *n > 0).collect();
    let want: BTreeMap<String, u64> = late.iter().map(|(t, n)| ((*t).to_owned(), *n as u64)).collect();
    assert_eq!(late_counts, want);
    for t in CASCADE_PLAN {
        assert!(
            f.h.rows_where(&f.h.table(t.env_var), user_attr(t), &f.target)
                .await
                .is_empty(),
            "{}",
            t.name
        );
        assert_eq!(
            f.h.rows_where(&f.h.table(t.env_var), user_attr(t), &f.bystander)
                .await
                .len(),
            BYSTANDER_ITEMS,
            "{}",
            t.name
        );
    }
    let row =
        f.h.get(&f.h.table("DELETION_JOBS_TABLE"), "user_id", &f.target)
            .await
            .unwrap();
    assert_eq!(row["late"].as_m().unwrap()["transactions"].as_n().unwrap(), "3");
    assert!(!f
        .deletion
        .jobs
        .open(100)
        .await
        .unwrap()
        .iter()
        .any(|o| o.job_id == job.job_id));
    // Later sweeps find nothing to do for it, and a stray continuation does nothing.
    assert!(sweeper.run().await.unwrap().queued.is_empty());
    assert_eq!(
        worker.continue_job(&continuation, deadline).await.unwrap(),
        Continued::Completed
    );
    assert_eq!(f.stored_job().await.unwrap(), done);
}

/// GSI reads are eventually consistent. Here the sessions index is behind its table: the
/// first query misses a session written just before (not in the index yet), and the
/// re-queries still show one that was deleted. The routine queries an index table again until
/// a query finds nothing, and checks what a re-query finds against the table itself
/// (`existing`, a consistent BatchGetItem): the late row is erased, the stale entry is neither
/// deleted again nor counted twice.
#[tokio::test]
async fn an_index_that_lags_behind_its_table_neither_hides_a_row_nor_counts_one_twice() {
    let f = flow(SMALL).await;
    let t = domain::cascade::table("sessions").unwrap();
    let key = |i: usize| item(&[("session_id", &format!("{}-{i:05}", f.target))]);
    let lagging = LaggingIndex::new(f.h.table(t.env_var), "by_user")
        .on_query(
            1,
            Lag {
                hide: vec![key(7)],
                show: vec![],
            },
        )
        .on_query(
            2,
            Lag {
                hide: vec![],
                show: vec![key(3)],
            },
        )
        .on_query(
            3,
            Lag {
                hide: vec![],
                show: vec![key(3)],
            },
        );
    let mut deletion = f.deletion.clone();
    deletion.user_data =
        Arc::new(f.h.user_data_on(faults::dynamodb_client_with(&f.h.user_data_sdk, lagging.clone())));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let outcome = deletion
        .delete(&f.meta("req-lag"), &f.target_id(), false, deadline)
        .await
        .expect("delete");
    let job = completed_in_one_run(outcome);
    // One pass that missed session 7; a re-query that found it (and the stale 3); one that
    // found only the stale 3 (a pause for the index to catch up); one that found nothing.
    assert_eq!(lagging.queries(), 4);
    f.assert_fully_erased(&job, SMALL).await;
}

#[tokio::test]
async fn a_federated_user_whose_username_is_not_the_user_id_is_found_by_sub_and_erased() {
    let f = flow_with(SMALL, Auth::BySub).await;
    assert!(f.cognito_username.starts_with("Google_"));
    let job = f.delete_in_one_run("req-fed").await;
    f.assert_fully_erased(&job, SMALL).await;
}

#[tokio::test]
async fn a_stale_username_is_resolved_again_by_sub_before_the_lock_out() {
    let f = flow_with(SMALL, Auth::Stale).await;
    let job = f.delete_in_one_run("req-stale").await;
    // The user was locked out and deleted under its real username.
    f.assert_fully_erased(&job, SMALL).await;
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
            // A request that reads the profile after the job exists sees a deleted user.
            Err(DeleteError::Denied(Denial::UserDeleted)) => {}
            Err(e) => panic!("unexpected answer {e:?}"),
        }
    }
    assert!(!job_ids.is_empty());
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "every request joined the same job");

    // Whatever is left (if a runner paused) is finished by the worker.
    let (job, _) = f.work_the_queue(Duration::from_secs(60)).await;
    assert_eq!(job.job_id, job_ids[0]);
    let jobs = f.h.scan(&f.h.table("DELETION_JOBS_TABLE")).await;
    assert_eq!(jobs.len(), 1, "one job row");
    f.assert_fully_erased(&job, SMALL).await;
}

/// Two owners press delete on each other at the same moment (a third owner exists, so
/// neither is the last). Exactly one job is created; the other request is refused as coming
/// from a deleted user. Run a few times: which one wins is up to the race (on moto, with the
/// harness isolating writes the way DynamoDB does; see `test_support::isolation`).
#[tokio::test]
async fn two_owners_deleting_each_other_at_once_make_one_job_and_the_other_is_refused() {
    let f = flow(&[]).await;
    let third = user_id("owner-c");
    f.h.put_profile(&profile(&third, Some("c@teleperson.com"), "owner", "Cy Owner"))
        .await;
    for round in 0..5 {
        let a = user_id("owner-a");
        let b = user_id("owner-b");
        for (id, name) in [(&a, "Ann Owner"), (&b, "Bo Owner")] {
            let mut p = profile(id, Some("o@teleperson.com"), "owner", name);
            p.auth_username = Some(id.clone());
            f.h.put_profile(&p).await;
            cognito::create_user(&f.h.emulator, &f.pool, id, None).await;
        }
        let deletes = |actor: &str, target: &str| {
            let meta = meta_of(actor, &format!("req-{round}-{actor}"));
            let target = UserId::parse(target).unwrap();
            let deletion = f.deletion.clone();
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                deletion.delete(&meta, &target, true, deadline).await
            }
        };
        let (ab, ba) = futures::join!(deletes(&a, &b), deletes(&b, &a));
        let (deleted, survivor) = match (&ab, &ba) {
            (Ok(_), Err(DeleteError::Denied(Denial::Unauthenticated))) => (&b, &a),
            (Err(DeleteError::Denied(Denial::Unauthenticated)), Ok(_)) => (&a, &b),
            other => panic!("round {round}: one job, the other refused; got {other:?}"),
        };
        let job = f.deletion.jobs.get(deleted).await.unwrap().expect("the one job");
        assert!(job.is_completed(), "round {round}: {:?}", job.step);
        assert_eq!(
            cognito::user_enabled(&f.h.emulator, &f.pool, deleted).await,
            None,
            "round {round}: the deleted owner's account is gone"
        );
        assert_eq!(
            f.deletion.jobs.get(survivor).await.unwrap(),
            None,
            "round {round}"
        );
        let p =
            f.h.get(&f.h.table("PROFILES_TABLE"), "user_id", survivor)
                .await
                .unwrap();
        assert_eq!(str_attr(&p, "role"), Some("owner"));
        assert!(!p.contains_key("deleted_at") && !p.contains_key("deletion_job_id"));
        assert_eq!(
            cognito::user_enabled(&f.h.emulator, &f.pool, survivor).await,
            Some(true),
            "round {round}: the survivor keeps their account"
        );
    }
}

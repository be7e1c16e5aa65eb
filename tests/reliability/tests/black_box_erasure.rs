//! Black-box erasures: the built binaries of delete-user, deletion-worker, sweeper and
//! message-user under `lambda-sim`, against the emulator, with nobody sending a second
//! request. The test plays what the Lambda service would do and nothing more: SQS's event
//! source mapping hands the queue's continuations to the worker binary (delays and
//! visibility honoured, acknowledged records deleted, failed ones left), and EventBridge's
//! schedule invokes the sweeper binary.
//!
//! - A delete-user process killed (`SIGKILL`) mid-cascade on a user with 3,000 items.
//! - DynamoDB refusing every call for 3 s mid-cascade (the fault proxy, through
//!   `AWS_ENDPOINT_URL_DYNAMODB`).
//! - Two owners deleting each other from two delete-user processes at once.
//! - An admin whose deletion has just been created sends a message.
//!
//! Every function's DynamoDB goes through [`FaultProxy`], which isolates `TransactWriteItems`
//! as DynamoDB does (moto does not). Small settings keep each run to seconds: a 5 s delete
//! budget, a 2 s worker budget, a 1 s lease margin, the sweep every second, a 15 s access
//! token lifetime (the late pass). Needs the emulator: `scripts/test.sh`.

use http_api::event::ApiEvent;
use lambda_sim::{Function, SimError};
use reliability_tests::cloud::{all_strings, str_attr, Cloud};
use reliability_tests::esm::EventSourceMapping;
use reliability_tests::functions::{
    assert_logs_clean, invoke, lambda_env, start_with_timeout, sweep_invoker, worker_invoker,
};
use reliability_tests::logs;
use reliability_tests::proxy::{Fault, FaultProxy};
use reliability_tests::world;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use test_support::cognito;

/// Items of the target per table of the cascade plan (six tables: 3,000 items).
const ITEMS_PER_TABLE: usize = 500;
const TIMEOUT: Duration = Duration::from_secs(30);

/// One erasure's world: the emulator, the proxy every function's DynamoDB goes through, an
/// owner, a target known by its Cognito `sub` with thousands of items, and a bystander.
struct World {
    cloud: Cloud,
    proxy: FaultProxy,
    owner: String,
    target: String,
    login: String,
    email: String,
    bystander: String,
}

impl World {
    async fn new(items: usize) -> World {
        logs::capture();
        let cloud = Cloud::new().await;
        let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
        let owner = test_support::unique("owner-");
        let login = test_support::unique("login-");
        let email = format!("{login}@erasure-example.com");
        let bystander = test_support::unique("other-");
        logs::forbid([&email]);
        cloud.add_user(&owner, "owner", None).await;
        let target = cloud.add_user_by_sub(&login, "user", Some(&email)).await;
        cloud.add_user(&bystander, "user", None).await;
        cloud.seed_user_data(&target, items).await;
        cloud.seed_user_data(&bystander, 3).await;
        World {
            cloud,
            proxy,
            owner,
            target,
            login,
            email,
            bystander,
        }
    }

    /// The template's environment, DynamoDB through the proxy, and the small settings.
    fn env(&self) -> BTreeMap<String, String> {
        let mut env = lambda_env(&self.cloud);
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), self.proxy.endpoint());
        env.insert("DELETE_BUDGET_MS".into(), "5000".into());
        env.insert("WORKER_BUDGET_MS".into(), "2000".into());
        env.insert("ACCESS_TOKEN_LIFETIME_SECONDS".into(), "15".into());
        env
    }

    async fn job(&self) -> Option<reliability_tests::cloud::Item> {
        self.cloud.job_row(&self.target).await
    }

    /// Items the cascade has counted as deleted so far (0 before the cascade).
    async fn deleted_so_far(&self) -> u64 {
        self.job()
            .await
            .map_or(0, |row| Cloud::counts(&row, "deleted").values().sum())
    }

    /// Waits until the job is in its cascade with items deleted and items left.
    async fn wait_mid_cascade(&self) {
        let total = (ITEMS_PER_TABLE * domain::cascade::CASCADE_PLAN.len()) as u64;
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let step = self
                .job()
                .await
                .and_then(|r| str_attr(&r, "step").map(str::to_owned));
            let deleted = self.deleted_so_far().await;
            if step.as_deref() == Some("cascade") && deleted > 0 && deleted < total {
                return;
            }
            assert!(
                Instant::now() < give_up,
                "the cascade never got under way: step {step:?}, {deleted} deleted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Plays SQS's event source mapping for `worker` and the sweep's schedule for `sweeper`
    /// until the job is done (its late pass too). Returns the time to completed and to done,
    /// from `since`.
    async fn run_until_done(
        &self, worker: &Function, sweeper: &Function, since: Instant,
    ) -> (Duration, Duration) {
        let mut esm = EventSourceMapping::new(self.cloud.emulator.sqs(), &self.cloud.queue);
        let completed = std::sync::Mutex::new(None);
        let outcome = esm
            .run_until(
                Duration::from_secs(150),
                Duration::from_secs(1),
                worker_invoker(worker),
                sweep_invoker(sweeper),
                || async {
                    let row = self.job().await;
                    let status = row.as_ref().and_then(|r| str_attr(r, "status"));
                    if status == Some("completed") {
                        completed.lock().unwrap().get_or_insert_with(|| since.elapsed());
                    }
                    row.as_ref().and_then(|r| str_attr(r, "step")) == Some("done")
                },
            )
            .await;
        if let Err(e) = outcome {
            panic!("the erasure did not finish: {e}; the job: {:?}", self.job().await);
        }
        println!("  event source mapping: {:?}", esm.stats);
        assert!(
            esm.stats.dead_letters.is_empty(),
            "a continuation was dead-lettered"
        );
        let done = since.elapsed();
        let completed = completed.into_inner().unwrap().unwrap_or(done);
        (completed, done)
    }

    /// Everything of the target is gone, counted exactly once, audited once; the bystander
    /// keeps everything.
    async fn assert_erased_exactly(&self) {
        let left = self.cloud.items_of(&self.target).await;
        assert!(left.values().all(|n| *n == 0), "items left: {left:?}");
        let kept = self.cloud.items_of(&self.bystander).await;
        assert!(
            kept.values().all(|n| *n == 3),
            "the bystander lost data: {kept:?}"
        );
        let job = self.job().await.expect("the job");
        let counts = Cloud::counts(&job, "deleted");
        for table in domain::cascade::CASCADE_PLAN {
            assert_eq!(
                counts.get(table.name).copied(),
                Some(ITEMS_PER_TABLE as u64),
                "the count of {}: {counts:?}",
                table.name
            );
        }
        let late = Cloud::counts(&job, "late");
        assert!(late.values().all(|n| *n == 0), "late: {late:?}");
        let audits = self.cloud.events_about(&self.target, "admin_deleted_user").await;
        assert_eq!(audits.len(), 1, "admin_deleted_user events");
        let profile = self.cloud.profile_row(&self.target).await.expect("the tombstone");
        assert!(
            !profile.contains_key("email") && profile.contains_key("deleted_at"),
            "{profile:?}"
        );
        assert_eq!(
            cognito::user_enabled(&self.cloud.emulator, &self.cloud.pool, &self.login).await,
            None,
            "the Cognito user (found by its sub) is gone"
        );
        for (table, row) in self.cloud.scan_all().await {
            assert!(
                !all_strings(&row).iter().any(|v| v.contains(&self.email)),
                "{table} still holds the deleted user's address"
            );
        }
        self.cloud.assert_security_logs_clean(&[]).await;
    }

    /// delete-user, deletion-worker and sweeper, started with this world's environment.
    async fn start_deletion_functions(&self) -> (Function, Function, Function) {
        let env = self.env();
        futures::join!(
            start_with_timeout("delete-user", env.clone(), TIMEOUT),
            start_with_timeout("deletion-worker", env.clone(), TIMEOUT),
            start_with_timeout("sweeper", env.clone(), TIMEOUT),
        )
    }

    fn delete_event(&self) -> Value {
        ApiEvent::new("DELETE", world::USER_ROUTE)
            .path_param("userId", &self.target)
            .caller(&self.owner)
            .to_value()
    }
}

/// No log line of the three deletion functions, nor of this process, holds personal data.
/// Returns the number of the functions' lines.
fn assert_deletion_logs_clean(delete: &Function, worker: &Function, sweeper: &Function) -> usize {
    let lines = assert_logs_clean(&[
        ("delete-user", delete),
        ("deletion-worker", worker),
        ("sweeper", sweeper),
    ]);
    logs::assert_clean();
    lines
}

#[tokio::test]
async fn a_delete_user_process_killed_mid_cascade_is_finished_by_the_queue_with_no_second_request() {
    let w = World::new(ITEMS_PER_TABLE).await;
    let (delete, worker, sweeper) = w.start_deletion_functions().await;
    let event = w.delete_event();
    let (answer, (killed_at, left_at_kill)) = futures::join!(delete.invoke(&event), async {
        w.wait_mid_cascade().await;
        let exit = delete.kill().await.expect("the process ended");
        assert_eq!(exit.signal, Some(9), "killed by SIGKILL");
        let killed_at = Instant::now();
        let left: usize = w.cloud.items_of(&w.target).await.values().sum();
        (killed_at, left)
    });
    match answer {
        Err(SimError::Exited { phase, .. }) => assert_eq!(phase, "during the invocation"),
        other => panic!("the DELETE was to die mid-cascade, got {other:?}"),
    }
    assert!(left_at_kill > 0, "the kill came after the cascade");
    println!("delete-user killed mid-cascade with {left_at_kill} of 3000 items left");

    let (completed, done) = w.run_until_done(&worker, &sweeper, killed_at).await;
    println!(
        "killed mid-cascade: completed {:.1} s after the SIGKILL (late pass done after {:.1} s), no second request",
        completed.as_secs_f64(),
        done.as_secs_f64()
    );
    w.assert_erased_exactly().await;
    let lines = assert_deletion_logs_clean(&delete, &worker, &sweeper);
    assert!(lines > 0);
}

#[tokio::test]
async fn dynamodb_refusing_every_call_for_three_seconds_mid_cascade_does_not_stop_the_erasure() {
    let w = World::new(ITEMS_PER_TABLE).await;
    let (delete, worker, sweeper) = w.start_deletion_functions().await;
    let event = w.delete_event();
    let (answer, outage_at) = futures::join!(invoke(&delete, &event), async {
        w.wait_mid_cascade().await;
        w.proxy.outage(
            "dynamodb",
            Fault::error(503, "ServiceUnavailable"),
            Duration::from_secs(3),
        );
        Instant::now()
    });
    let status = answer.http_status();
    assert!(
        matches!(status, Some(202 | 503)),
        "the DELETE during the outage answered {}",
        answer.response
    );
    if status == Some(503) {
        let body = answer.http_json().expect("a problem document");
        assert_eq!(body["code"], "dependency_unavailable");
    }
    println!(
        "DELETE during the outage answered {status:?} {:.1} s after it began",
        outage_at.elapsed().as_secs_f64()
    );

    let (completed, done) = w.run_until_done(&worker, &sweeper, outage_at).await;
    let refused = w.proxy.injected();
    println!(
        "3 s DynamoDB outage mid-cascade ({refused} calls refused): completed {:.1} s after the outage began \
         (late pass done after {:.1} s), no second request",
        completed.as_secs_f64(),
        done.as_secs_f64()
    );
    assert!(refused > 0, "the outage refused calls");
    w.assert_erased_exactly().await;
    assert_deletion_logs_clean(&delete, &worker, &sweeper);
}

#[tokio::test]
async fn two_owners_deleting_each_other_from_two_processes_make_exactly_one_job() {
    logs::capture();
    let cloud = Cloud::new().await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let mut env = lambda_env(&cloud);
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.endpoint());
    let (first, second, worker) = futures::join!(
        start_with_timeout("delete-user", env.clone(), TIMEOUT),
        start_with_timeout("delete-user", env.clone(), TIMEOUT),
        start_with_timeout("deletion-worker", env.clone(), TIMEOUT),
    );
    let rounds = 12;
    let mut winners = BTreeMap::new();
    for round in 0..rounds {
        let a = test_support::unique(&format!("owner{round}a-"));
        let b = test_support::unique(&format!("owner{round}b-"));
        let (a_email, b_email) = (
            format!("{a}@owners-example.com"),
            format!("{b}@owners-example.com"),
        );
        logs::forbid([&a_email, &b_email]);
        cloud.add_user(&a, "owner", Some(&a_email)).await;
        cloud.add_user(&b, "owner", Some(&b_email)).await;
        cloud.seed_user_data(&a, 2).await;
        cloud.seed_user_data(&b, 2).await;
        let delete = |caller: &str, target: &str| {
            ApiEvent::new("DELETE", world::USER_ROUTE)
                .path_param("userId", target)
                .caller(caller)
                .json(&json!({ "acknowledge_privileged": true }))
                .to_value()
        };
        let (by_a, by_b) = (delete(&a, &b), delete(&b, &a));
        let (answer_a, answer_b) = futures::join!(invoke(&first, &by_a), invoke(&second, &by_b));
        let (status_a, status_b) = (answer_a.http_status(), answer_b.http_status());
        let (winner, loser, refused) = match (status_a, status_b) {
            (Some(200 | 202), Some(401)) => (&a, &b, &answer_b),
            (Some(401), Some(200 | 202)) => (&b, &a, &answer_a),
            _ => panic!(
                "round {round}: exactly one request proceeds and the other is refused 401; got {} and {}",
                answer_a.response, answer_b.response
            ),
        };
        assert_eq!(
            refused.http_json().expect("a problem")["code"],
            "unauthenticated",
            "round {round}"
        );
        *winners
            .entry(if winner == &a {
                "first process"
            } else {
                "second process"
            })
            .or_insert(0) += 1;
        // The winner deletes the loser; the winner is untouched.
        if cloud.job_status(loser).await.as_deref() != Some("completed") {
            cloud.finish_deletion_with(&worker, loser).await;
        }
        assert!(
            cloud.job_row(winner).await.is_none(),
            "round {round}: a second job"
        );
        let profile = cloud.profile_row(winner).await.expect("the winner's profile");
        let winner_email = if winner == &a { &a_email } else { &b_email };
        assert_eq!(
            str_attr(&profile, "email"),
            Some(winner_email.as_str()),
            "round {round}"
        );
        assert!(
            !profile.contains_key("deletion_job_id") && !profile.contains_key("deleted_at"),
            "round {round}: the winner was touched: {profile:?}"
        );
        assert_eq!(
            cognito::user_enabled(&cloud.emulator, &cloud.pool, winner).await,
            Some(true),
            "round {round}: the winner keeps their sign-in"
        );
        assert!(
            cloud.items_of(winner).await.values().all(|n| *n == 2),
            "round {round}: the winner lost data"
        );
        assert!(
            cloud.items_of(loser).await.values().all(|n| *n == 0),
            "round {round}"
        );
        assert_eq!(
            cloud.events_about(loser, "admin_deleted_user").await.len(),
            1,
            "round {round}"
        );
        assert!(cloud.events_about(winner, "admin_deleted_user").await.is_empty());
    }
    println!(
        "two owners deleting each other, {rounds} rounds: exactly one job each time, the other refused 401; \
         the request that won: {winners:?}"
    );
    assert_logs_clean(&[("delete-user 1", &first), ("delete-user 2", &second)]);
    cloud.assert_security_logs_clean(&[]).await;
    logs::assert_clean();
}

#[tokio::test]
async fn an_admin_whose_deletion_was_just_created_cannot_send_a_message() {
    logs::capture();
    let cloud = Cloud::new().await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let owner = test_support::unique("owner-");
    let admin = test_support::unique("admin-");
    let user = test_support::unique("user-");
    let email = format!("{user}@locked-example.com");
    let body = format!("A last message from a deleted admin {user}");
    logs::forbid([&email, &body]);
    cloud.add_user(&owner, "owner", None).await;
    cloud
        .add_user(&admin, "admin", Some(&format!("{admin}@teleperson-example.com")))
        .await;
    cloud.add_user(&user, "user", Some(&email)).await;
    let mut env = lambda_env(&cloud);
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.endpoint());
    let mut delete_env = env.clone();
    delete_env.insert("DELETE_BUDGET_MS".into(), "0".into());
    let (delete, message, worker) = futures::join!(
        start_with_timeout("delete-user", delete_env, TIMEOUT),
        start_with_timeout("message-user", env.clone(), TIMEOUT),
        start_with_timeout("deletion-worker", env.clone(), TIMEOUT),
    );

    // The owner deletes the admin; with no budget, only the job is created (and the admin's
    // profile marked with it): nothing else has run yet.
    let del = ApiEvent::new("DELETE", world::USER_ROUTE)
        .path_param("userId", &admin)
        .caller(&owner)
        .json(&json!({ "acknowledge_privileged": true }))
        .to_value();
    let accepted = invoke(&delete, &del).await;
    assert_eq!(accepted.http_status(), Some(202), "{}", accepted.response);
    let job = cloud.job_row(&admin).await.expect("the job");
    assert_eq!(str_attr(&job, "step"), Some("audit"), "no step ran yet");
    let profile = cloud.profile_row(&admin).await.expect("the admin's profile");
    assert!(!profile.contains_key("deleted_at"), "not anonymised yet");

    // The admin, still holding a valid token, sends a message and reads a history: refused.
    let send = ApiEvent::new("POST", world::MESSAGES_ROUTE)
        .path_param("userId", &user)
        .caller(&admin)
        .header("idempotency-key", "last-words")
        .json(&json!({ "body": body }))
        .to_value();
    let refused = invoke(&message, &send).await;
    assert_eq!(refused.http_status(), Some(401), "{}", refused.response);
    assert_eq!(refused.http_json().expect("a problem")["code"], "unauthenticated");
    let history = ApiEvent::new("GET", world::MESSAGES_ROUTE)
        .path_param("userId", &user)
        .caller(&admin)
        .to_value();
    assert_eq!(invoke(&message, &history).await.http_status(), Some(401));
    assert!(cloud.emails_to(&email).await.is_empty(), "nothing was sent");
    let rows = cloud
        .scan("ADMIN_MESSAGES_TABLE")
        .await
        .into_iter()
        .filter(|r| str_attr(r, "sender_id") == Some(admin.as_str()))
        .count();
    assert_eq!(rows, 0, "no message row");
    let denials = cloud.events_about(&user, "admin_action_denied").await;
    assert!(
        denials
            .iter()
            .any(|e| str_attr(e, "actor_id") == Some(admin.as_str())
                && str_attr(e, "reason") == Some("unauthenticated")),
        "the refusal is audited: {denials:?}"
    );
    // The deletion itself goes on through the queue.
    cloud.finish_deletion_with(&worker, &admin).await;
    assert_logs_clean(&[("delete-user", &delete), ("message-user", &message)]);
    cloud.assert_security_logs_clean(&[&body]).await;
    logs::assert_clean();
}

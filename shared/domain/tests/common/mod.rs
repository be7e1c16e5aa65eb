//! Shared fixtures for the use-case tests.
#![allow(dead_code)]

use domain::cascade::{CascadeTable, CASCADE_PLAN};
use domain::deletion::{Deletion, DeletionSettings};
use domain::memory::{InMemoryBackend, QueuedMessage, State};
use domain::model::{AdminMessage, MessageStatus, Profile, RequestMeta};
use domain::ports::{ManualClock, TokioClock};
use domain::sweep::{SweepSettings, Sweeper};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub fn profile(id: &str, role: &str, email: Option<&str>) -> Profile {
    Profile {
        user_id: id.into(),
        email: email.map(Into::into),
        display_name: format!("Name of {id}"),
        role: role.into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        deleted_at: None,
        auth_username: None,
        deletion_job_id: None,
        tokens_valid_after: None,
    }
}

pub fn meta(caller: &str) -> RequestMeta {
    RequestMeta {
        caller: Some(caller.into()),
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        source_ip: Some("198.51.100.7".into()),
        user_agent: Some("tests".into()),
        token_issued_at: None,
    }
}

/// A backend with an owner, two admins and users; `target` has `per_table` items in every
/// table of the cascade plan, and an item of another user in each table that must survive.
pub fn seeded(per_table: usize) -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(profile("owner-1", "owner", Some("owner@example.com")));
    b.put_profile(profile("admin-1", "admin", Some("admin1@example.com")));
    b.put_profile(profile("admin-2", "admin", Some("admin2@example.com")));
    b.put_profile(profile("user-1", "user", Some("Target.User@Example.com")));
    b.put_profile(profile("user-2", "user", Some("bystander@example.com")));
    for id in ["owner-1", "admin-1", "admin-2", "user-1", "user-2"] {
        b.put_auth_user(id);
    }
    for table in CASCADE_PLAN {
        for i in 0..per_table {
            put_user_item(&b, table, "user-1", i);
        }
        put_user_item(&b, table, "user-2", 0);
    }
    b
}

pub fn put_user_item(b: &InMemoryBackend, table: &CascadeTable, user: &str, i: usize) {
    if table.name == "admin_messages" {
        let m = AdminMessage {
            message_id: format!("{user}-msg-{i:05}"),
            sender_id: "admin-1".into(),
            recipient_id: user.into(),
            subject: "s".into(),
            body: "b".into(),
            status: MessageStatus::Sent,
            ses_message_id: Some(format!("ses-{i}")),
            error_code: None,
            created_at: format!("2026-01-01T00:00:{:02}.000Z", i % 60),
            sent_at: None,
            updated_at: None,
            attempt: None,
        };
        b.state().messages.insert(m.message_id.clone(), m);
        return;
    }
    let mut item = BTreeMap::new();
    let attr = match table.lookup {
        domain::cascade::Lookup::PartitionKey { attr } | domain::cascade::Lookup::Index { attr, .. } => attr,
    };
    item.insert(attr.to_owned(), user.to_owned());
    for k in table.key {
        item.entry((*k).to_owned())
            .or_insert_with(|| format!("{user}-{}-{i:05}", table.name));
    }
    item.insert("payload".into(), "data".into());
    b.put_item(table, item);
}

pub fn deletion_with_clock(b: &Arc<InMemoryBackend>, clock: Arc<ManualClock>, page_size: usize) -> Deletion {
    let mut d = b.deletion(DeletionSettings {
        page_size,
        ..DeletionSettings::default()
    });
    d.clock = clock;
    d
}

/// SQS and EventBridge as the Lambda service runs them, around the in-memory backend, in
/// tokio's paused time (`#[tokio::test(start_paused = true)]`; the backend's clock follows
/// it): the worker receives the continuations that are visible (a received message is hidden
/// for the visibility timeout and comes back unless acknowledged; after `max_receives` it
/// goes to the dead-letter queue), and the sweep runs every `sweep_every`. A crash injected
/// into a worker run drops that run, like a killed Lambda.
pub struct Sim {
    pub b: Arc<InMemoryBackend>,
    pub deletion: Deletion,
    pub sweeper: Sweeper,
    pub worker_budget: Duration,
    pub visibility: Duration,
    pub sweep_every: Duration,
    pub max_receives: u32,
    pub dead_letters: Vec<QueuedMessage>,
    pub worker_runs: usize,
    pub sweeps: usize,
}

/// The backend for a simulation: its clock follows tokio's (paused) time, and every store
/// call takes `latency`, so that time passes while the routine works.
pub fn sim_backend(per_table: usize, latency: Duration) -> Arc<InMemoryBackend> {
    let b = seeded(per_table);
    b.set_clock(Arc::new(TokioClock::new(chrono::Utc::now())));
    b.set_latency(latency);
    b
}

impl Sim {
    /// The Lambda settings of the template: a 100 s worker budget, SQS's 720 s visibility
    /// timeout and 5 receives, a sweep every 5 minutes.
    pub fn new(b: &Arc<InMemoryBackend>, settings: DeletionSettings) -> Sim {
        Sim {
            deletion: b.deletion(settings),
            sweeper: b.sweeper(SweepSettings::default()),
            b: b.clone(),
            worker_budget: Duration::from_secs(100),
            visibility: Duration::from_secs(720),
            sweep_every: Duration::from_secs(300),
            max_receives: 5,
            dead_letters: Vec::new(),
            worker_runs: 0,
            sweeps: 0,
        }
    }

    /// Run the queue and the sweep until `done` holds; the simulated time it took. Panics
    /// (with the job's state) when `limit` passes first.
    pub async fn run_until(&mut self, limit: Duration, done: impl Fn(&State) -> bool) -> Duration {
        let clock = self.b.clock();
        let start = clock.now();
        let mut next_sweep = start + chrono::Duration::from_std(self.sweep_every).unwrap();
        loop {
            let now = clock.now();
            let elapsed = (now - start).to_std().unwrap_or_default();
            if done(&self.b.snapshot()) {
                return elapsed;
            }
            assert!(
                elapsed <= limit,
                "not done after {elapsed:?}: jobs {:#?}, queue {:#?}, dead letters {:#?}",
                self.b.snapshot().jobs,
                self.b.snapshot().queue,
                self.dead_letters
            );
            if now >= next_sweep {
                // A crash in the sweep is a killed sweep: the next schedule runs it again.
                tokio::select! {
                    _ = self.sweeper.run() => {}
                    _ = self.b.crashed() => {}
                }
                self.sweeps += 1;
                next_sweep = now + chrono::Duration::from_std(self.sweep_every).unwrap();
                continue;
            }
            if let Some(m) = self.b.receive(now, self.visibility) {
                if m.receives > self.max_receives {
                    self.b.ack(m.id);
                    self.dead_letters.push(m);
                    continue;
                }
                self.worker_runs += 1;
                let deadline = Instant::now() + self.worker_budget;
                let out = tokio::select! {
                    r = self.deletion.continue_job(&m.continuation, deadline) => Some(r),
                    _ = self.b.crashed() => None,
                };
                // Acknowledged only when the worker answered Ok; a failed receive or a crash
                // leaves it to come back after the visibility timeout.
                if let Some(Ok(_)) = out {
                    self.b.ack(m.id);
                }
                continue;
            }
            let wake = self.b.next_visible_at().map_or(next_sweep, |t| t.min(next_sweep));
            let wait = (wake - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_millis(1));
            tokio::time::sleep(wait).await;
        }
    }
}

/// The deletion job of `user` is done, late pass included.
pub fn job_done(user: &'static str) -> impl Fn(&State) -> bool {
    move |st: &State| {
        st.jobs
            .get(user)
            .is_some_and(|j| j.step == domain::job::Step::Done)
    }
}

/// The deletion job of `user` is completed (its late pass may still be to come).
pub fn job_completed(user: &'static str) -> impl Fn(&State) -> bool {
    move |st: &State| st.jobs.get(user).is_some_and(|j| j.is_completed())
}

pub fn now_of(b: &InMemoryBackend) -> chrono::DateTime<chrono::Utc> {
    b.clock().now()
}

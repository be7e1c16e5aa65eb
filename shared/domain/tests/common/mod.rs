//! Shared fixtures for the use-case tests.
#![allow(dead_code, unused_imports)]

use domain::cascade::CASCADE_PLAN;
use domain::deletion::{Deletion, DeletionSettings};
use domain::memory::{InMemoryBackend, State};
use domain::ports::{ManualClock, TokioClock};
use domain::schedule::Schedule;
use domain::sweep::{SweepSettings, Sweeper};
pub use fixtures::{meta, profile, put_user_item};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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

pub fn deletion_with_clock(b: &Arc<InMemoryBackend>, clock: Arc<ManualClock>, page_size: usize) -> Deletion {
    let mut d = b.deletion(DeletionSettings {
        page_size,
        ..DeletionSettings::default()
    });
    d.clock = clock;
    d
}

/// The Lambda service around the in-memory backend ([`Schedule`]), with the worker calling
/// `Deletion::continue_job` directly within its budget.
pub struct Sim {
    pub b: Arc<InMemoryBackend>,
    pub deletion: Deletion,
    pub sweeper: Sweeper,
    pub worker_budget: Duration,
    pub schedule: Schedule,
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
    /// The Lambda settings of the template: a 100 s worker budget and [`Schedule::default`].
    pub fn new(b: &Arc<InMemoryBackend>, settings: DeletionSettings) -> Sim {
        Sim {
            deletion: b.deletion(settings),
            sweeper: b.sweeper(SweepSettings::default()),
            b: b.clone(),
            worker_budget: Duration::from_secs(100),
            schedule: Schedule::default(),
        }
    }

    /// Run the queue and the sweep until `done` holds; the simulated time it took. Panics
    /// (with the job's state) when `limit` passes first. A continuation is acknowledged when
    /// the worker answered Ok; a failed receive leaves it to come back.
    pub async fn run_until(&mut self, limit: Duration, done: impl Fn(&State) -> bool) -> Duration {
        let (deletion, budget) = (&self.deletion, self.worker_budget);
        self.schedule
            .run_until(&self.b, &self.sweeper, limit, done, |m| async move {
                deletion
                    .continue_job(&m.continuation, Instant::now() + budget)
                    .await
                    .is_ok()
            })
            .await
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

//! The Lambda service around the in-memory backend, through the real handlers: SQS's event
//! source mapping feeds the continuations to `deletion_worker::handle` as SQS batch events
//! (a received message is hidden for the visibility timeout and comes back unless the
//! worker's batch response acknowledged it; after `max_receives` receives it goes to the
//! dead-letter queue), and EventBridge runs the sweep every `sweep_every`.
//!
//! It runs in tokio's paused time (`#[tokio::test(start_paused = true)]`) with the backend's
//! clock following it ([`Sim::backend_clock`]), so queue delays, leases and the 15-minute
//! and one-hour marks pass in milliseconds of real time. A [`Fault::Crash`] injected into a
//! worker run or a sweep drops that run, like a Lambda killed at that instruction.
//!
//! [`Fault::Crash`]: domain::memory::Fault::Crash

use crate::world::Apps;
use aws_lambda_events::sqs::SqsEvent;
use domain::memory::{InMemoryBackend, QueuedMessage, State};
use domain::ports::TokioClock;
use domain::sweep::{SweepSettings, Sweeper};
use std::sync::Arc;
use std::time::Duration;

pub struct Sim {
    pub b: Arc<InMemoryBackend>,
    pub apps: Apps,
    pub sweeper: Sweeper,
    /// SQS's visibility timeout of the queue (the template's: 6 x the worker's timeout).
    pub visibility: Duration,
    pub sweep_every: Duration,
    pub max_receives: u32,
    pub dead_letters: Vec<QueuedMessage>,
    pub worker_runs: usize,
    pub sweeps: usize,
}

impl Sim {
    /// Point the backend's clock at tokio's (paused) time. Call it before building the apps:
    /// they take the backend's clock when they are built.
    pub fn backend_clock(b: &InMemoryBackend) {
        b.set_clock(Arc::new(TokioClock::new(chrono::Utc::now())));
    }

    /// The template's settings: a 720 s visibility timeout, 5 receives before the dead-letter
    /// queue, a sweep every 5 minutes.
    pub fn new(b: &Arc<InMemoryBackend>, apps: Apps) -> Sim {
        Sim {
            sweeper: b.sweeper(SweepSettings::default()),
            b: b.clone(),
            apps,
            visibility: Duration::from_secs(720),
            sweep_every: Duration::from_secs(300),
            max_receives: 5,
            dead_letters: Vec::new(),
            worker_runs: 0,
            sweeps: 0,
        }
    }

    /// The SQS batch event Lambda hands the worker for one received message.
    pub fn sqs_event(m: &QueuedMessage) -> SqsEvent {
        let body = serde_json::to_string(&m.continuation).expect("a continuation serialises");
        let record = crate::esm::sqs_record(
            &format!("mem-{}", m.id),
            &format!("handle-{}-{}", m.id, m.receives),
            &body,
            m.receives,
        );
        serde_json::from_value(crate::esm::sqs_event(vec![record])).expect("an SQS event")
    }

    /// Run the queue and the sweep until `done` holds; the simulated time it took. Panics
    /// (with the jobs and the queue) when `limit` passes first.
    pub async fn run_until(&mut self, limit: Duration, done: impl Fn(&State) -> bool) -> Duration {
        let clock = self.b.clock();
        let start = clock.now();
        let every = chrono::Duration::from_std(self.sweep_every).expect("a short interval");
        let mut next_sweep = start + every;
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
                tokio::select! {
                    _ = self.sweeper.run() => {}
                    _ = self.b.crashed() => {}
                }
                self.sweeps += 1;
                next_sweep = now + every;
                continue;
            }
            if let Some(m) = self.b.receive(now, self.visibility) {
                if m.receives > self.max_receives {
                    self.b.ack(m.id);
                    self.dead_letters.push(m);
                    continue;
                }
                self.worker_runs += 1;
                let event =
                    lambda_runtime::LambdaEvent::new(Self::sqs_event(&m), lambda_runtime::Context::default());
                let out = tokio::select! {
                    r = deletion_worker::handle(&self.apps.worker, event) => Some(r),
                    _ = self.b.crashed() => None,
                };
                // Deleted only when the batch response does not name it; an invocation error
                // or a crash leaves it to come back after the visibility timeout.
                if let Some(Ok(response)) = out {
                    if response.batch_item_failures.is_empty() {
                        self.b.ack(m.id);
                    }
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

//! SQS and EventBridge as the Lambda service runs them, around the in-memory backend, for
//! tests that let a deletion finish the way it does on AWS: nobody sends the DELETE again.
//!
//! The queue's visible continuations are handed to a worker one at a time (a received
//! message is hidden for the visibility timeout and comes back unless the worker
//! acknowledged it; after `max_receives` receives it goes to the dead-letter queue), and the
//! sweep runs every `sweep_every`. A [`Fault::Crash`] injected into a worker run or a sweep
//! drops that run, like a Lambda killed at that instruction.
//!
//! Run it in tokio's paused time (`#[tokio::test(start_paused = true)]`) with the backend's
//! clock following it ([`crate::ports::TokioClock`]), so queue delays, leases and the
//! 15-minute and one-hour marks pass in milliseconds of real time.
//!
//! [`Fault::Crash`]: crate::memory::Fault::Crash

use crate::memory::{InMemoryBackend, QueuedMessage, State};
use crate::sweep::Sweeper;
use std::future::Future;
use std::time::Duration;

pub struct Schedule {
    /// SQS's visibility timeout of the queue (the template's: 6 x the worker's timeout).
    pub visibility: Duration,
    pub sweep_every: Duration,
    pub max_receives: u32,
    pub dead_letters: Vec<QueuedMessage>,
    pub worker_runs: usize,
    pub sweeps: usize,
}

impl Default for Schedule {
    /// The template's settings: a 720 s visibility timeout, 5 receives before the dead-letter
    /// queue, a sweep every 5 minutes.
    fn default() -> Schedule {
        Schedule {
            visibility: Duration::from_secs(720),
            sweep_every: Duration::from_secs(300),
            max_receives: 5,
            dead_letters: Vec::new(),
            worker_runs: 0,
            sweeps: 0,
        }
    }
}

impl Schedule {
    /// Run the queue (each visible message through `worker`, acknowledged when it returns
    /// true) and the sweep until `done` holds; the simulated time it took. Panics (with the
    /// jobs, the queue and the dead letters) when `limit` passes first.
    pub async fn run_until<W, F>(
        &mut self, b: &InMemoryBackend, sweeper: &Sweeper, limit: Duration, done: impl Fn(&State) -> bool,
        mut worker: W,
    ) -> Duration
    where
        W: FnMut(QueuedMessage) -> F,
        F: Future<Output = bool>,
    {
        let clock = b.clock();
        let start = clock.now();
        let every = crate::model::chrono_duration(self.sweep_every);
        let mut next_sweep = start + every;
        loop {
            let now = clock.now();
            let elapsed = (now - start).to_std().unwrap_or_default();
            if done(&b.snapshot()) {
                return elapsed;
            }
            assert!(
                elapsed <= limit,
                "not done after {elapsed:?}: jobs {:#?}, queue {:#?}, dead letters {:#?}",
                b.snapshot().jobs,
                b.snapshot().queue,
                self.dead_letters
            );
            if now >= next_sweep {
                // A crash in the sweep is a killed sweep: the next schedule runs it again.
                tokio::select! {
                    _ = sweeper.run() => {}
                    _ = b.crashed() => {}
                }
                self.sweeps += 1;
                next_sweep = now + every;
                continue;
            }
            if let Some(m) = b.receive(now, self.visibility) {
                if m.receives > self.max_receives {
                    b.ack(m.id);
                    self.dead_letters.push(m);
                    continue;
                }
                self.worker_runs += 1;
                let id = m.id;
                // Not acknowledged, or a crash: it comes back after the visibility timeout.
                let acknowledged = tokio::select! {
                    ack = worker(m) => ack,
                    _ = b.crashed() => false,
                };
                if acknowledged {
                    b.ack(id);
                }
                continue;
            }
            let wake = b.next_visible_at().map_or(next_sweep, |t| t.min(next_sweep));
            let wait = (wake - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_millis(1));
            tokio::time::sleep(wait).await;
        }
    }
}

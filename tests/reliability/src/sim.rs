//! The Lambda service around the in-memory backend ([`domain::schedule::Schedule`]), through
//! the real handlers: SQS's event source mapping feeds the continuations to
//! `deletion_worker::handle` as SQS batch events. Runs in tokio's paused time with the
//! backend's clock following it ([`Sim::backend_clock`]).

use crate::world::Apps;
use aws_lambda_events::sqs::SqsEvent;
use domain::memory::{InMemoryBackend, QueuedMessage, State};
use domain::ports::TokioClock;
use domain::schedule::Schedule;
use domain::sweep::{SweepSettings, Sweeper};
use std::sync::Arc;
use std::time::Duration;

pub struct Sim {
    pub b: Arc<InMemoryBackend>,
    pub apps: Apps,
    pub sweeper: Sweeper,
    pub schedule: Schedule,
}

impl Sim {
    /// Point the backend's clock at tokio's (paused) time. Call it before building the apps:
    /// they take the backend's clock when they are built.
    pub fn backend_clock(b: &InMemoryBackend) {
        b.set_clock(Arc::new(TokioClock::new(chrono::Utc::now())));
    }

    /// The template's settings ([`Schedule::default`]).
    pub fn new(b: &Arc<InMemoryBackend>, apps: Apps) -> Sim {
        Sim {
            sweeper: b.sweeper(SweepSettings::default()),
            b: b.clone(),
            apps,
            schedule: Schedule::default(),
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
    /// (with the jobs and the queue) when `limit` passes first. A message is deleted only
    /// when the worker's batch response does not name it; an invocation error leaves it to
    /// come back after the visibility timeout.
    pub async fn run_until(&mut self, limit: Duration, done: impl Fn(&State) -> bool) -> Duration {
        let worker = &self.apps.worker;
        self.schedule
            .run_until(&self.b, &self.sweeper, limit, done, |m| async move {
                let event =
                    lambda_runtime::LambdaEvent::new(Self::sqs_event(&m), lambda_runtime::Context::default());
                deletion_worker::handle(worker, event)
                    .await
                    .is_ok_and(|response| response.batch_item_failures.is_empty())
            })
            .await
    }
}

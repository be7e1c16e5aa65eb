//! The continuation queue (`DELETION_QUEUE_URL`) that `deletion-worker` consumes.

use crate::deadline::WithinDeadline;
use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use domain::deletion::{Continuation, MAX_QUEUE_DELAY};
use domain::ports::{DeletionQueue, StoreResult};
use std::time::Duration;

const DEP: &str = "deletion_queue";

#[derive(Clone, Debug)]
pub struct SqsDeletionQueue {
    client: Client,
    queue_url: String,
}

impl SqsDeletionQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsDeletionQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// The message body: `{"user_id", "job_id", "attempt"}` (ids and a count only).
pub fn message_body(continuation: &Continuation) -> String {
    serde_json::to_string(continuation).unwrap_or_default()
}

/// `DelaySeconds`: whole seconds, rounded up, at most SQS's 900.
pub fn delay_seconds(delay: Duration) -> i32 {
    let d = delay.min(MAX_QUEUE_DELAY);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(900)
}

#[async_trait]
impl DeletionQueue for SqsDeletionQueue {
    async fn enqueue(&self, continuation: &Continuation, delay: Duration) -> StoreResult<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message_body(continuation))
            .delay_seconds(delay_seconds(delay))
            .send()
            .within_deadline()
            .await
            .map_err(|e| sdk(DEP, "SendMessage on the deletion queue", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_whole_seconds_rounded_up_and_capped() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(delay_seconds(Duration::from_millis(51_000)), 51);
        assert_eq!(delay_seconds(Duration::from_secs(5_000)), 900);
    }

    #[test]
    fn the_body_names_the_job_only() {
        let c = Continuation {
            user_id: "u1".into(),
            job_id: "j1".into(),
            attempt: 2,
        };
        assert_eq!(message_body(&c), r#"{"user_id":"u1","job_id":"j1","attempt":2}"#);
    }
}

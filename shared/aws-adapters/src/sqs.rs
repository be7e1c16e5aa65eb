//! The continuation queue (`DELETION_QUEUE_URL`) that `deletion-worker` consumes.

use crate::errors::sdk;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use domain::ports::{DeletionQueue, StoreResult};

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

/// The message body: `{"user_id": ..., "job_id": ...}`.
pub fn message_body(user_id: &str, job_id: &str) -> String {
    serde_json::json!({ "user_id": user_id, "job_id": job_id }).to_string()
}

#[async_trait]
impl DeletionQueue for SqsDeletionQueue {
    async fn enqueue(&self, user_id: &str, job_id: &str) -> StoreResult<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message_body(user_id, job_id))
            .send()
            .await
            .map_err(|e| sdk(DEP, "SendMessage on the deletion queue", e))?;
        Ok(())
    }
}

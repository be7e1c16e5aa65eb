//! SQS queues in the emulator.

use crate::Emulator;

/// A fresh queue; returns its URL.
pub async fn create_queue(emulator: &Emulator) -> String {
    let out = emulator
        .sqs()
        .create_queue()
        .queue_name(crate::unique("deletions-"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e)));
    out.queue_url().expect("a queue URL").to_owned()
}

/// Receive (and delete) every message now in the queue; returns their bodies.
pub async fn drain(emulator: &Emulator, queue_url: &str) -> Vec<String> {
    let client = emulator.sqs();
    let mut bodies = Vec::new();
    loop {
        let out = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive_message: {}", aws_sdk_sqs::error::DisplayErrorContext(e)));
        let messages = out.messages();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body().unwrap_or_default().to_owned());
            if let Some(handle) = m.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("delete_message: {}", aws_sdk_sqs::error::DisplayErrorContext(e))
                    });
            }
        }
    }
}

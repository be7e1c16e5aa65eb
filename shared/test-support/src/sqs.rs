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

/// What a queue holds (SQS's approximate counts; exact in the emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Ready to be received.
    pub visible: u32,
    /// Sent with a delay that has not passed yet.
    pub delayed: u32,
    /// Received and not deleted yet.
    pub in_flight: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.visible + self.delayed + self.in_flight
    }
}

pub async fn counts(emulator: &Emulator, queue_url: &str) -> Counts {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = emulator
        .sqs()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "get_queue_attributes: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        });
    let attrs = out.attributes().cloned().unwrap_or_default();
    let get = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("the queue has no {a:?}"))
    };
    Counts {
        visible: get(A::ApproximateNumberOfMessages),
        delayed: get(A::ApproximateNumberOfMessagesDelayed),
        in_flight: get(A::ApproximateNumberOfMessagesNotVisible),
    }
}

/// Drop every message, delayed ones included (a continuation lost for good).
pub async fn purge(emulator: &Emulator, queue_url: &str) {
    emulator
        .sqs()
        .purge_queue()
        .queue_url(queue_url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("purge_queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e)));
}

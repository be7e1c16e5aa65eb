//! SQS's event source mapping as Lambda runs it for the deletion worker, played by the test
//! against the emulator's queue, with EventBridge's schedule for the sweep beside it.
//!
//! [`EventSourceMapping::poll_once`] receives what the queue holds that is visible now
//! (moto honours `DelaySeconds` and the visibility timeout), hands it to the worker as the
//! SQS batch event Lambda builds (`Records` with `messageId`, `receiptHandle`, `body`,
//! `attributes`, `eventSource`, ...), then deletes every record the batch response does not
//! name in `batchItemFailures` (`ReportBatchItemFailures`). A failed invocation (an error, a
//! timeout, a process that died) deletes nothing: the whole batch comes back once its
//! visibility timeout has passed. A message received more than `max_receives` times goes to
//! the dead-letter list, as the queue's redrive policy would move it.
//!
//! The worker is anything that takes the event JSON and answers the response JSON: the
//! in-process handler ([`in_process_worker`]) or a built binary under `lambda-sim`.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:deletions";

/// One record of an SQS batch event, as Lambda writes it.
pub fn sqs_record(message_id: &str, receipt_handle: &str, body: &str, receive_count: u32) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    json!({
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": now_ms.to_string(),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms.to_string()
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1"
    })
}

/// The batch event: `{"Records": [...]}`.
pub fn sqs_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// EventBridge's scheduled event, as the sweep's schedule sends it.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/deletion-sweep"],
        "detail": {}
    })
}

/// What the mapping did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsmStats {
    pub invocations: usize,
    pub records: usize,
    pub acknowledged: usize,
    /// Records named in `batchItemFailures`, left on the queue.
    pub reported_failures: usize,
    /// Invocations that failed as a whole (their records were left on the queue).
    pub failed_invocations: usize,
    pub dead_letters: Vec<String>,
    pub sweeps: usize,
}

pub struct EventSourceMapping {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    /// The visibility timeout of a receive (the queue's, in the template: 6 x the worker's
    /// timeout; short here so that a left record comes back within the test).
    pub visibility: Duration,
    pub batch_size: i32,
    pub max_receives: u32,
    pub stats: EsmStats,
}

impl EventSourceMapping {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: &str) -> EventSourceMapping {
        EventSourceMapping {
            client,
            queue_url: queue_url.to_owned(),
            visibility: Duration::from_secs(10),
            batch_size: 10,
            max_receives: 5,
            stats: EsmStats::default(),
        }
    }

    /// Receive what is visible now and hand it to `invoke`; the number of records handed over.
    pub async fn poll_once<W, WF>(&mut self, invoke: &mut W) -> usize
    where
        W: FnMut(Value) -> WF,
        WF: Future<Output = Result<Value, String>>,
    {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .visibility_timeout(i32::try_from(self.visibility.as_secs()).unwrap_or(30))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive_message: {}", aws_sdk_sqs::error::DisplayErrorContext(e)));
        let mut records = Vec::new();
        let mut handles = Vec::new();
        for m in out.messages() {
            let id = m.message_id().unwrap_or_default().to_owned();
            let handle = m.receipt_handle().unwrap_or_default().to_owned();
            let receives: u32 = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            if receives > self.max_receives {
                self.delete(&handle).await;
                self.stats
                    .dead_letters
                    .push(m.body().unwrap_or_default().to_owned());
                continue;
            }
            records.push(sqs_record(&id, &handle, m.body().unwrap_or_default(), receives));
            handles.push((id, handle));
        }
        if records.is_empty() {
            return 0;
        }
        let n = records.len();
        self.stats.invocations += 1;
        self.stats.records += n;
        match invoke(sqs_event(records)).await {
            Ok(response) => {
                let failed: Vec<&str> = response["batchItemFailures"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|f| f["itemIdentifier"].as_str()).collect())
                    .unwrap_or_default();
                for (id, handle) in &handles {
                    if failed.contains(&id.as_str()) {
                        self.stats.reported_failures += 1;
                    } else {
                        self.delete(handle).await;
                        self.stats.acknowledged += 1;
                    }
                }
            }
            Err(_) => self.stats.failed_invocations += 1,
        }
        n
    }

    async fn delete(&self, handle: &str) {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete_message: {}", aws_sdk_sqs::error::DisplayErrorContext(e)));
    }

    /// Poll the queue (and run `sweep` every `sweep_every`, the first time at once) until
    /// `done` answers true; the time it took, or an error when `limit` passes first.
    pub async fn run_until<W, WF, S, SF, D, DF>(
        &mut self, limit: Duration, sweep_every: Duration, mut invoke: W, mut sweep: S, mut done: D,
    ) -> Result<Duration, String>
    where
        W: FnMut(Value) -> WF,
        WF: Future<Output = Result<Value, String>>,
        S: FnMut() -> SF,
        SF: Future<Output = ()>,
        D: FnMut() -> DF,
        DF: Future<Output = bool>,
    {
        let start = Instant::now();
        let mut next_sweep = start;
        loop {
            if done().await {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "not done after {:?}; the mapping so far: {:?}",
                    start.elapsed(),
                    self.stats
                ));
            }
            if Instant::now() >= next_sweep {
                sweep().await;
                self.stats.sweeps += 1;
                next_sweep = Instant::now() + sweep_every;
            }
            if self.poll_once(&mut invoke).await == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The deletion worker's handler in this process, as the invoke of a mapping.
pub fn in_process_worker<'a>(
    worker: &'a deletion_worker::WorkerApp,
) -> impl FnMut(Value) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, String>> + 'a>> + 'a {
    move |event: Value| {
        Box::pin(async move {
            let event: aws_lambda_events::sqs::SqsEvent =
                serde_json::from_value(event).map_err(|e| format!("not an SQS event: {e}"))?;
            let out = deletion_worker::handle(
                worker,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            )
            .await
            .map_err(|e| e.to_string())?;
            serde_json::to_value(out).map_err(|e| e.to_string())
        })
    }
}

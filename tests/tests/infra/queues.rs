//! The continuation queue of long deletions: the worker consumes it with partial batch
//! responses, the queue hides a message for at least 6 worker timeouts and gives up into a
//! dead-letter queue, which keeps its ids-only messages 14 days and is alarmed.

use super::cfn::{as_list, assert_clean, getatt_parts, template, Template};
use super::environment::WORKER_BIN;
use serde_json::{json, Value};

/// The deletion dead-letter queue holds continuations (user id, job id, attempt): kept the
/// maximum 14 days, time to fix the cause and redrive.
pub const DELETION_DLQ_RETENTION: (u64, u64) = (1_209_600, 1_209_600);

/// The worker consumes the continuation queue with partial batch responses; the queue hides a
/// message for at least 6 worker timeouts, gives up into a dead-letter queue, which is alarmed.
pub fn check_deletion_queue(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((worker_id, worker)) = t.function_by_binary(WORKER_BIN) else {
        return vec![format!("no function builds {WORKER_BIN}")];
    };
    let timeout = t.function_property(worker, "Timeout").as_u64().unwrap_or(0);

    // The trigger: an explicit event source mapping or a SAM SQS event.
    // (name, source queue ARN, properties with BatchSize / FunctionResponseTypes)
    let mut triggers: Vec<(String, &Value, &Value)> = Vec::new();
    for (id, r) in t.of_type("AWS::Lambda::EventSourceMapping") {
        let props = &r["Properties"];
        if props["FunctionName"].get("Ref").and_then(Value::as_str) == Some(worker_id.as_str()) {
            triggers.push((id.clone(), &props["EventSourceArn"], props));
        }
    }
    if let Some(events) = worker["Properties"]["Events"].as_object() {
        for (id, e) in events.iter().filter(|(_, e)| e["Type"] == "SQS") {
            triggers.push((
                format!("{worker_id}.{id}"),
                &e["Properties"]["Queue"],
                &e["Properties"],
            ));
        }
    }
    if triggers.len() != 1 {
        problems.push(format!(
            "{worker_id} must have exactly one SQS trigger, found {}",
            triggers.len()
        ));
        return problems;
    }
    let (trigger_id, source, props) = &triggers[0];
    let (queue_id, _) = getatt_parts(&source["Fn::GetAtt"]);
    let Some(queue) = t
        .resources()
        .get(&queue_id)
        .filter(|q| q["Type"] == "AWS::SQS::Queue")
    else {
        problems.push(format!(
            "{trigger_id}: does not read an AWS::SQS::Queue of this template ({source})"
        ));
        return problems;
    };
    if !as_list(&props["FunctionResponseTypes"])
        .iter()
        .any(|v| *v == "ReportBatchItemFailures")
    {
        problems.push(format!(
            "{trigger_id}: FunctionResponseTypes must include ReportBatchItemFailures"
        ));
    }
    match props["BatchSize"].as_u64() {
        Some(1..=10) => {}
        other => problems.push(format!(
            "{trigger_id}: BatchSize must be set and small (1..=10), got {other:?}"
        )),
    }
    if let Some(env) = t.environment_of(worker).get("DELETION_QUEUE_URL") {
        if env.get("Ref").and_then(Value::as_str) != Some(queue_id.as_str()) {
            problems.push(format!(
                "DELETION_QUEUE_URL ({env}) is not the queue {worker_id} consumes ({queue_id})"
            ));
        }
    }
    let visibility = queue["Properties"]["VisibilityTimeout"].as_u64().unwrap_or(30);
    if visibility < 6 * timeout {
        problems.push(format!(
            "{queue_id}: VisibilityTimeout {visibility} s is under 6 x {worker_id}'s timeout {timeout} s"
        ));
    }
    let redrive = &queue["Properties"]["RedrivePolicy"];
    let (dlq_id, _) = getatt_parts(&redrive["deadLetterTargetArn"]["Fn::GetAtt"]);
    match redrive["maxReceiveCount"].as_u64() {
        Some(1..=10) => {}
        other => problems.push(format!(
            "{queue_id}: RedrivePolicy.maxReceiveCount must be 1..=10, got {other:?}"
        )),
    }
    if t.resources()
        .get(&dlq_id)
        .is_some_and(|q| q["Type"] == "AWS::SQS::Queue")
    {
        problems.extend(check_alarmed_dead_letter_queue(
            t,
            &dlq_id,
            DELETION_DLQ_RETENTION,
        ));
    } else {
        problems.push(format!(
            "{queue_id}: RedrivePolicy has no dead-letter queue of this template"
        ));
    }
    problems
}

/// A dead-letter queue keeps what it holds for a retention within `retention` (seconds) and is
/// watched by an alarm with an action on its visible messages.
pub fn check_alarmed_dead_letter_queue(t: &Template, dlq_id: &str, retention: (u64, u64)) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(dlq) = t
        .resources()
        .get(dlq_id)
        .filter(|q| q["Type"] == "AWS::SQS::Queue")
    else {
        return vec![format!("{dlq_id} is not an AWS::SQS::Queue of this template")];
    };
    // SQS's default is 4 days.
    let kept = dlq["Properties"]["MessageRetentionPeriod"]
        .as_u64()
        .unwrap_or(345_600);
    let (min, max) = retention;
    if !(min..=max).contains(&kept) {
        problems.push(format!(
            "{dlq_id}: MessageRetentionPeriod {kept} s, expected {min}..={max} s"
        ));
    }
    let alarmed = t.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
        let p = &a["Properties"];
        p["MetricName"] == "ApproximateNumberOfMessagesVisible"
            && as_list(&p["Dimensions"]).iter().any(|d| {
                getatt_parts(&d["Value"]["Fn::GetAtt"]).0 == dlq_id
                    || d["Value"].get("Ref").and_then(Value::as_str) == Some(dlq_id)
            })
            && !as_list(&p["AlarmActions"]).is_empty()
    });
    if !alarmed {
        problems.push(format!(
            "{dlq_id}: no alarm with an action on ApproximateNumberOfMessagesVisible"
        ));
    }
    problems
}

#[test]
fn the_deletion_queue_outlives_the_worker_and_ends_in_an_alarmed_dead_letter_queue() {
    assert_clean("deletion queue", check_deletion_queue(&template()));
}

#[test]
fn a_short_visibility_timeout_or_whole_batch_failures_fail_the_check() {
    let mut t = template();
    t.doc["Resources"]["DeletionQueue"]["Properties"]["VisibilityTimeout"] = json!(300);
    let mapping = t.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .values_mut()
        .find(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .expect("the worker's event source mapping");
    mapping["Properties"]
        .as_object_mut()
        .expect("props")
        .remove("FunctionResponseTypes");
    let problems = check_deletion_queue(&t);
    assert!(
        problems.iter().any(|p| p.contains("VisibilityTimeout")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("ReportBatchItemFailures")),
        "{problems:?}"
    );
}

#[test]
fn a_deletion_dead_letter_queue_that_drops_its_messages_early_or_is_unalarmed_fails_the_check() {
    let mut short = template();
    short.doc["Resources"]["DeletionDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] = json!(86_400);
    let problems = check_deletion_queue(&short);
    assert!(
        problems.len() == 1 && problems[0].contains("MessageRetentionPeriod 86400"),
        "{problems:?}"
    );

    let mut unalarmed = template();
    unalarmed.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .remove("DeletionDeadLetterAlarm");
    let problems = check_deletion_queue(&unalarmed);
    assert!(
        problems.len() == 1 && problems[0].contains("no alarm"),
        "{problems:?}"
    );
}

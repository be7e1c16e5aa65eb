//! What is watched: the ERROR lines an operator must hear about become metrics (a metric
//! filter on the log group of every function that writes them) with an alarm that notifies;
//! the sweep runs every 5 minutes, is not retried on top of the next run, and is alarmed when
//! it keeps failing. (The dead-letter queue alarms are checked in queues.rs and delivery.rs.)

use super::cfn::{as_list, assert_clean, assert_flags, template, Template};
use serde_json::{json, Value};

const SWEEP_SOURCE: &str = include_str!("../../../shared/domain/src/sweep.rs");
const DELETION_SOURCE: &str = include_str!("../../../shared/domain/src/deletion.rs");

/// A deletion job in progress for over an hour (the sweep, once per run per job).
pub const OVERDUE_LINE: &str = "deletion job in progress for over an hour";
/// The lock-out found no Cognito user under the job's username.
pub const COGNITO_MISSING_LINE: &str =
    "the Cognito user was not found at lock-out; resolving it again by sub";

/// The alarmed log lines: (message, the source that logs it, the functions that run that code).
pub fn alarmed_lines() -> [(&'static str, &'static str, &'static [&'static str]); 2] {
    [
        (OVERDUE_LINE, SWEEP_SOURCE, &["sweeper"]),
        (
            COGNITO_MISSING_LINE,
            DELETION_SOURCE,
            &["delete-user", "deletion-worker"],
        ),
    ]
}

/// The metric filter pattern that matches the JSON log line (tracing's JSON format, as Lambda
/// keeps it: `{"level":"ERROR","fields":{"message":...}}`).
pub fn pattern_for(message: &str) -> String {
    format!("{{ $.fields.message = \"{message}\" }}")
}

fn same_pattern(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    squash(a) == squash(b)
}

/// An alarm on (namespace, metric) that fires on the first occurrence and notifies someone.
fn check_alarm_on(t: &Template, what: &str, namespace: &str, metric: &str) -> Vec<String> {
    let alarms: Vec<(&String, &Value)> = t
        .of_type("AWS::CloudWatch::Alarm")
        .filter(|(_, a)| {
            let p = &a["Properties"];
            t.render(&p["Namespace"]) == namespace && p["MetricName"] == metric
        })
        .collect();
    if alarms.is_empty() {
        return vec![format!("{what}: no alarm on {namespace}/{metric}")];
    }
    let mut problems = Vec::new();
    for (id, a) in alarms {
        let p = &a["Properties"];
        let fires_on_one = match (p["ComparisonOperator"].as_str(), p["Threshold"].as_f64()) {
            (Some("GreaterThanThreshold"), Some(th)) => th < 1.0,
            (Some("GreaterThanOrEqualToThreshold"), Some(th)) => th <= 1.0,
            _ => false,
        };
        if !fires_on_one || p["Statistic"] != "Sum" {
            problems.push(format!("{id}: must fire on one occurrence (Sum > 0)"));
        }
        if p["TreatMissingData"] != "notBreaching" {
            problems.push(format!(
                "{id}: TreatMissingData must be notBreaching (no line = nothing wrong)"
            ));
        }
        let notifies = as_list(&p["AlarmActions"])
            .iter()
            .any(|a| a.get("Ref").and_then(Value::as_str) == Some("AlarmTopic"));
        if !notifies {
            problems.push(format!("{id}: its AlarmActions must notify AlarmTopic"));
        }
    }
    problems
}

/// (a) `message` is an ERROR line of `source`, and on the log group of every function in
/// `bins` a metric filter counts it into a metric with an alarm that notifies.
pub fn check_log_line_alarm(t: &Template, message: &str, source: &str, bins: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if !source.contains(&format!("\"{message}\"")) {
        problems.push(format!(
            "no source logs \"{message}\" any more: the alarm on it would never fire"
        ));
    }
    let mut metrics: Vec<(String, String)> = Vec::new();
    for bin in bins {
        let Some((id, f)) = t.function_by_binary(bin) else {
            problems.push(format!("no function builds {bin}"));
            continue;
        };
        let Some(group) = t.function_property(f, "LoggingConfig")["LogGroup"]
            .get("Ref")
            .and_then(Value::as_str)
        else {
            problems.push(format!(
                "{id}: LoggingConfig.LogGroup must be a !Ref to a log group of this template"
            ));
            continue;
        };
        let filters: Vec<(&String, &Value)> = t
            .of_type("AWS::Logs::MetricFilter")
            .filter(|(_, m)| {
                let p = &m["Properties"];
                p["LogGroupName"].get("Ref").and_then(Value::as_str) == Some(group)
                    && p["FilterPattern"]
                        .as_str()
                        .is_some_and(|fp| same_pattern(fp, &pattern_for(message)))
            })
            .collect();
        if filters.is_empty() {
            problems.push(format!(
                "{id}: no metric filter on {group} with the pattern {}",
                pattern_for(message)
            ));
        }
        for (fid, m) in filters {
            for tr in as_list(&m["Properties"]["MetricTransformations"]) {
                if t.render(&tr["MetricValue"]) != "1" {
                    problems.push(format!("{fid}: MetricValue must be 1 (one per line)"));
                }
                metrics.push((t.render(&tr["MetricNamespace"]), t.render(&tr["MetricName"])));
            }
        }
    }
    metrics.sort();
    metrics.dedup();
    if metrics.len() > 1 {
        problems.push(format!(
            "\"{message}\": the filters feed several metrics {metrics:?}: one alarm must see them all"
        ));
    }
    for (namespace, metric) in &metrics {
        problems.extend(check_alarm_on(t, message, namespace, metric));
    }
    problems
}

/// (b) The sweep runs on an EventBridge schedule every 5 minutes (enabled), a failed run is
/// not retried on top of the next one, it ends well inside the schedule, and three failed runs
/// in a row raise an alarm.
pub fn check_sweep_schedule(t: &Template) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary("sweeper") else {
        return vec!["no function builds sweeper".to_owned()];
    };
    let mut problems = Vec::new();
    let schedules: Vec<&Value> = f["Properties"]["Events"]
        .as_object()
        .map(|e| e.values().filter(|e| e["Type"] == "Schedule").collect())
        .unwrap_or_default();
    match schedules.as_slice() {
        [s] => {
            let p = &s["Properties"];
            let expression = p["Schedule"].as_str().unwrap_or("");
            if !matches!(expression, "rate(5 minutes)" | "cron(0/5 * * * ? *)") {
                problems.push(format!(
                    "{id}: the sweep must run every 5 minutes, got {expression:?}"
                ));
            }
            let enabled = p["State"] == "ENABLED" || (p["State"].is_null() && p["Enabled"] != json!(false));
            if !enabled {
                problems.push(format!("{id}: the schedule is not enabled"));
            }
        }
        other => problems.push(format!(
            "{id}: exactly one Schedule event expected, found {}",
            other.len()
        )),
    }
    if f["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"] != json!(0) {
        problems.push(format!(
            "{id}: EventInvokeConfig.MaximumRetryAttempts must be 0 (the next sweep is the retry)"
        ));
    }
    match t.function_property(f, "Timeout").as_u64() {
        Some(s) if s <= 120 => {}
        other => problems.push(format!(
            "{id}: Timeout {other:?} must stay well inside the 5-minute schedule"
        )),
    }
    let alarmed = t.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
        let p = &a["Properties"];
        p["Namespace"] == "AWS/Lambda"
            && p["MetricName"] == "Errors"
            && as_list(&p["Dimensions"])
                .iter()
                .any(|d| d["Value"].get("Ref").and_then(Value::as_str) == Some(id.as_str()))
            && !as_list(&p["AlarmActions"]).is_empty()
    });
    if !alarmed {
        problems.push(format!("{id}: no alarm with an action on its AWS/Lambda Errors"));
    }
    problems
}

#[test]
fn a_deletion_job_in_progress_for_over_an_hour_raises_an_alarm() {
    let [(message, source, bins), _] = alarmed_lines();
    assert_clean(
        "overdue deletions",
        check_log_line_alarm(&template(), message, source, bins),
    );
}

#[test]
fn a_cognito_user_missing_at_lock_out_raises_an_alarm_from_both_deletion_functions() {
    let [_, (message, source, bins)] = alarmed_lines();
    assert_clean(
        "Cognito user missing",
        check_log_line_alarm(&template(), message, source, bins),
    );
}

#[test]
fn the_sweep_runs_every_five_minutes_and_is_alarmed_when_it_keeps_failing() {
    assert_clean("sweep schedule", check_sweep_schedule(&template()));
}

#[test]
fn a_log_alarm_that_misses_a_function_or_a_changed_line_or_has_no_action_fails_the_check() {
    let [(overdue, sweep, sweeper), (cognito, deletion, deleters)] = alarmed_lines();

    let mut missing = template();
    missing.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .remove("CognitoUserMissingAtLockOutWorkerFilter");
    let problems = check_log_line_alarm(&missing, cognito, deletion, deleters);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_flags(
        &problems,
        &[
            "DeletionWorkerFunction",
            "no metric filter",
            "DeletionWorkerLogGroup",
        ],
    );

    // The code says something else now: the filter would never match.
    let problems = check_log_line_alarm(&template(), overdue, "tracing::error!(\"job overdue\")", sweeper);
    assert_flags(&problems, &["no source logs"]);

    let mut pattern = template();
    pattern.doc["Resources"]["DeletionOverdueMetricFilter"]["Properties"]["FilterPattern"] =
        json!("{ $.message = \"deletion job in progress for over an hour\" }");
    assert_flags(
        &check_log_line_alarm(&pattern, overdue, sweep, sweeper),
        &["no metric filter"],
    );

    let mut silent = template();
    silent.doc["Resources"]["DeletionOverdueAlarm"]["Properties"]["AlarmActions"] = json!([]);
    assert_flags(
        &check_log_line_alarm(&silent, overdue, sweep, sweeper),
        &["DeletionOverdueAlarm", "AlarmTopic"],
    );

    let mut late = template();
    late.doc["Resources"]["CognitoUserMissingAtLockOutAlarm"]["Properties"]["Threshold"] = json!(5);
    assert_flags(
        &check_log_line_alarm(&late, cognito, deletion, deleters),
        &["one occurrence"],
    );

    let mut unalarmed = template();
    unalarmed.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .remove("DeletionOverdueAlarm");
    assert_flags(
        &check_log_line_alarm(&unalarmed, overdue, sweep, sweeper),
        &["no alarm on"],
    );
}

#[test]
fn a_sweep_that_runs_rarely_or_never_or_is_retried_or_unwatched_fails_the_check() {
    fn events(t: &mut Template) -> &mut Value {
        &mut t.doc["Resources"]["SweeperFunction"]["Properties"]["Events"]
    }

    let mut hourly = template();
    events(&mut hourly)["Every5Minutes"]["Properties"]["Schedule"] = json!("rate(1 hour)");
    assert_flags(
        &check_sweep_schedule(&hourly),
        &["every 5 minutes", "rate(1 hour)"],
    );

    let mut disabled = template();
    events(&mut disabled)["Every5Minutes"]["Properties"]["State"] = json!("DISABLED");
    assert_flags(&check_sweep_schedule(&disabled), &["not enabled"]);

    let mut none = template();
    none.doc["Resources"]["SweeperFunction"]["Properties"]
        .as_object_mut()
        .expect("properties")
        .remove("Events");
    assert_flags(&check_sweep_schedule(&none), &["exactly one Schedule event"]);

    let mut retried = template();
    retried.doc["Resources"]["SweeperFunction"]["Properties"]
        .as_object_mut()
        .expect("properties")
        .remove("EventInvokeConfig");
    assert_flags(&check_sweep_schedule(&retried), &["MaximumRetryAttempts"]);

    let mut unwatched = template();
    unwatched.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .remove("SweeperFailingAlarm");
    assert_flags(&check_sweep_schedule(&unwatched), &["AWS/Lambda Errors"]);
}

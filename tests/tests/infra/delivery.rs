//! delivery-events and the SES events it records: the configuration set publishes every event
//! the function handles, to a topic encrypted with the stack's own KMS key (whose policy lets
//! SES and SNS use it for that topic only), which the function is subscribed to; what it cannot
//! record ends in an alarmed dead-letter queue that keeps the events briefly.

use super::cfn::{alternatives, as_list, assert_clean, assert_flags, getatt_parts, template, Template};
use super::queues::check_alarmed_dead_letter_queue;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The SNS subscriber of the SES configuration set's events.
pub const DELIVERY_BIN: &str = "delivery-events";
/// The topic the SES event destination publishes to.
pub const DELIVERY_TOPIC: &str = "MessageEventsTopic";

/// The SES event types delivery-events records (shared/domain/src/delivery.rs): `send` turns a
/// row left pending by an unanswered SendEmail into sent.
pub const SES_EVENT_TYPES: &[&str] = &["send", "delivery", "bounce", "complaint", "reject"];

/// The delivery-events dead-letter queue holds whole SES events (recipient addresses,
/// subjects): at least a day, to see the alarm and replay; at most 4 days (a weekend), not
/// SQS's 14.
pub const DELIVERY_DLQ_RETENTION: (u64, u64) = (86_400, 345_600);

/// (i) delivery-events is subscribed (once) to the topic the SES configuration set's event
/// destination publishes to, and SNS may invoke it.
pub fn check_delivery_subscription(t: &Template) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary(DELIVERY_BIN) else {
        return vec![format!("no function builds {DELIVERY_BIN}")];
    };
    let mut problems = Vec::new();
    let ref_of = |v: &Value| v.get("Ref").and_then(Value::as_str).map(str::to_owned);
    if !t
        .resources()
        .get(DELIVERY_TOPIC)
        .is_some_and(|r| r["Type"] == "AWS::SNS::Topic")
    {
        problems.push(format!(
            "{DELIVERY_TOPIC} is not an AWS::SNS::Topic of this template"
        ));
    }
    let ses_publishes = t
        .of_type("AWS::SES::ConfigurationSetEventDestination")
        .any(|(_, d)| {
            ref_of(&d["Properties"]["EventDestination"]["SnsDestination"]["TopicARN"]).as_deref()
                == Some(DELIVERY_TOPIC)
        });
    if !ses_publishes {
        problems.push(format!("no SES event destination publishes to {DELIVERY_TOPIC}"));
    }

    // (where, topic logical id or rendered value)
    let mut subscriptions: Vec<(String, String)> = Vec::new();
    if let Some(events) = f["Properties"]["Events"].as_object() {
        for (event_id, e) in events.iter().filter(|(_, e)| e["Type"] == "SNS") {
            let topic = &e["Properties"]["Topic"];
            subscriptions.push((
                format!("{id}.{event_id}"),
                ref_of(topic).unwrap_or_else(|| t.render(topic)),
            ));
        }
    }
    let is_this_function =
        |v: &Value| getatt_parts(&v["Fn::GetAtt"]).0 == *id || ref_of(v).as_deref() == Some(id.as_str());
    for (sid, s) in t.of_type("AWS::SNS::Subscription") {
        let p = &s["Properties"];
        if p["Protocol"] != "lambda" || !is_this_function(&p["Endpoint"]) {
            continue;
        }
        let topic = ref_of(&p["TopicArn"]).unwrap_or_else(|| t.render(&p["TopicArn"]));
        let permitted = t.of_type("AWS::Lambda::Permission").any(|(_, perm)| {
            let pp = &perm["Properties"];
            is_this_function(&pp["FunctionName"])
                && pp["Principal"] == "sns.amazonaws.com"
                && pp["Action"] == "lambda:InvokeFunction"
                && ref_of(&pp["SourceArn"]).as_deref() == Some(topic.as_str())
        });
        if !permitted {
            problems.push(format!(
                "{sid}: no AWS::Lambda::Permission lets sns.amazonaws.com invoke {id} from {topic} (SourceArn)"
            ));
        }
        subscriptions.push((sid.clone(), topic));
    }
    for (origin, topic) in &subscriptions {
        if topic != DELIVERY_TOPIC {
            problems.push(format!(
                "{origin}: subscribes {id} to {topic}, expected {DELIVERY_TOPIC}"
            ));
        }
    }
    match subscriptions
        .iter()
        .filter(|(_, topic)| topic == DELIVERY_TOPIC)
        .count()
    {
        1 => {}
        0 => problems.push(format!("{id} is not subscribed to {DELIVERY_TOPIC}")),
        n => problems.push(format!("{id} is subscribed to {DELIVERY_TOPIC} {n} times")),
    }
    problems
}

/// The OnFailure destination of an EventInvokeConfig, if any.
fn on_failure(invoke_config: &Value) -> Option<&Value> {
    let dest = &invoke_config["DestinationConfig"]["OnFailure"];
    (!dest.is_null()).then_some(dest)
}

/// (j) An event delivery-events could not record after Lambda's retries is not dropped: it
/// goes to an SQS on-failure destination or dead-letter queue, which is alarmed and keeps the
/// whole SES event it holds (addresses, subject) only briefly.
pub fn check_delivery_failures(t: &Template) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary(DELIVERY_BIN) else {
        return vec![format!("no function builds {DELIVERY_BIN}")];
    };
    let mut problems = Vec::new();
    // (where, the OnFailure destination)
    let mut targets: Vec<(String, &Value)> = Vec::new();
    if let Some(dest) = on_failure(&f["Properties"]["EventInvokeConfig"]) {
        targets.push((format!("{id}.EventInvokeConfig"), dest));
    }
    for (cid, c) in t.of_type("AWS::Lambda::EventInvokeConfig") {
        let names_it =
            c["Properties"]["FunctionName"].get("Ref").and_then(Value::as_str) == Some(id.as_str());
        if let Some(dest) = on_failure(&c["Properties"]).filter(|_| names_it) {
            targets.push((cid.clone(), dest));
        }
    }
    let mut queues = Vec::new();
    for (origin, dest) in &targets {
        if !dest["Type"].is_null() && dest["Type"] != "SQS" {
            problems.push(format!(
                "{origin}: the on-failure destination is {}, expected SQS",
                dest["Type"]
            ));
            continue;
        }
        queues.push((origin.clone(), getatt_parts(&dest["Destination"]["Fn::GetAtt"])));
    }
    let dlq = &f["Properties"]["DeadLetterQueue"];
    if !dlq.is_null() {
        let origin = format!("{id}.DeadLetterQueue");
        if dlq["Type"] == "SQS" {
            queues.push((origin, getatt_parts(&dlq["TargetArn"]["Fn::GetAtt"])));
        } else {
            problems.push(format!("{origin}: Type {}, expected SQS", dlq["Type"]));
        }
    }
    if queues.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{id}: an event that still fails after Lambda's retries is dropped: give it an SQS \
             on-failure destination (EventInvokeConfig) or DeadLetterQueue"
        ));
    }
    for (origin, (queue, attr)) in queues {
        if attr != "Arn" {
            problems.push(format!(
                "{origin}: the target must be !GetAtt <queue>.Arn of this template"
            ));
            continue;
        }
        problems.extend(check_alarmed_dead_letter_queue(t, &queue, DELIVERY_DLQ_RETENTION));
    }
    problems
}

/// (k) The configuration set publishes every event type delivery-events records to the topic
/// it is subscribed to.
pub fn check_ses_event_types(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let destinations: Vec<(&String, &Value)> = t
        .of_type("AWS::SES::ConfigurationSetEventDestination")
        .filter(|(_, d)| {
            d["Properties"]["EventDestination"]["SnsDestination"]["TopicARN"]
                .get("Ref")
                .and_then(Value::as_str)
                == Some(DELIVERY_TOPIC)
        })
        .collect();
    if destinations.is_empty() {
        return vec![format!("no SES event destination publishes to {DELIVERY_TOPIC}")];
    }
    for (id, d) in destinations {
        let destination = &d["Properties"]["EventDestination"];
        if destination["Enabled"] != json!(true) {
            problems.push(format!("{id}: the event destination is not Enabled"));
        }
        let types: BTreeSet<String> = as_list(&destination["MatchingEventTypes"])
            .into_iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect();
        for wanted in SES_EVENT_TYPES {
            if !types.contains(*wanted) {
                problems.push(format!(
                    "{id}: MatchingEventTypes lacks {wanted}, which delivery-events records"
                ));
            }
        }
    }
    problems
}

/// Whether a key policy statement allows `principal` (service) every one of `actions`, and
/// on condition of the topic's encryption context when it has a condition at all.
fn key_statement_allows(t: &Template, s: &Value, principal: &str, actions: &[&str], topic_arn: &str) -> bool {
    let principals: Vec<String> = alternatives(&s["Principal"]["Service"])
        .into_iter()
        .map(|p| t.render(p))
        .collect();
    let granted: Vec<String> = alternatives(&s["Action"])
        .into_iter()
        .map(|a| t.render(a))
        .collect();
    s["Effect"] == "Allow"
        && principals.iter().any(|p| p == principal)
        && actions
            .iter()
            .all(|a| granted.iter().any(|g| super::cfn::glob(g, a)))
        && (s["Condition"].is_null()
            || t.render(&s["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"])
                == topic_arn)
}

/// (l) The SES events topic is encrypted with a customer-managed key of this stack (rotated),
/// whose policy lets SES publish (GenerateDataKey* and Decrypt) and SNS deliver (Decrypt), for
/// this topic only where it is conditioned, and leaves the key administrable by the account.
pub fn check_events_topic_encryption(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(topic) = t.resources().get(DELIVERY_TOPIC) else {
        return vec![format!("{DELIVERY_TOPIC} is not a resource of this template")];
    };
    let key_ref = &topic["Properties"]["KmsMasterKeyId"];
    let key_id = key_ref
        .get("Ref")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| Some(getatt_parts(&key_ref["Fn::GetAtt"]).0).filter(|k| !k.is_empty()));
    let Some((key_id, key)) = key_id.and_then(|id| t.resources().get(&id).map(|k| (id, k))) else {
        return vec![format!(
            "{DELIVERY_TOPIC}: KmsMasterKeyId must name an AWS::KMS::Key of this template (not alias/aws/sns), got {key_ref}"
        )];
    };
    if key["Type"] != "AWS::KMS::Key" {
        return vec![format!("{DELIVERY_TOPIC}: {key_id} is not an AWS::KMS::Key")];
    }
    let props = &key["Properties"];
    if props["EnableKeyRotation"] != json!(true) {
        problems.push(format!("{key_id}: EnableKeyRotation must be true"));
    }
    let topic_arn = match &topic["Properties"]["TopicName"] {
        Value::Null => "*".to_owned(),
        name => format!("arn:aws:sns:us-east-1:123456789012:{}", t.render(name)),
    };
    let statements = alternatives(&props["KeyPolicy"]["Statement"]);
    let administered = statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && t.render(&s["Principal"]["AWS"]) == "arn:aws:iam::123456789012:root"
            && alternatives(&s["Action"]).iter().any(|a| t.render(a) == "kms:*")
    });
    if !administered {
        problems.push(format!(
            "{key_id}: the key policy must let the account administer the key (root, kms:*), or nobody can"
        ));
    }
    for (principal, actions) in [
        ("ses.amazonaws.com", &["kms:GenerateDataKey", "kms:Decrypt"][..]),
        ("sns.amazonaws.com", &["kms:Decrypt"][..]),
    ] {
        if !statements
            .iter()
            .any(|s| key_statement_allows(t, s, principal, actions, &topic_arn))
        {
            problems.push(format!(
                "{key_id}: the key policy does not let {principal} use the key ({}) for {topic_arn}",
                actions.join(", ")
            ));
        }
    }
    problems
}

#[test]
fn the_delivery_events_function_is_subscribed_to_the_topic_ses_publishes_to() {
    assert_clean(
        "delivery-events subscription",
        check_delivery_subscription(&template()),
    );
}

#[test]
fn delivery_events_that_keep_failing_end_in_an_alarmed_dead_letter_queue_that_keeps_them_briefly() {
    assert_clean("delivery-events failures", check_delivery_failures(&template()));
}

#[test]
fn ses_publishes_every_event_type_delivery_events_records_including_send() {
    assert_clean("SES event types", check_ses_event_types(&template()));
}

#[test]
fn the_ses_events_topic_is_encrypted_with_the_stacks_own_key_that_ses_and_sns_may_use() {
    assert_clean(
        "events topic encryption",
        check_events_topic_encryption(&template()),
    );
}

#[test]
fn the_existence_check_of_delivery_events_names_the_message_id_only() {
    let t = template();
    let statements =
        t.resources()["DeliveryEventsFunction"]["Properties"]["Policies"][0]["Statement"].clone();
    let get = as_list(&statements)
        .into_iter()
        .find(|s| s["Action"] == "dynamodb:GetItem")
        .cloned()
        .expect("a GetItem statement");
    // A GetItem without a ProjectionExpression names no attribute: Null=false refuses it.
    assert_eq!(get["Condition"]["Null"]["dynamodb:Attributes"], "false");
    assert_eq!(
        get["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"],
        json!(["message_id"])
    );
}

#[test]
fn a_subscription_to_another_topic_or_none_fails_the_check() {
    let mut other = template();
    other.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Events"]["MessageEvents"]["Properties"]
        ["Topic"] = json!({ "Ref": "AlarmTopic" });
    let problems = check_delivery_subscription(&other);
    assert!(
        problems.iter().any(|p| p.contains("AlarmTopic"))
            && problems.iter().any(|p| p.contains("not subscribed")),
        "{problems:?}"
    );

    let mut none = template();
    none.doc["Resources"]["DeliveryEventsFunction"]["Properties"]
        .as_object_mut()
        .expect("props")
        .remove("Events");
    let problems = check_delivery_subscription(&none);
    assert!(
        problems.len() == 1 && problems[0].contains("not subscribed"),
        "{problems:?}"
    );

    let mut twice = template();
    twice.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Events"]["Again"] =
        json!({ "Type": "SNS", "Properties": { "Topic": { "Ref": "MessageEventsTopic" } } });
    let problems = check_delivery_subscription(&twice);
    assert!(
        problems.len() == 1 && problems[0].contains("2 times"),
        "{problems:?}"
    );

    let mut unpublished = template();
    unpublished.doc["Resources"]["MessageEventsDestination"]["Properties"]["EventDestination"]
        ["SnsDestination"]["TopicARN"] = json!({ "Ref": "AlarmTopic" });
    let problems = check_delivery_subscription(&unpublished);
    assert!(
        problems.len() == 1 && problems[0].contains("no SES event destination"),
        "{problems:?}"
    );
}

#[test]
fn an_explicit_sns_subscription_passes_only_with_its_invoke_permission() {
    let mut t = template();
    t.doc["Resources"]["DeliveryEventsFunction"]["Properties"]
        .as_object_mut()
        .expect("props")
        .remove("Events");
    let resources = t.doc["Resources"].as_object_mut().expect("resources");
    resources.insert(
        "DeliveryEventsSubscription".into(),
        json!({ "Type": "AWS::SNS::Subscription", "Properties": {
            "Protocol": "lambda",
            "TopicArn": { "Ref": "MessageEventsTopic" },
            "Endpoint": { "Fn::GetAtt": ["DeliveryEventsFunction", "Arn"] } } }),
    );
    let problems = check_delivery_subscription(&t);
    assert!(
        problems.len() == 1 && problems[0].contains("no AWS::Lambda::Permission"),
        "{problems:?}"
    );
    t.doc["Resources"].as_object_mut().expect("resources").insert(
        "DeliveryEventsInvokePermission".into(),
        json!({ "Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": { "Ref": "DeliveryEventsFunction" },
            "Principal": "sns.amazonaws.com",
            "SourceArn": { "Ref": "MessageEventsTopic" } } }),
    );
    assert_clean("explicit subscription", check_delivery_subscription(&t));
}

#[test]
fn no_failure_destination_or_an_unalarmed_one_fails_the_check() {
    let mut dropped = template();
    dropped.doc["Resources"]["DeliveryEventsFunction"]["Properties"]
        .as_object_mut()
        .expect("props")
        .remove("EventInvokeConfig");
    let problems = check_delivery_failures(&dropped);
    assert!(
        problems.len() == 1 && problems[0].contains("dropped"),
        "{problems:?}"
    );

    // A DeadLetterQueue instead of the on-failure destination is fine ...
    let mut dlq = dropped;
    dlq.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["DeadLetterQueue"] = json!({
        "Type": "SQS",
        "TargetArn": { "Fn::GetAtt": ["DeliveryEventsDeadLetterQueue", "Arn"] }
    });
    assert_clean("dead-letter queue", check_delivery_failures(&dlq));

    // ... as long as someone hears about what lands there.
    let mut unalarmed = template();
    unalarmed.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .remove("DeliveryEventsDeadLetterAlarm");
    let problems = check_delivery_failures(&unalarmed);
    assert!(
        problems.len() == 1 && problems[0].contains("no alarm"),
        "{problems:?}"
    );

    let mut topic = template();
    topic.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["EventInvokeConfig"]
        ["DestinationConfig"]["OnFailure"] = json!({ "Type": "SNS", "Destination": { "Ref": "AlarmTopic" } });
    let problems = check_delivery_failures(&topic);
    assert!(
        problems.len() == 1 && problems[0].contains("expected SQS"),
        "{problems:?}"
    );
}

#[test]
fn an_events_dead_letter_queue_that_keeps_ses_events_for_two_weeks_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["DeliveryEventsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] =
        json!(1_209_600);
    let problems = check_delivery_failures(&t);
    assert!(
        problems.len() == 1 && problems[0].contains("MessageRetentionPeriod 1209600"),
        "{problems:?}"
    );
}

#[test]
fn a_configuration_set_that_does_not_publish_send_events_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["MessageEventsDestination"]["Properties"]["EventDestination"]["MatchingEventTypes"] =
        json!(["delivery", "bounce", "complaint", "reject"]);
    let problems = check_ses_event_types(&t);
    assert!(
        problems.len() == 1 && problems[0].contains("lacks send"),
        "{problems:?}"
    );
}

#[test]
fn an_unencrypted_or_aws_managed_or_unusable_events_topic_fails_the_check() {
    let mut plain = template();
    plain.doc["Resources"][DELIVERY_TOPIC]["Properties"]
        .as_object_mut()
        .expect("properties")
        .remove("KmsMasterKeyId");
    assert_flags(&check_events_topic_encryption(&plain), &["KmsMasterKeyId"]);

    let mut managed = template();
    managed.doc["Resources"][DELIVERY_TOPIC]["Properties"]["KmsMasterKeyId"] = json!("alias/aws/sns");
    assert_flags(&check_events_topic_encryption(&managed), &["alias/aws/sns"]);

    let mut no_ses = template();
    no_ses.doc["Resources"]["MessageEventsKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_array_mut()
        .expect("statements")
        .retain(|s| s["Principal"]["Service"] != "ses.amazonaws.com");
    assert_flags(&check_events_topic_encryption(&no_ses), &["ses.amazonaws.com"]);

    let mut other_topic = template();
    for s in other_topic.doc["Resources"]["MessageEventsKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_array_mut()
        .expect("statements")
    {
        if !s["Condition"].is_null() {
            s["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"] =
                json!("arn:aws:sns:*:*:*");
        }
    }
    let problems = check_events_topic_encryption(&other_topic);
    assert_flags(&problems, &["ses.amazonaws.com"]);
    assert_flags(&problems, &["sns.amazonaws.com"]);

    let mut unrotated = template();
    unrotated.doc["Resources"]["MessageEventsKey"]["Properties"]["EnableKeyRotation"] = json!(false);
    assert_flags(&check_events_topic_encryption(&unrotated), &["EnableKeyRotation"]);
}

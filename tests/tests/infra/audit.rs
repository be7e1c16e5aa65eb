//! security_logs is append-only: no IAM statement (function policies, SAM policy templates,
//! IAM resources) lets anything update or delete its items, or the table — but for the one
//! counter that changes: the count of a caller's refusals in a minute, on that minute's first
//! refusal row (`refusals#<caller>#<minute>`), which an UpdateItem limited to those rows
//! (`dynamodb:LeadingKeys`) and to named attributes may write.

use super::cfn::{
    alternatives, as_list, assert_clean, glob, statements_of_document, table_arn, template, Template,
};
use serde_json::{json, Value};

/// Actions that would let a function change or remove audit rows (or the table itself):
/// BatchWriteItem deletes, PartiQL updates and deletes, TTL could expire rows, UpdateTable could
/// lift deletion protection.
const AUDIT_TAMPERING_ACTIONS: &[&str] = &[
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
];

/// SAM policy templates that cannot write to a table.
const READ_ONLY_POLICY_TEMPLATES: &[&str] = &["DynamoDBReadPolicy", "DynamoDBStreamReadPolicy"];

/// (e) No IAM statement (function policies, SAM policy templates, IAM resources) lets anything
/// update or delete security_logs items, or the table.
pub fn check_security_logs_append_only(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(logs) = t.table_env_var("SECURITY_LOGS_TABLE") else {
        return vec!["the template has no SecurityLogsTable".to_owned()];
    };
    let logs_arn = table_arn(&logs.physical_name);

    let mut statements = Vec::new();
    for (id, f) in t.functions() {
        for policy in alternatives(t.function_property(f, "Policies")) {
            match policy {
                Value::String(managed) => {
                    let m = managed.to_lowercase();
                    if ["administratoraccess", "poweruseraccess", "dynamodbfullaccess"]
                        .iter()
                        .any(|b| m.contains(b))
                    {
                        problems.push(format!("{id}: managed policy {managed} can write to every table"));
                    }
                }
                Value::Object(m) if m.contains_key("Statement") => {
                    statements_of_document(&format!("{id} (inline policy)"), policy, &mut statements);
                }
                Value::Object(m) => {
                    for (name, args) in m {
                        if READ_ONLY_POLICY_TEMPLATES.contains(&name.as_str()) {
                            continue;
                        }
                        let touches_logs = as_list(args)
                            .into_iter()
                            .filter_map(Value::as_object)
                            .flat_map(|a| a.values())
                            .map(|v| t.render(v))
                            .any(|s| glob(&s, &logs.physical_name) || glob(&s, &logs_arn));
                        if touches_logs {
                            problems.push(format!(
                                "{id}: SAM policy template {name} grants writes on {}",
                                logs.logical_id
                            ));
                        }
                    }
                }
                other => problems.push(format!("{id}: unrecognised policy entry {other}")),
            }
        }
    }
    for (id, r) in t.resources() {
        match r["Type"].as_str() {
            Some("AWS::IAM::Role") => {
                for p in as_list(&r["Properties"]["Policies"]) {
                    statements_of_document(
                        &format!("{id} (role policy)"),
                        &p["PolicyDocument"],
                        &mut statements,
                    );
                }
            }
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy") => {
                statements_of_document(id, &r["Properties"]["PolicyDocument"], &mut statements);
            }
            _ => {}
        }
    }

    for s in statements {
        if s.body["Effect"] != "Allow" {
            continue;
        }
        let grants_tampering = if !s.body["NotAction"].is_null() {
            // Allow + NotAction grants everything not listed: every tampering action must be listed.
            let excluded: Vec<String> = alternatives(&s.body["NotAction"])
                .into_iter()
                .map(|a| t.render(a))
                .collect();
            AUDIT_TAMPERING_ACTIONS
                .iter()
                .any(|a| !excluded.iter().any(|e| glob(e, a)))
        } else {
            let actions: Vec<String> = alternatives(&s.body["Action"])
                .into_iter()
                .map(|a| t.render(a))
                .collect();
            AUDIT_TAMPERING_ACTIONS
                .iter()
                .any(|a| actions.iter().any(|p| glob(p, a)))
        };
        if !grants_tampering || is_refusal_counter(t, s.body) {
            continue;
        }
        let covers_logs = if !s.body["NotResource"].is_null() {
            let excluded: Vec<String> = alternatives(&s.body["NotResource"])
                .into_iter()
                .map(|r| t.render(r))
                .collect();
            !excluded.iter().any(|e| glob(e, &logs_arn))
        } else {
            alternatives(&s.body["Resource"])
                .into_iter()
                .map(|r| t.render(r))
                .any(|r| glob(&r, &logs_arn))
        };
        if covers_logs {
            let sid = s.body["Sid"].as_str().unwrap_or("(no Sid)");
            problems.push(format!(
                "{}: statement {sid} lets it update or delete {} (append-only): {}",
                s.origin, logs.logical_id, s.body
            ));
        }
    }
    problems
}

/// The statement lets nothing but UpdateItem, of the refusal counter rows only, in named
/// attributes only.
fn is_refusal_counter(t: &Template, statement: &Value) -> bool {
    let actions: Vec<String> = alternatives(&statement["Action"])
        .into_iter()
        .map(|a| t.render(a))
        .collect();
    let only_update = statement["NotAction"].is_null() && actions == ["dynamodb:UpdateItem"];
    let condition = &statement["Condition"];
    let leading: Vec<String> = alternatives(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
        .into_iter()
        .map(|v| t.render(v))
        .collect();
    let attributes = alternatives(&condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]);
    only_update && leading == ["refusals#*"] && !attributes.is_empty()
}

#[test]
fn no_function_can_update_or_delete_security_logs() {
    assert_clean("security_logs", check_security_logs_append_only(&template()));
}

/// Appends a statement to the first inline policy of message-user.
fn with_statement(statement: Value) -> Template {
    let mut t = template();
    let policies = &mut t.doc["Resources"]["MessageUserFunction"]["Properties"]["Policies"];
    policies[0]["Statement"]
        .as_array_mut()
        .expect("inline statements")
        .push(statement);
    t
}

#[test]
fn any_grant_that_could_update_or_delete_audit_rows_fails_the_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": { "Fn::GetAtt": ["SecurityLogsTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"], "Resource": { "Fn::Sub": "${SecurityLogsTable.Arn}" } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": { "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-*" } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "*", "Resource": "arn:aws:dynamodb:*:*:table/*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:PartiQL*", "Resource": { "Fn::GetAtt": ["SecurityLogsTable", "Arn"] } }),
        json!({ "Effect": "Allow", "NotAction": "s3:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateTimeToLive", "NotResource": { "Fn::GetAtt": ["ProfilesTable", "Arn"] } }),
    ];
    for statement in cases {
        let problems = check_security_logs_append_only(&with_statement(statement.clone()));
        assert_eq!(
            problems.len(),
            1,
            "expected the checker to flag {statement}, got {problems:?}"
        );
    }
}

#[test]
fn only_the_refusal_counter_rows_may_be_updated_and_only_in_named_attributes() {
    let counter = json!({
        "Effect": "Allow",
        "Action": "dynamodb:UpdateItem",
        "Resource": {"Fn::GetAtt": ["SecurityLogsTable", "Arn"]},
        "Condition": {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["refusals#*"]},
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["event_id", "request_ids"]}
        }
    });
    assert!(check_security_logs_append_only(&with_statement(counter.clone())).is_empty());
    for (what, broken) in [
        ("any row", {
            let mut s = counter.clone();
            s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = json!(["*"]);
            s
        }),
        ("any attribute", {
            let mut s = counter.clone();
            s["Condition"]
                .as_object_mut()
                .unwrap()
                .remove("ForAllValues:StringEquals");
            s
        }),
        ("deletes too", {
            let mut s = counter.clone();
            s["Action"] = json!(["dynamodb:UpdateItem", "dynamodb:DeleteItem"]);
            s
        }),
    ] {
        assert!(
            !check_security_logs_append_only(&with_statement(broken)).is_empty(),
            "{what}"
        );
    }
}

#[test]
fn writes_elsewhere_and_a_deny_on_security_logs_pass_the_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": { "Fn::GetAtt": ["ProfilesTable", "Arn"] } }),
        json!({ "Effect": "Deny", "Action": "dynamodb:*", "Resource": { "Fn::GetAtt": ["SecurityLogsTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:Query", "Resource": { "Fn::Sub": "${SecurityLogsTable.Arn}/index/by_target" } }),
    ];
    for statement in cases {
        assert_clean(
            &statement.to_string(),
            check_security_logs_append_only(&with_statement(statement.clone())),
        );
    }
}

#[test]
fn a_sam_write_policy_template_on_security_logs_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["ListUsersFunction"]["Properties"]["Policies"]
        .as_array_mut()
        .expect("policies")
        .push(json!({ "DynamoDBCrudPolicy": { "TableName": { "Ref": "SecurityLogsTable" } } }));
    let problems = check_security_logs_append_only(&t);
    assert!(
        problems.len() == 1 && problems[0].contains("DynamoDBCrudPolicy"),
        "{problems:?}"
    );
}

//! Least privilege, per function: exactly the calls of its adapters (`expected.rs`), each write
//! limited to the attributes it names and to what it asks back; attributes no function has any
//! business writing stay out of reach however the statements combine; no table beyond its own.

use super::cfn::{
    alternatives, as_list, assert_clean, assert_flags, dynamodb_action_patterns, glob, grants_of,
    statement_covers, table_arn, table_arns, template, TableDef, Template,
};
use super::expected::{self, Grant, FUNCTIONS};
use super::iam::{effective, literal_grants, show, Limits};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Writes: what could set an attribute of an item.
const WRITE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
];

/// Actions that reach an item and accept `dynamodb:Attributes` / `dynamodb:ReturnValues`
/// conditions: every grant of one of them must carry both limits (BatchWriteItem has no
/// ReturnValues).
const LIMITED_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
];

/// (table, attribute, the only functions that may write it).
const PROTECTED_ATTRIBUTES: &[(&str, &str, &[&str])] = &[
    // Roles are set outside this application; nothing here may promote or demote anyone.
    ("PROFILES_TABLE", "role", &[]),
    ("PROFILES_TABLE", "created_at", &[]),
    // The tombstone's name: the deletion only.
    (
        "PROFILES_TABLE",
        "display_name",
        &["delete-user", "deletion-worker"],
    ),
    // A message's content and parties: written once, by the send.
    ("ADMIN_MESSAGES_TABLE", "subject", &["message-user"]),
    ("ADMIN_MESSAGES_TABLE", "body", &["message-user"]),
    ("ADMIN_MESSAGES_TABLE", "sender_id", &["message-user"]),
    ("ADMIN_MESSAGES_TABLE", "recipient_id", &["message-user"]),
    // The erasure receipt.
    (
        "DELETION_JOBS_TABLE",
        "target_email_sha256",
        &["delete-user", "deletion-worker"],
    ),
    (
        "DELETION_JOBS_TABLE",
        "deleted",
        &["delete-user", "deletion-worker"],
    ),
];

/// (a) The function built from `bin` is granted exactly `expected`, as inline statements: no
/// other (action, resource), none missing, and on each the attribute, return-value and
/// partition-key limits of `expected`.
pub fn check_grants(t: &Template, bin: &str, expected: &[Grant]) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary(bin) else {
        return vec![format!("no function builds {bin}")];
    };
    let mut problems = Vec::new();
    let grants = grants_of(t, id, f);
    for (name, _) in &grants.templates {
        problems.push(format!(
            "{id}: policy template {name}: state the exact calls as inline statements"
        ));
    }
    for managed in &grants.managed {
        problems.push(format!(
            "{id}: managed policy {managed}: state the exact calls as inline statements"
        ));
    }
    let (granted, open_ended) = literal_grants(t, &grants.statements);
    for s in open_ended {
        let sid = s.body["Sid"].as_str().unwrap_or("(no Sid)");
        problems.push(format!(
            "{}: statement {sid} uses NotAction/NotResource",
            s.origin
        ));
    }
    // Two calls of one action on one resource (GetItem of idempotency keys and of rate rows)
    // need what either needs.
    let mut wanted: BTreeMap<(String, String), Limits> = BTreeMap::new();
    for g in expected {
        let limits = Limits {
            attributes: g.attribute_patterns(),
            return_values: g.return_value_patterns(),
            leading_keys: g.leading_key_patterns(),
        };
        wanted
            .entry((g.action.to_lowercase(), g.resource(t)))
            .and_modify(|l| *l = l.union(&limits))
            .or_insert(limits);
    }
    for ((action, resource), limits) in &granted {
        let Some(want) = wanted.get(&(action.clone(), resource.clone())) else {
            problems.push(format!(
                "{id}: grants {action} on {resource}, which its code does not call"
            ));
            continue;
        };
        let compare = [
            ("attributes", &limits.attributes, &want.attributes),
            ("return values", &limits.return_values, &want.return_values),
            ("partition keys", &limits.leading_keys, &want.leading_keys),
        ];
        for (what, got, want) in compare {
            if got != want {
                problems.push(format!(
                    "{id}: {action} on {resource}: {what} {} (the code needs {})",
                    show(got),
                    show(want)
                ));
            }
        }
    }
    for (action, resource) in wanted.keys() {
        if !granted.contains_key(&(action.clone(), resource.clone())) {
            problems.push(format!(
                "{id}: does not grant {action} on {resource}, which its code calls"
            ));
        }
    }
    problems
}

/// (b) However the statements combine (wildcards, `NotAction`, several statements on one
/// table), no function but the ones listed can write a protected attribute.
pub fn check_protected_attributes(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, f) in t.functions() {
        let bin = t.binary_of(f).unwrap_or_default();
        let grants = grants_of(t, id, f);
        for managed in &grants.managed {
            problems.push(format!(
                "{id}: managed policy {managed} cannot be checked attribute by attribute"
            ));
        }
        for (name, _) in &grants.templates {
            if name.to_lowercase().contains("dynamodb") && !name.contains("Read") {
                problems.push(format!("{id}: policy template {name} writes whole items"));
            }
        }
        for (env, attribute, writers) in PROTECTED_ATTRIBUTES {
            if writers.contains(&bin.as_str()) {
                continue;
            }
            let Some(table) = t.table_env_var(env) else {
                continue;
            };
            let arn = table_arn(&table.physical_name);
            for action in WRITE_ACTIONS {
                let Some(limits) = effective(t, &grants.statements, action, &arn) else {
                    continue;
                };
                if limits.allows_attribute(attribute) {
                    problems.push(format!(
                        "{id} ({bin}) may write {attribute} of {} through {action} (attributes {})",
                        table.logical_id,
                        show(&limits.attributes)
                    ));
                }
            }
        }
    }
    problems
}

/// (c) Every Allow statement of every function that grants a write on a table limits the
/// attributes (`ForAllValues:StringEquals dynamodb:Attributes`) and what it hands back
/// (`dynamodb:ReturnValues`, except BatchWriteItem, which has none).
pub fn check_writes_are_limited(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let tables = t.tables();
    for (id, f) in t.functions() {
        for s in &grants_of(t, id, f).statements {
            let sid = s.body["Sid"].as_str().unwrap_or("(no Sid)");
            for action in LIMITED_ACTIONS {
                let on_a_table = tables.iter().any(|table| {
                    super::iam::statement_allows_action(t, s.body, action)
                        && statement_covers(t, s.body, &table_arn(&table.physical_name))
                });
                if !on_a_table {
                    continue;
                }
                let limits = Limits::of_condition(t, &s.body["Condition"]);
                if limits.attributes.is_none() {
                    problems.push(format!(
                        "{}: statement {sid} grants {action} without limiting dynamodb:Attributes (ForAllValues)",
                        s.origin
                    ));
                }
                if *action != "dynamodb:BatchWriteItem" && limits.return_values.is_none() {
                    problems.push(format!(
                        "{}: statement {sid} grants {action} without limiting dynamodb:ReturnValues",
                        s.origin
                    ));
                }
            }
        }
    }
    problems
}

/// (d) The function built from `bin` can reach no DynamoDB table but `allowed` (environment
/// variable names): no statement, policy template or managed policy covers another table.
pub fn check_table_access(t: &Template, bin: &str, allowed: &[&str]) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary(bin) else {
        return vec![format!("no function builds {bin}")];
    };
    let mut problems = Vec::new();
    let others: Vec<TableDef> = t
        .tables()
        .into_iter()
        .filter(|table| !allowed.contains(&table.env_var.as_str()))
        .collect();
    let grants = grants_of(t, id, f);
    for managed in &grants.managed {
        let m = managed.to_lowercase();
        if [
            "dynamodb",
            "administratoraccess",
            "poweruseraccess",
            "readonlyaccess",
            "role ",
        ]
        .iter()
        .any(|b| m.contains(b))
        {
            problems.push(format!("{id}: {managed} can reach other tables"));
        }
    }
    for (name, args) in &grants.templates {
        let rendered: Vec<String> = as_list(args)
            .into_iter()
            .filter_map(Value::as_object)
            .flat_map(|a| a.values())
            .map(|v| t.render(v))
            .collect();
        for table in &others {
            let hits = rendered
                .iter()
                .any(|r| glob(r, &table.physical_name) || table_arns(table).iter().any(|a| glob(r, a)));
            if hits {
                problems.push(format!(
                    "{id}: SAM policy template {name} reaches {}",
                    table.logical_id
                ));
            }
        }
    }
    for s in &grants.statements {
        let actions = dynamodb_action_patterns(t, s.body);
        if actions.is_empty() {
            continue;
        }
        for table in &others {
            if table_arns(table)
                .iter()
                .any(|arn| statement_covers(t, s.body, arn))
            {
                let sid = s.body["Sid"].as_str().unwrap_or("(no Sid)");
                problems.push(format!(
                    "{}: statement {sid} ({}) reaches {}",
                    s.origin,
                    actions.join(", "),
                    table.logical_id
                ));
            }
        }
    }
    problems
}

/// (e) The rate-limit windows are reached only while their limit is on: every statement on
/// `rate#...` partition keys sits in an `Fn::If` on the condition that the limit's parameter
/// is not 0.
pub fn check_rate_limit_grants_are_conditional(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (bin, prefix, condition, parameter) in [
        (
            "message-user",
            "rate#messages#",
            "HasMessageLimit",
            "MessagesPerMinute",
        ),
        (
            "delete-user",
            "rate#deletions#",
            "HasDeletionLimit",
            "DeletionsPerHour",
        ),
        (
            "deletion-worker",
            "rate#deletions#",
            "HasDeletionLimit",
            "DeletionsPerHour",
        ),
    ] {
        // `Ref` of a Number parameter is a string: compared with "0".
        let expected = json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": parameter }, "0"] }] });
        let defined = &t.doc["Conditions"][condition];
        if *defined != expected {
            problems.push(format!(
                "condition {condition} must be !Not [!Equals [!Ref {parameter}, 0]], got {defined}"
            ));
        }
        let Some((id, f)) = t.function_by_binary(bin) else {
            problems.push(format!("no function builds {bin}"));
            continue;
        };
        let mut found = 0;
        for policy in as_list(t.function_property(f, "Policies")) {
            for entry in as_list(&policy["Statement"]) {
                let (guard, statements) = match entry.get("Fn::If").and_then(Value::as_array) {
                    Some(args) => (args[0].as_str(), alternatives(&args[1])),
                    None => (None, vec![entry]),
                };
                for s in statements {
                    let leading = Limits::of_condition(t, &s["Condition"]).leading_keys;
                    let on_rate_rows = leading.is_some_and(|l| l.iter().any(|(p, _)| p.starts_with(prefix)));
                    if !on_rate_rows {
                        continue;
                    }
                    found += 1;
                    if guard != Some(condition) {
                        let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
                        problems.push(format!(
                            "{id}: statement {sid} on {prefix}* rows is not inside !If [{condition}, ...]"
                        ));
                    }
                }
            }
        }
        if found == 0 {
            problems.push(format!("{id}: no statement on {prefix}* rows"));
        }
    }
    problems
}

/// Every intrinsic replaced by its rendered string (for measuring policies).
fn rendered(t: &Template, v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.keys().all(|k| k == "Ref" || k.starts_with("Fn::")) => {
            if m.contains_key("Fn::If") {
                v.clone()
            } else {
                Value::String(t.render(v))
            }
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), rendered(t, x))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(|x| rendered(t, x)).collect()),
        other => other.clone(),
    }
}

/// IAM's limit on a role's inline policies: 10,240 characters, whitespace not counted.
const ROLE_POLICY_LIMIT: usize = 10_240;
/// What the ARNs of a real stack add to the rendered ones here (longer stack and table names).
const ARN_ALLOWANCE: usize = 1_500;

/// (f) Each function's inline policies fit IAM's size limit with room for real ARNs.
pub fn check_policy_sizes(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, f) in t.functions() {
        let size: usize = as_list(t.function_property(f, "Policies"))
            .into_iter()
            .map(|p| {
                serde_json::to_string(&rendered(t, p))
                    .map(|s| s.len())
                    .unwrap_or(0)
            })
            .sum();
        if size + ARN_ALLOWANCE > ROLE_POLICY_LIMIT {
            problems.push(format!(
                "{id}: its inline policies take {size} characters; with real ARNs they may pass IAM's {ROLE_POLICY_LIMIT}"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// On the template.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_function_is_granted_exactly_the_calls_its_adapters_make() {
    let t = template();
    let bins: Vec<String> = t.functions().iter().filter_map(|(_, f)| t.binary_of(f)).collect();
    let mut listed: Vec<&str> = FUNCTIONS.to_vec();
    listed.sort_unstable();
    let mut built: Vec<&str> = bins.iter().map(String::as_str).collect();
    built.sort_unstable();
    assert_eq!(
        built, listed,
        "every function of the template has its expected grants"
    );
    for bin in FUNCTIONS {
        assert_clean(bin, check_grants(&t, bin, &expected::grants(bin)));
    }
}

#[test]
fn no_function_can_write_a_profiles_role_or_a_messages_subject_and_body_unless_it_owns_them() {
    assert_clean("protected attributes", check_protected_attributes(&template()));
}

#[test]
fn every_dynamodb_write_is_limited_to_named_attributes_and_return_values() {
    assert_clean("write limits", check_writes_are_limited(&template()));
}

#[test]
fn every_function_reaches_only_its_own_tables() {
    let t = template();
    for bin in FUNCTIONS {
        let allowed: Vec<&str> = expected::tables(bin).into_iter().collect();
        assert_clean(bin, check_table_access(&t, bin, &allowed));
    }
    let delivery = expected::tables("delivery-events");
    assert_eq!(delivery.into_iter().collect::<Vec<_>>(), ["ADMIN_MESSAGES_TABLE"]);
    let sweeper = expected::tables("sweeper");
    assert_eq!(
        sweeper.into_iter().collect::<Vec<_>>(),
        ["ADMIN_MESSAGES_TABLE", "DELETION_JOBS_TABLE"],
        "the sweeper is given PROFILES_TABLE and SECURITY_LOGS_TABLE but reaches neither"
    );
}

#[test]
fn the_rate_limit_windows_are_reached_only_while_their_limit_is_on() {
    assert_clean(
        "rate limits",
        check_rate_limit_grants_are_conditional(&template()),
    );
}

#[test]
fn every_functions_inline_policies_fit_iams_size_limit() {
    assert_clean("policy sizes", check_policy_sizes(&template()));
}

#[test]
fn the_worker_shares_delete_users_data_grants_through_the_yaml_alias() {
    let t = template();
    let grants = |id: &str| t.resources()[id]["Properties"]["Policies"][0]["Statement"].clone();
    let delete = grants("DeleteUserFunction");
    assert!(delete.as_array().is_some_and(|s| s.len() > 5), "{delete}");
    assert_eq!(grants("DeletionWorkerFunction"), delete);
}

#[test]
fn send_email_is_limited_to_the_configured_from_address() {
    let t = template();
    let (id, f) = t.function_by_binary("message-user").expect("message-user");
    let statements = grants_of(&t, id, f).statements;
    let ses: Vec<&Value> = statements
        .iter()
        .map(|s| s.body)
        .filter(|s| dynamodb_action_patterns(&t, s).is_empty() && s["Effect"] == "Allow")
        .filter(|s| {
            alternatives(&s["Action"])
                .iter()
                .any(|a| t.render(a) == "ses:SendEmail")
        })
        .collect();
    assert_eq!(ses.len(), 1, "{ses:?}");
    assert_eq!(
        ses[0]["Condition"]["StringEquals"]["ses:FromAddress"],
        json!({ "Ref": "MailFromAddress" })
    );
}

// ---------------------------------------------------------------------------------------------
// The checkers fail on broken copies.
// ---------------------------------------------------------------------------------------------

/// The statements of a function's first inline policy.
fn statements_mut<'a>(t: &'a mut Template, function: &str) -> &'a mut Vec<Value> {
    t.doc["Resources"][function]["Properties"]["Policies"][0]["Statement"]
        .as_array_mut()
        .expect("inline statements")
}

fn statement_mut<'a>(t: &'a mut Template, function: &str, sid: &str) -> &'a mut Value {
    statements_mut(t, function)
        .iter_mut()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{function} has no statement {sid}"))
}

#[test]
fn a_profile_update_without_its_attribute_limit_or_with_role_in_it_fails_the_checks() {
    let mut unlimited = template();
    statement_mut(
        &mut unlimited,
        "MessageUserFunction",
        "TakeAndReleaseTheSendLease",
    )
    .as_object_mut()
    .expect("statement")
    .remove("Condition");
    let problems = check_protected_attributes(&unlimited);
    assert_flags(
        &problems,
        &[
            "MessageUserFunction",
            "may write role of ProfilesTable",
            "UpdateItem",
        ],
    );
    assert_flags(
        &check_writes_are_limited(&unlimited),
        &["TakeAndReleaseTheSendLease", "dynamodb:Attributes"],
    );
    assert_flags(
        &check_grants(&unlimited, "message-user", &expected::grants("message-user")),
        &["dynamodb:updateitem", "stack-profiles", "attributes any"],
    );

    let mut with_role = template();
    statement_mut(&mut with_role, "DeleteUserFunction", "MarkAndAnonymiseTheTarget")["Condition"]
        ["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        .as_array_mut()
        .expect("attributes")
        .push(json!("role"));
    let problems = check_protected_attributes(&with_role);
    // The worker shares the statements through the YAML alias; here only delete-user changed.
    assert_flags(&problems, &["DeleteUserFunction", "may write role"]);
    assert_flags(
        &check_grants(&with_role, "delete-user", &expected::grants("delete-user")),
        &["role"],
    );

    let mut any_value = template();
    let condition =
        &mut statement_mut(&mut any_value, "DeleteUserFunction", "MarkAndAnonymiseTheTarget")["Condition"];
    let limit = condition
        .as_object_mut()
        .expect("condition")
        .remove("ForAllValues:StringEquals")
        .expect("limit");
    condition["ForAnyValue:StringEquals"] = limit;
    assert_flags(
        &check_protected_attributes(&any_value),
        &["DeleteUserFunction", "may write role"],
    );
}

#[test]
fn a_second_or_wider_statement_reopens_what_the_first_one_limits() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": { "Fn::GetAtt": ["ProfilesTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": { "Fn::Sub": "${ProfilesTable.Arn}" } }),
        json!({ "Effect": "Allow", "NotAction": "s3:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": "*",
                "Condition": { "ForAllValues:StringLike": { "dynamodb:Attributes": ["*"] } } }),
    ];
    for statement in cases {
        let mut t = template();
        statements_mut(&mut t, "ListUsersFunction").push(statement.clone());
        let problems = check_protected_attributes(&t);
        assert_flags(
            &problems,
            &["ListUsersFunction", "may write role of ProfilesTable"],
        );
        assert!(
            !check_grants(&t, "list-users", &expected::grants("list-users")).is_empty(),
            "{statement}"
        );
    }
}

#[test]
fn delivery_events_or_the_sweeper_able_to_rewrite_a_subject_or_body_fails_the_checks() {
    for (function, sid, bin) in [
        (
            "DeliveryEventsFunction",
            "RecordDeliveryStatus",
            "delivery-events",
        ),
        ("SweeperFunction", "SettleStalePendingMessages", "sweeper"),
    ] {
        let mut t = template();
        statement_mut(&mut t, function, sid)["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            .as_array_mut()
            .expect("attributes")
            .extend([json!("subject"), json!("body")]);
        let problems = check_protected_attributes(&t);
        assert_flags(&problems, &[function, "may write subject of AdminMessagesTable"]);
        assert_flags(&problems, &[function, "may write body of AdminMessagesTable"]);
        assert_flags(&check_grants(&t, bin, &expected::grants(bin)), &["subject"]);
    }
}

#[test]
fn a_grant_beyond_or_short_of_the_code_or_with_other_limits_fails_the_grants_check() {
    // ConditionCheckItem on admin_messages: message-user does not call it any more.
    let mut extra = template();
    statement_mut(&mut extra, "MessageUserFunction", "ReadMessages")["Action"] =
        json!(["dynamodb:GetItem", "dynamodb:ConditionCheckItem"]);
    let problems = check_grants(&extra, "message-user", &expected::grants("message-user"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_flags(
        &problems,
        &[
            "grants dynamodb:conditioncheckitem",
            "stack-admin-messages",
            "does not call",
        ],
    );

    // The job-creation transaction's ConditionCheck on the actor needs it.
    let mut short = template();
    statements_mut(&mut short, "DeleteUserFunction").retain(|s| s["Sid"] != "CheckTheActorIsNotBeingDeleted");
    let problems = check_grants(&short, "delete-user", &expected::grants("delete-user"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_flags(
        &problems,
        &["does not grant dynamodb:conditioncheckitem", "stack-profiles"],
    );

    // UpdateItem on deletion_jobs (the job is saved with PutItem now).
    let mut stale = template();
    statement_mut(&mut stale, "DeleteUserFunction", "ReadDeletionJobs")["Action"] =
        json!(["dynamodb:GetItem", "dynamodb:UpdateItem"]);
    assert_flags(
        &check_grants(&stale, "delete-user", &expected::grants("delete-user")),
        &["grants dynamodb:updateitem", "stack-deletion-jobs"],
    );

    // ALL_NEW handed back to delivery-events.
    let mut returns = template();
    statement_mut(&mut returns, "DeliveryEventsFunction", "RecordDeliveryStatus")["Condition"]
        ["StringEqualsIfExists"]["dynamodb:ReturnValues"] = json!(["NONE", "ALL_NEW"]);
    assert_flags(
        &check_grants(&returns, "delivery-events", &expected::grants("delivery-events")),
        &["return values {ALL_NEW, NONE}", "the code needs {NONE}"],
    );

    // The deletion's rate rows open to every key of the idempotency table.
    let mut keys = template();
    let resource = statements_mut(&mut keys, "DeleteUserFunction")
        .iter_mut()
        .find_map(|s| {
            s.get_mut("Fn::If")
                .filter(|a| a[1]["Sid"] == "ReadDeletionRateWindows")
        })
        .expect("the rate statement");
    resource[1]
        .as_object_mut()
        .expect("statement")
        .remove("Condition");
    assert_flags(
        &check_grants(&keys, "delete-user", &expected::grants("delete-user")),
        &["dynamodb:getitem", "stack-idempotency", "partition keys any"],
    );

    // A policy template instead of the exact calls.
    let mut templated = template();
    templated.doc["Resources"]["SweeperFunction"]["Properties"]["Policies"]
        .as_array_mut()
        .expect("policies")
        .push(json!({ "DynamoDBCrudPolicy": { "TableName": { "Ref": "AdminMessagesTable" } } }));
    assert_flags(
        &check_grants(&templated, "sweeper", &expected::grants("sweeper")),
        &["DynamoDBCrudPolicy"],
    );
}

#[test]
fn a_write_without_its_limits_fails_the_write_limits_check() {
    let mut t = template();
    statement_mut(&mut t, "SweeperFunction", "SettleStalePendingMessages")["Condition"]
        .as_object_mut()
        .expect("condition")
        .remove("StringEqualsIfExists");
    let problems = check_writes_are_limited(&t);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_flags(
        &problems,
        &["SettleStalePendingMessages", "dynamodb:ReturnValues"],
    );

    // BatchWriteItem needs the attribute limit only.
    let mut batch = template();
    statement_mut(&mut batch, "DeleteUserFunction", "CascadeDeleteSessions")
        .as_object_mut()
        .expect("statement")
        .remove("Condition");
    let problems = check_writes_are_limited(&batch);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_flags(&problems, &["CascadeDeleteSessions", "dynamodb:Attributes"]);
}

#[test]
fn any_grant_that_lets_a_function_reach_another_table_fails_the_table_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": { "Fn::GetAtt": ["ProfilesTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": { "Fn::Sub": "${SessionsTable.Arn}/index/by_user" } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "*", "Resource": { "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-*" } }),
        json!({ "Effect": "Allow", "NotAction": "s3:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "NotResource": { "Fn::GetAtt": ["AdminMessagesTable", "Arn"] } }),
    ];
    for statement in cases {
        let mut t = template();
        statements_mut(&mut t, "DeliveryEventsFunction").push(statement.clone());
        let problems = check_table_access(&t, "delivery-events", &["ADMIN_MESSAGES_TABLE"]);
        assert!(!problems.is_empty(), "expected the checker to flag {statement}");
        assert!(
            problems.iter().all(|p| p.contains("reaches")),
            "{statement}: {problems:?}"
        );
    }

    let mut t = template();
    let policies = t.doc["Resources"]["SweeperFunction"]["Properties"]["Policies"]
        .as_array_mut()
        .expect("policies");
    policies.push(json!({ "DynamoDBReadPolicy": { "TableName": { "Ref": "ProfilesTable" } } }));
    policies.push(json!("arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"));
    let problems = check_table_access(&t, "sweeper", &["ADMIN_MESSAGES_TABLE", "DELETION_JOBS_TABLE"]);
    assert!(
        problems.len() == 2
            && problems
                .iter()
                .any(|p| p.contains("DynamoDBReadPolicy") && p.contains("ProfilesTable"))
            && problems
                .iter()
                .any(|p| p.contains("AmazonDynamoDBReadOnlyAccess")),
        "{problems:?}"
    );
}

#[test]
fn grants_on_its_own_table_or_outside_dynamodb_or_a_deny_pass_the_table_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": { "Fn::GetAtt": ["AdminMessagesTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*" }),
        json!({ "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*" }),
    ];
    for statement in cases {
        let mut t = template();
        statements_mut(&mut t, "DeliveryEventsFunction").push(statement.clone());
        assert_clean(
            &statement.to_string(),
            check_table_access(&t, "delivery-events", &["ADMIN_MESSAGES_TABLE"]),
        );
    }
    // The same checker on message-user, which does use other tables, is not clean.
    assert!(!check_table_access(&template(), "message-user", &["ADMIN_MESSAGES_TABLE"]).is_empty());
}

#[test]
fn a_rate_limit_grant_outside_its_condition_fails_the_check() {
    let mut t = template();
    let statements = statements_mut(&mut t, "MessageUserFunction");
    for s in statements.iter_mut() {
        if let Some(args) = s.get("Fn::If").cloned() {
            *s = args[1].clone();
        }
    }
    let problems = check_rate_limit_grants_are_conditional(&t);
    assert_flags(
        &problems,
        &["MessageUserFunction", "rate#messages#", "HasMessageLimit"],
    );

    let mut undefined = template();
    undefined.doc["Conditions"]["HasDeletionLimit"] = json!({ "Fn::Equals": ["a", "a"] });
    assert_flags(
        &check_rate_limit_grants_are_conditional(&undefined),
        &["HasDeletionLimit"],
    );
}

#[test]
fn an_oversized_policy_fails_the_size_check() {
    let mut t = template();
    let attributes: Vec<Value> = (0..800).map(|i| json!(format!("attribute_{i}"))).collect();
    statement_mut(&mut t, "ListUsersFunction", "AppendAuditEvents")["Condition"]
        ["ForAllValues:StringEquals"]["dynamodb:Attributes"] = Value::Array(attributes);
    assert_flags(&check_policy_sizes(&t), &["ListUsersFunction", "characters"]);
}

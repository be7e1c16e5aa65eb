//! The environment contract: every function gets every setting it reads, table variables name
//! real tables, the other references point at the right kind of resource, the budgets fit inside
//! the timeouts and the lease outlives the runner; the token lifetime is a documented parameter.

use super::cfn::{assert_clean, assert_flags, env_var_for, template, Template};
use super::references::check_references;
use serde_json::{json, Value};

/// The numeric settings of the environment contract: whole numbers, or Number parameters.
const NUMERIC_ENV: &[&str] = &[
    "DELETE_BUDGET_MS",
    "WORKER_BUDGET_MS",
    "MESSAGES_PER_MINUTE",
    "DELETIONS_PER_HOUR",
    "ACCESS_TOKEN_LIFETIME_SECONDS",
    "DELETION_LEASE_MARGIN_MS",
];

/// Every setting of the environment contract: every table's variable
/// (`test_support::settings`), the references, and the numeric settings. The functions share
/// one configuration loader, so every function gets all of them (a missing one fails at
/// start-up with its name).
pub fn required_env() -> Vec<&'static str> {
    let references = [
        "USER_POOL_ID",
        "MAIL_FROM",
        "SUPPORT_REPLY_TO",
        "SES_CONFIGURATION_SET",
        "DELETION_QUEUE_URL",
    ];
    let tables = test_support::settings::table_vars();
    tables
        .into_iter()
        .chain(references)
        .chain(NUMERIC_ENV.iter().copied())
        .collect()
}

pub const WORKER_BIN: &str = "deletion-worker";

/// (d) Every function gets every setting; `*_TABLE` variables reference the table of that name;
/// the other references point at the right kind of resource; budgets fit inside timeouts.
pub fn check_environment(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = t.functions();
    if functions.is_empty() {
        problems.push("the template has no AWS::Serverless::Function".to_owned());
    }
    for (id, f) in functions {
        let env = t.environment_of(f);
        for var in required_env() {
            if !env.contains_key(var) {
                problems.push(format!(
                    "{id}: environment variable {var} is not set (Globals or function)"
                ));
            }
        }
        for (var, value) in &env {
            if var.ends_with("_TABLE") {
                match value.get("Ref").and_then(Value::as_str) {
                    Some(target) => match t.resources().get(target) {
                        Some(r) if r["Type"] == "AWS::DynamoDB::Table" => {
                            if env_var_for(target) != *var {
                                problems.push(format!(
                                    "{id}: {var} references {target}, whose variable is {}",
                                    env_var_for(target)
                                ));
                            }
                        }
                        _ => problems.push(format!(
                            "{id}: {var} references {target}, which is not a table here"
                        )),
                    },
                    None => problems.push(format!("{id}: {var} must be a !Ref to its table, got {value}")),
                }
            }
        }
        let expect_ref = |var: &str, ty: &str, problems: &mut Vec<String>| {
            let Some(v) = env.get(var) else { return };
            let target = v.get("Ref").and_then(Value::as_str).unwrap_or("");
            let ok = t.resources().get(target).is_some_and(|r| r["Type"] == ty);
            if !ok {
                problems.push(format!("{id}: {var} must be a !Ref to an {ty}, got {v}"));
            }
        };
        expect_ref("DELETION_QUEUE_URL", "AWS::SQS::Queue", &mut problems);
        expect_ref(
            "SES_CONFIGURATION_SET",
            "AWS::SES::ConfigurationSet",
            &mut problems,
        );
        for var in ["USER_POOL_ID", "MAIL_FROM", "SUPPORT_REPLY_TO"] {
            if let Some(v) = env.get(var) {
                let target = v.get("Ref").and_then(Value::as_str).unwrap_or("");
                let literal = v.as_str().is_some_and(|s| !s.is_empty());
                if !literal && !t.parameters().contains(target) && !t.resources().contains_key(target) {
                    problems.push(format!("{id}: {var} references {v}, which does not exist"));
                }
            }
        }
        for &var in NUMERIC_ENV {
            if let Some(v) = env.get(var) {
                let literal_ok = v.as_str().is_some_and(|s| s.parse::<u64>().is_ok());
                let param_ok = v
                    .get("Ref")
                    .and_then(Value::as_str)
                    .is_some_and(|p| t.doc["Parameters"][p]["Type"] == "Number");
                if !literal_ok && !param_ok {
                    problems.push(format!(
                        "{id}: {var} must be a whole number (or a Number parameter), got {v}"
                    ));
                }
            }
        }
    }
    // Budgets leave room inside the timeouts (API Gateway itself gives up after 30 s).
    let budget = |var: &str| -> Option<u64> {
        t.doc["Globals"]["Function"]["Environment"]["Variables"][var]
            .as_str()
            .and_then(|s| s.parse().ok())
    };
    let timeout_ms = |bin: &str| -> Option<u64> {
        let (_, f) = t.function_by_binary(bin)?;
        t.function_property(f, "Timeout").as_u64().map(|s| s * 1000)
    };
    match (budget("DELETE_BUDGET_MS"), timeout_ms("delete-user")) {
        (Some(b), Some(to)) if b + 5_000 <= to && to <= 30_000 => {}
        (b, to) => problems.push(format!(
            "delete-user: DELETE_BUDGET_MS {b:?} must end at least 5 s before its timeout {to:?} ms, \
             which must stay within API Gateway's 30 s"
        )),
    }
    match (budget("WORKER_BUDGET_MS"), timeout_ms(WORKER_BIN)) {
        (Some(b), Some(to)) if b + 10_000 <= to => {}
        (b, to) => problems.push(format!(
            "{WORKER_BIN}: WORKER_BUDGET_MS {b:?} must end at least 10 s before its timeout {to:?} ms"
        )),
    }
    // A runner's lease lasts its budget plus the margin: it must outlive the invocation, or a
    // continuation takes the job over from a runner that is still at work.
    let margin = budget("DELETION_LEASE_MARGIN_MS");
    for (var, bin) in [
        ("DELETE_BUDGET_MS", "delete-user"),
        ("WORKER_BUDGET_MS", WORKER_BIN),
    ] {
        match (budget(var), margin, timeout_ms(bin)) {
            (Some(b), Some(m), Some(to)) if b + m >= to => {}
            (b, m, to) => problems.push(format!(
                "{bin}: {var} {b:?} + DELETION_LEASE_MARGIN_MS {m:?} must reach at least its timeout {to:?} ms \
                 (the lease must outlive the runner)"
            )),
        }
    }
    problems
}

/// Cognito's bounds of an app client's AccessTokenValidity: five minutes to one day.
const ACCESS_TOKEN_VALIDITY_SECONDS: (i64, i64) = (300, 86_400);

/// ACCESS_TOKEN_LIFETIME_SECONDS is a deploy parameter (the app client lives outside this
/// stack), a Number within Cognito's bounds, documented as "at least the app client's
/// AccessTokenValidity".
pub fn check_token_lifetime_parameter(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let var = &t.doc["Globals"]["Function"]["Environment"]["Variables"]["ACCESS_TOKEN_LIFETIME_SECONDS"];
    let Some(name) = var.get("Ref").and_then(Value::as_str) else {
        return vec![format!(
            "ACCESS_TOKEN_LIFETIME_SECONDS must be a !Ref to a parameter, got {var}"
        )];
    };
    let p = &t.doc["Parameters"][name];
    if p["Type"] != "Number" {
        problems.push(format!("parameter {name} must be a Number, got {}", p["Type"]));
    }
    let (min, max) = ACCESS_TOKEN_VALIDITY_SECONDS;
    let default = p["Default"].as_i64();
    let min_value = p["MinValue"].as_i64();
    let max_value = p["MaxValue"].as_i64();
    if !(min_value.is_some_and(|v| v >= min) && max_value.is_some_and(|v| v <= max)) {
        problems.push(format!(
            "parameter {name}: MinValue/MaxValue must keep it within Cognito's {min}..={max} s, got {min_value:?}..={max_value:?}"
        ));
    }
    if !default.is_some_and(|d| (min..=max).contains(&d)) {
        problems.push(format!(
            "parameter {name}: Default {default:?} is outside {min}..={max} s"
        ));
    }
    let description = p["Description"].as_str().unwrap_or("");
    if !description.contains("AccessTokenValidity") || !description.contains("at least") {
        problems.push(format!(
            "parameter {name}: the Description must say it is at least the app client's AccessTokenValidity"
        ));
    }
    problems
}

#[test]
fn every_function_gets_every_setting_and_table_variables_name_real_tables() {
    assert_clean("environment", check_environment(&template()));
}

#[test]
fn the_access_token_lifetime_is_a_documented_parameter_within_cognitos_bounds() {
    assert_clean("token lifetime", check_token_lifetime_parameter(&template()));
}

#[test]
fn a_missing_setting_or_a_table_variable_naming_a_missing_table_fails_the_check() {
    let mut t = template();
    let vars = &mut t.doc["Globals"]["Function"]["Environment"]["Variables"];
    vars.as_object_mut().expect("variables").remove("MAIL_FROM");
    vars["PROFILES_TABLE"] = json!({ "Ref": "NoSuchTable" });
    vars["SESSIONS_TABLE"] = json!({ "Ref": "HelpRequestsTable" });
    let problems = check_environment(&t);
    assert!(
        problems.iter().any(|p| p.contains("MAIL_FROM is not set")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("PROFILES_TABLE references NoSuchTable")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("SESSIONS_TABLE references HelpRequestsTable")),
        "{problems:?}"
    );
    let refs = check_references(&t);
    assert!(refs.iter().any(|p| p.contains("NoSuchTable")), "{refs:?}");
}

#[test]
fn a_delete_budget_that_does_not_fit_inside_api_gateways_30_seconds_fails_the_check() {
    let mut t = template();
    t.doc["Globals"]["Function"]["Environment"]["Variables"]["DELETE_BUDGET_MS"] = json!("28000");
    let problems = check_environment(&t);
    assert!(
        problems.iter().any(|p| p.contains("DELETE_BUDGET_MS")),
        "{problems:?}"
    );
}

#[test]
fn a_lease_margin_that_lets_a_continuation_take_over_a_live_runner_fails_the_check() {
    let mut t = template();
    t.doc["Globals"]["Function"]["Environment"]["Variables"]["DELETION_LEASE_MARGIN_MS"] = json!("5000");
    let problems = check_environment(&t);
    assert_flags(&problems, &["delete-user", "DELETION_LEASE_MARGIN_MS", "outlive"]);
    assert_flags(
        &problems,
        &["deletion-worker", "DELETION_LEASE_MARGIN_MS", "outlive"],
    );

    let mut missing = template();
    missing.doc["Globals"]["Function"]["Environment"]["Variables"]
        .as_object_mut()
        .expect("variables")
        .remove("ACCESS_TOKEN_LIFETIME_SECONDS");
    assert_flags(
        &check_environment(&missing),
        &["ACCESS_TOKEN_LIFETIME_SECONDS is not set"],
    );
}

#[test]
fn a_token_lifetime_that_is_literal_or_unbounded_or_undocumented_fails_the_check() {
    let mut literal = template();
    literal.doc["Globals"]["Function"]["Environment"]["Variables"]["ACCESS_TOKEN_LIFETIME_SECONDS"] =
        json!("3600");
    assert_flags(
        &check_token_lifetime_parameter(&literal),
        &["!Ref to a parameter"],
    );

    let mut loose = template();
    let p = &mut loose.doc["Parameters"]["AccessTokenLifetimeSeconds"];
    p.as_object_mut().expect("parameter").remove("MaxValue");
    p["Description"] = json!("How long tokens live.");
    let problems = check_token_lifetime_parameter(&loose);
    assert_flags(&problems, &["MaxValue"]);
    assert_flags(&problems, &["AccessTokenValidity"]);
}

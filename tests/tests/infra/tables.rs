//! The tables: every table is cascaded (`domain::cascade::CASCADE_PLAN`) or deliberately kept
//! (`KEPT_TABLES`), a table keyed on a user id cannot be forgotten, every plan entry's key and
//! lookup match the table; and every table is kept when the stack or the resource goes.

use super::cfn::{assert_clean, assert_flags, template, with_extra_resource, TableDef, Template};
use domain::cascade::{CascadeTable, Lookup, CASCADE_PLAN, KEPT_TABLES};
use serde_json::json;
use std::collections::BTreeSet;

/// Attributes that hold a user id: a table keyed (or indexed) on one of them holds user data.
const USER_ID_ATTRS: &[&str] = &["user_id", "recipient_id"];

/// The user-id attribute this table is keyed or indexed on, if any.
fn user_id_attr(table: &TableDef) -> Option<String> {
    let mut candidates = table
        .key
        .first()
        .into_iter()
        .chain(table.gsis.iter().filter_map(|g| g.key.first()));
    candidates.find(|a| USER_ID_ATTRS.contains(&a.as_str())).cloned()
}

/// (a) Every table is cascaded or kept, exactly once; every plan/kept entry names a real table.
pub fn check_tables_classified(t: &Template, plan: &[CascadeTable], kept: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let tables = t.tables();
    for table in &tables {
        let cascaded = plan.iter().filter(|p| p.env_var == table.env_var).count();
        let kept_n = kept.iter().filter(|(v, _)| *v == table.env_var).count();
        match (cascaded, kept_n) {
            (1, 0) | (0, 1) => {}
            (0, 0) => problems.push(format!(
                "{} ({}) is neither in CASCADE_PLAN nor in KEPT_TABLES",
                table.logical_id, table.env_var
            )),
            _ => problems.push(format!(
                "{} ({}) is classified {} times (plan {cascaded}, kept {kept_n}); it must be exactly once",
                table.logical_id,
                table.env_var,
                cascaded + kept_n
            )),
        }
    }
    let known: BTreeSet<&str> = tables.iter().map(|t| t.env_var.as_str()).collect();
    for entry in plan {
        if !known.contains(entry.env_var) {
            problems.push(format!(
                "CASCADE_PLAN entry {} ({}) has no table in the template",
                entry.name, entry.env_var
            ));
        }
    }
    for (var, _) in kept {
        if !known.contains(var) {
            problems.push(format!("KEPT_TABLES entry {var} has no table in the template"));
        }
    }
    problems
}

/// (b) A table keyed or indexed on a user id that the plan does not cascade must be kept on
/// purpose.
pub fn check_user_keyed_tables(t: &Template, plan: &[CascadeTable], kept: &[(&str, &str)]) -> Vec<String> {
    t.tables()
        .into_iter()
        .filter_map(|table| {
            let attr = user_id_attr(&table)?;
            let cascaded = plan.iter().any(|p| p.env_var == table.env_var);
            let is_kept = kept.iter().any(|(v, _)| *v == table.env_var);
            (!cascaded && !is_kept).then(|| {
                format!(
                    "{} ({}) is keyed on a user id ({attr}) but is not cascaded: add it to CASCADE_PLAN, \
                     or to KEPT_TABLES with the reason it is kept",
                    table.logical_id, table.env_var
                )
            })
        })
        .collect()
}

/// (c) Every plan entry's key and lookup match the table definition.
pub fn check_plan_matches_tables(t: &Template, plan: &[CascadeTable]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in plan {
        let Some(table) = t.table_env_var(entry.env_var) else {
            problems.push(format!("{}: no table for {}", entry.name, entry.env_var));
            continue;
        };
        let plan_key: Vec<String> = entry.key.iter().map(|s| (*s).to_owned()).collect();
        if plan_key != table.key {
            problems.push(format!(
                "{}: the plan's key {:?} differs from {}'s key schema {:?}",
                entry.name, plan_key, table.logical_id, table.key
            ));
        }
        match entry.lookup {
            Lookup::PartitionKey { attr } => {
                if table.key.first().map(String::as_str) != Some(attr) {
                    problems.push(format!(
                        "{}: looks up by partition key {attr}, but {}'s partition key is {:?}",
                        entry.name,
                        table.logical_id,
                        table.key.first()
                    ));
                }
            }
            Lookup::Index { index, attr } => match table.gsis.iter().find(|g| g.name == index) {
                None => problems.push(format!(
                    "{}: looks up by index {index}, which {} does not have (it has {:?})",
                    entry.name,
                    table.logical_id,
                    table.gsis.iter().map(|g| &g.name).collect::<Vec<_>>()
                )),
                Some(gsi) if gsi.key.first().map(String::as_str) != Some(attr) => problems.push(format!(
                    "{}: index {index} of {} is keyed on {:?}, the plan queries it on {attr}",
                    entry.name,
                    table.logical_id,
                    gsi.key.first()
                )),
                Some(_) => {}
            },
        }
        if !USER_ID_ATTRS.contains(&lookup_attr(&entry.lookup)) {
            problems.push(format!(
                "{}: the plan does not look up by a user id attribute",
                entry.name
            ));
        }
    }
    problems
}

fn lookup_attr(l: &Lookup) -> &'static str {
    match *l {
        Lookup::PartitionKey { attr } | Lookup::Index { attr, .. } => attr,
    }
}

/// Every table is stateful: it survives the stack's deletion and a replacement
/// (`DeletionPolicy` and `UpdateReplacePolicy` `Retain`) and cannot be deleted by an API call
/// (`DeletionProtectionEnabled`).
pub fn check_tables_retained(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, r) in t.of_type("AWS::DynamoDB::Table") {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            if r[policy] != "Retain" {
                problems.push(format!("{id}: {policy} must be Retain, got {}", r[policy]));
            }
        }
        if r["Properties"]["DeletionProtectionEnabled"] != json!(true) {
            problems.push(format!("{id}: DeletionProtectionEnabled must be true"));
        }
    }
    problems
}

#[test]
fn the_template_parses_with_its_short_form_tags() {
    let t = template();
    assert_eq!(t.doc["Transform"], "AWS::Serverless-2016-10-31");
    let profiles = &t.resources()["ProfilesTable"]["Properties"]["TableName"];
    assert_eq!(profiles, &json!({ "Fn::Sub": "${AWS::StackName}-profiles" }));
    assert!(
        t.tables().len() >= 10,
        "expected every table, found {:?}",
        t.tables()
    );
}

#[test]
fn every_table_is_either_cascaded_or_kept_exactly_once() {
    assert_clean(
        "tables",
        check_tables_classified(&template(), CASCADE_PLAN, KEPT_TABLES),
    );
}

#[test]
fn every_table_keyed_on_a_user_id_is_cascaded_or_kept_on_purpose() {
    assert_clean(
        "user-keyed tables",
        check_user_keyed_tables(&template(), CASCADE_PLAN, KEPT_TABLES),
    );
}

#[test]
fn every_plan_entry_matches_the_key_schema_and_lookup_of_its_table() {
    assert_clean(
        "cascade plan",
        check_plan_matches_tables(&template(), CASCADE_PLAN),
    );
}

#[test]
fn every_table_is_retained_and_deletion_protected() {
    assert_clean("table retention", check_tables_retained(&template()));
}

#[test]
fn a_table_that_the_stack_could_delete_or_replace_away_fails_the_check() {
    let mut t = template();
    let resources = t.doc["Resources"].as_object_mut().expect("resources");
    resources["IdempotencyTable"]
        .as_object_mut()
        .expect("table")
        .remove("DeletionPolicy");
    resources["DeletionJobsTable"]["UpdateReplacePolicy"] = json!("Delete");
    resources["ProfilesTable"]["Properties"]
        .as_object_mut()
        .expect("properties")
        .remove("DeletionProtectionEnabled");
    let problems = check_tables_retained(&t);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_flags(&problems, &["IdempotencyTable", "DeletionPolicy"]);
    assert_flags(&problems, &["DeletionJobsTable", "UpdateReplacePolicy"]);
    assert_flags(&problems, &["ProfilesTable", "DeletionProtectionEnabled"]);

    let extra = with_extra_resource(FOO_TABLE);
    assert_flags(&check_tables_retained(&extra), &["FooTable", "DeletionPolicy"]);
}

const FOO_TABLE: &str = r#"  FooTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-foo"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - { AttributeName: user_id, AttributeType: S }
        - { AttributeName: foo_id, AttributeType: S }
      KeySchema:
        - { AttributeName: user_id, KeyType: HASH }
        - { AttributeName: foo_id, KeyType: RANGE }

"#;

#[test]
fn a_new_table_keyed_on_user_id_that_is_neither_cascaded_nor_kept_fails_the_check() {
    let t = with_extra_resource(FOO_TABLE);
    let classified = check_tables_classified(&t, CASCADE_PLAN, KEPT_TABLES);
    assert!(
        classified.iter().any(|p| p.contains("FOO_TABLE")),
        "{classified:?}"
    );
    let user_keyed = check_user_keyed_tables(&t, CASCADE_PLAN, KEPT_TABLES);
    assert_eq!(user_keyed.len(), 1, "{user_keyed:?}");
    assert!(
        user_keyed[0].contains("FooTable") && user_keyed[0].contains("user_id"),
        "{user_keyed:?}"
    );
}

#[test]
fn a_new_table_indexed_on_recipient_id_that_is_not_cascaded_fails_the_check() {
    let t = with_extra_resource(
        r#"  NotesTable:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema:
        - { AttributeName: note_id, KeyType: HASH }
      GlobalSecondaryIndexes:
        - IndexName: by_recipient
          KeySchema:
            - { AttributeName: recipient_id, KeyType: HASH }
          Projection: { ProjectionType: KEYS_ONLY }

"#,
    );
    let problems = check_user_keyed_tables(&t, CASCADE_PLAN, KEPT_TABLES);
    assert!(
        problems.len() == 1 && problems[0].contains("NOTES_TABLE"),
        "{problems:?}"
    );
}

#[test]
fn the_same_new_table_passes_once_it_is_cascaded_or_kept_but_not_both() {
    let t = with_extra_resource(FOO_TABLE);
    let mut plan = CASCADE_PLAN.to_vec();
    plan.push(CascadeTable {
        name: "foo",
        env_var: "FOO_TABLE",
        key: &["user_id", "foo_id"],
        lookup: Lookup::PartitionKey { attr: "user_id" },
    });
    assert_clean("cascaded", check_tables_classified(&t, &plan, KEPT_TABLES));
    assert_clean("cascaded", check_user_keyed_tables(&t, &plan, KEPT_TABLES));
    assert_clean("cascaded", check_plan_matches_tables(&t, &plan));

    let mut kept = KEPT_TABLES.to_vec();
    kept.push(("FOO_TABLE", "a reason"));
    assert_clean("kept", check_tables_classified(&t, CASCADE_PLAN, &kept));
    assert_clean("kept", check_user_keyed_tables(&t, CASCADE_PLAN, &kept));

    let both = check_tables_classified(&t, &plan, &kept);
    assert!(
        both.iter()
            .any(|p| p.contains("FOO_TABLE") && p.contains("exactly once")),
        "{both:?}"
    );
}

#[test]
fn a_plan_entry_without_a_table_fails_the_check() {
    let mut plan = CASCADE_PLAN.to_vec();
    plan.push(CascadeTable {
        name: "ghosts",
        env_var: "GHOSTS_TABLE",
        key: &["user_id"],
        lookup: Lookup::PartitionKey { attr: "user_id" },
    });
    let problems = check_tables_classified(&template(), &plan, KEPT_TABLES);
    assert!(
        problems.iter().any(|p| p.contains("GHOSTS_TABLE")),
        "{problems:?}"
    );
}

#[test]
fn a_plan_that_disagrees_with_a_key_schema_or_index_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["SessionsTable"]["Properties"]["GlobalSecondaryIndexes"][0]["IndexName"] =
        json!("by_owner");
    t.doc["Resources"]["TransactionsTable"]["Properties"]["KeySchema"][1]["AttributeName"] = json!("tx_id");
    t.doc["Resources"]["HelpRequestsTable"]["Properties"]["GlobalSecondaryIndexes"][0]["KeySchema"][0]
        ["AttributeName"] = json!("owner_id");
    let problems = check_plan_matches_tables(&t, CASCADE_PLAN);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("sessions:") && p.contains("by_user")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("transactions:") && p.contains("tx_id")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("help_requests:") && p.contains("owner_id")),
        "{problems:?}"
    );
}

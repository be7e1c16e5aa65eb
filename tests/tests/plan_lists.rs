//! The lists outside Rust that name the tables of the cascade plan, checked against the plan
//! (`domain::cascade::CASCADE_PLAN`), so that adding a cascaded table cannot leave one behind:
//! the OpenAPI document's `DeletedCounts`, the page's table labels, and the emulator seed and
//! erasure checks of `scripts/lambda-invoke.sh`. No emulator needed.

use domain::cascade::CASCADE_PLAN;
use std::collections::BTreeSet;
use test_support::yaml::{get, load, repo_file, seq};

fn plan_names() -> BTreeSet<String> {
    CASCADE_PLAN.iter().map(|t| t.name.to_owned()).collect()
}

fn text(rel: &str) -> String {
    let path = repo_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_openapi_deleted_counts_name_exactly_the_tables_of_the_plan() {
    let doc = load("docs/openapi.yaml");
    let counts = get(&doc, "components")
        .and_then(|c| get(c, "schemas"))
        .and_then(|s| get(s, "DeletedCounts"))
        .and_then(|d| get(d, "propertyNames"))
        .expect("components.schemas.DeletedCounts.propertyNames");
    let named: BTreeSet<String> = seq(counts, "enum")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        named,
        plan_names(),
        "docs/openapi.yaml DeletedCounts vs CASCADE_PLAN"
    );
}

#[test]
fn the_page_has_a_label_for_exactly_the_tables_of_the_plan() {
    let js = text("tools/devserver/static/common.js");
    let start = js
        .find("export const TABLE_LABELS = {")
        .expect("TABLE_LABELS in common.js");
    let body = &js[start..start + js[start..].find("};").expect("the end of TABLE_LABELS")];
    let labelled: BTreeSet<String> = body
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.trim().to_owned()))
        .collect();
    assert_eq!(
        labelled,
        plan_names(),
        "tools/devserver/static/common.js TABLE_LABELS vs CASCADE_PLAN"
    );
}

#[test]
fn the_lambda_invoke_seed_and_checks_name_every_table_of_the_plan() {
    for file in ["infra/local/emulator_setup.py", "infra/local/invoke_checks.py"] {
        let source = text(file);
        let missing: Vec<&str> = CASCADE_PLAN
            .iter()
            .map(|t| t.env_var)
            .filter(|var| !source.contains(&format!("\"{var}\"")))
            .collect();
        assert!(missing.is_empty(), "{file} does not name {missing:?}");
    }
}

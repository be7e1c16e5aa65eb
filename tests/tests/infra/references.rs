//! Every `!Ref` / `!GetAtt` / `${...}` names something that exists (cfn-lint misses some of
//! these inside `Environment.Variables`), and the IAM-like glob the checks match with.

use super::cfn::{assert_clean, env_var_for, getatt_parts, glob, table_arn, template, Template, PSEUDO};
use serde_json::Value;
use std::collections::BTreeSet;

/// Every Ref / GetAtt / Sub variable names a parameter, resource or pseudo parameter.
pub fn check_references(t: &Template) -> Vec<String> {
    fn walk(t: &Template, path: &str, v: &Value, names: &BTreeSet<String>, out: &mut Vec<String>) {
        match v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(t, &format!("{path}[{i}]"), x, names, out)),
            Value::Object(m) => {
                for (k, x) in m {
                    let here = format!("{path}.{k}");
                    match k.as_str() {
                        "Ref" => {
                            if let Some(n) = x.as_str().filter(|n| !names.contains(*n)) {
                                out.push(format!("{here}: !Ref {n} names nothing in the template"));
                            }
                        }
                        "Fn::GetAtt" => {
                            let (r, _) = getatt_parts(x);
                            if !names.contains(&r) || t.parameters().contains(&r) {
                                out.push(format!("{here}: !GetAtt {r} names no resource"));
                            }
                        }
                        "Fn::Sub" => {
                            let (text, vars) = match x {
                                Value::Array(a) => {
                                    (a.first().and_then(Value::as_str).unwrap_or(""), a.get(1))
                                }
                                other => (other.as_str().unwrap_or(""), None),
                            };
                            let mut rest = text;
                            while let Some(start) = rest.find("${") {
                                let after = &rest[start + 2..];
                                let end = after.find('}').unwrap_or(after.len());
                                let var = &after[..end];
                                let head = var.split('.').next().unwrap_or("");
                                let local = vars.and_then(|m| m.get(var)).is_some();
                                if !var.starts_with('!') && !local && !names.contains(head) {
                                    out.push(format!("{here}: ${{{var}}} names nothing in the template"));
                                }
                                rest = &after[end.min(after.len())..];
                            }
                        }
                        _ => {}
                    }
                    walk(t, &here, x, names, out);
                }
            }
            _ => {}
        }
    }
    let mut names: BTreeSet<String> = t.parameters();
    names.extend(t.resources().keys().cloned());
    names.extend(PSEUDO.iter().map(|(p, _)| (*p).to_owned()));
    let mut out = Vec::new();
    for section in ["Globals", "Resources", "Outputs", "Conditions"] {
        walk(t, section, &t.doc[section], &names, &mut out);
    }
    out
}

#[test]
fn every_reference_in_the_template_names_something_that_exists() {
    assert_clean("references", check_references(&template()));
}

#[test]
fn the_glob_matches_like_iam() {
    assert!(glob("dynamodb:*", "dynamodb:UpdateItem"));
    assert!(glob("DynamoDB:update*", "dynamodb:UpdateItem"));
    assert!(glob("*", "anything"));
    assert!(glob("dynamodb:?pdateItem", "dynamodb:UpdateItem"));
    assert!(!glob("dynamodb:Get*", "dynamodb:UpdateItem"));
    assert!(!glob(
        "arn:aws:dynamodb:us-east-1:123456789012:table/stack-profiles",
        &table_arn("stack-security-logs")
    ));
    assert_eq!(env_var_for("FollowedCompaniesTable"), "FOLLOWED_COMPANIES_TABLE");
    assert_eq!(env_var_for("FooTable"), "FOO_TABLE");
}

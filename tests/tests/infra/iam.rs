//! What a function's IAM statements allow, evaluated the way IAM does for the DynamoDB condition
//! keys the template uses:
//!
//! - a request is allowed when at least one Allow statement matches its action and resource
//!   and all of that statement's conditions hold, so what a function may do with an action on a
//!   resource is the union, over the statements that match, of what each one leaves;
//! - `ForAllValues:StringEquals` / `StringLike` on `dynamodb:Attributes` limits the attribute
//!   names a request may name (written, removed, or read in a condition: IAM does not tell them
//!   apart); anything else on that key (no condition, `ForAnyValue`, a single-valued operator)
//!   limits nothing;
//! - `StringEquals[IfExists]` / `StringLike[IfExists]` on `dynamodb:ReturnValues` limits what a
//!   write may hand back (also what a failed condition returns in a transaction);
//! - `ForAllValues:StringLike` / `StringEquals` on `dynamodb:LeadingKeys` limits the partition
//!   keys.
//!
//! When one statement puts two limits on the same key, the first is kept: that over-states
//! what is allowed, which is the safe direction for these checks. Deny statements are ignored
//! (the template has none; an Allow that needs a Deny to be safe is reported by the checks).

use super::cfn::{alternatives, glob, statement_covers, Statement, Template};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An allowed value: the text and whether it is a `StringLike` pattern.
pub type Pattern = (String, bool);

/// What a set of statements leaves of one action on one resource; `None` = not limited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub attributes: Option<BTreeSet<Pattern>>,
    pub return_values: Option<BTreeSet<Pattern>>,
    pub leading_keys: Option<BTreeSet<Pattern>>,
}

fn permits(set: &BTreeSet<Pattern>, value: &str) -> bool {
    set.iter()
        .any(|(p, like)| if *like { glob(p, value) } else { p == value })
}

/// `{a, b, ~c*}` (`~` marks a pattern), or `any` when not limited.
pub fn show(set: &Option<BTreeSet<Pattern>>) -> String {
    match set {
        None => "any".to_owned(),
        Some(s) => {
            let items: Vec<String> = s
                .iter()
                .map(|(p, like)| if *like { format!("~{p}") } else { p.clone() })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

impl Limits {
    /// The limits one statement's `Condition` puts on a request.
    pub fn of_condition(t: &Template, condition: &Value) -> Limits {
        let mut limits = Limits::default();
        let Some(operators) = condition.as_object() else {
            return limits;
        };
        for (operator, body) in operators {
            let (qualifier, base) = match operator.split_once(':') {
                Some((q, b)) if q == "ForAllValues" || q == "ForAnyValue" => (Some(q), b),
                _ => (None, operator.as_str()),
            };
            let like = base == "StringLike" || base == "StringLikeIfExists";
            let equals = base == "StringEquals" || base == "StringEqualsIfExists";
            if !like && !equals {
                continue;
            }
            let Some(keys) = body.as_object() else { continue };
            for (key, values) in keys {
                let values: BTreeSet<Pattern> = alternatives(values)
                    .into_iter()
                    .map(|v| (t.render(v), like))
                    .collect();
                let slot = match (key.to_lowercase().as_str(), qualifier) {
                    ("dynamodb:attributes", Some("ForAllValues")) => &mut limits.attributes,
                    ("dynamodb:leadingkeys", Some("ForAllValues")) => &mut limits.leading_keys,
                    ("dynamodb:returnvalues", None) => &mut limits.return_values,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(values);
                }
            }
        }
        limits
    }

    /// What two matching statements allow together.
    pub fn union(&self, other: &Limits) -> Limits {
        fn either(a: &Option<BTreeSet<Pattern>>, b: &Option<BTreeSet<Pattern>>) -> Option<BTreeSet<Pattern>> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
                _ => None,
            }
        }
        Limits {
            attributes: either(&self.attributes, &other.attributes),
            return_values: either(&self.return_values, &other.return_values),
            leading_keys: either(&self.leading_keys, &other.leading_keys),
        }
    }

    /// Whether a request naming `attribute` can pass.
    pub fn allows_attribute(&self, attribute: &str) -> bool {
        self.attributes.as_ref().is_none_or(|s| permits(s, attribute))
    }
}

/// Whether an Allow statement's actions cover `action` (`NotAction` covers what it omits).
pub fn statement_allows_action(t: &Template, s: &Value, action: &str) -> bool {
    if s["Effect"] != "Allow" {
        return false;
    }
    if !s["NotAction"].is_null() {
        return !alternatives(&s["NotAction"])
            .into_iter()
            .map(|a| t.render(a))
            .any(|e| glob(&e, action));
    }
    alternatives(&s["Action"])
        .into_iter()
        .map(|a| t.render(a))
        .any(|p| glob(&p, action))
}

/// What `statements` allow of `action` on `arn`: `None` when no statement allows it at all.
pub fn effective(t: &Template, statements: &[Statement<'_>], action: &str, arn: &str) -> Option<Limits> {
    statements
        .iter()
        .filter(|s| statement_allows_action(t, s.body, action) && statement_covers(t, s.body, arn))
        .map(|s| Limits::of_condition(t, &s.body["Condition"]))
        .reduce(|a, b| a.union(&b))
}

/// Every (action, resource) an inline statement names literally (lower-cased action, rendered
/// resource), with the limits of each statement that names it, merged. Statements with
/// `NotAction` / `NotResource` are returned separately: they name nothing literally.
pub fn literal_grants<'a>(
    t: &Template, statements: &'a [Statement<'a>],
) -> (BTreeMap<(String, String), Limits>, Vec<&'a Statement<'a>>) {
    let mut granted: BTreeMap<(String, String), Limits> = BTreeMap::new();
    let mut open_ended = Vec::new();
    for s in statements {
        if s.body["Effect"] != "Allow" {
            continue;
        }
        if !s.body["NotAction"].is_null() || !s.body["NotResource"].is_null() {
            open_ended.push(s);
            continue;
        }
        let limits = Limits::of_condition(t, &s.body["Condition"]);
        for action in alternatives(&s.body["Action"]).into_iter().map(|a| t.render(a)) {
            for resource in alternatives(&s.body["Resource"]).into_iter().map(|r| t.render(r)) {
                granted
                    .entry((action.to_lowercase(), resource))
                    .and_modify(|l| *l = l.union(&limits))
                    .or_insert_with(|| limits.clone());
            }
        }
    }
    (granted, open_ended)
}

#[cfg(test)]
mod tests {
    use super::super::cfn::{parse, Template};
    use super::*;
    use serde_json::json;

    fn t() -> Template {
        Template::new(parse("Resources: {}\n"))
    }

    #[test]
    fn conditions_limit_attributes_return_values_and_leading_keys_the_way_iam_reads_them() {
        let t = t();
        let limits = Limits::of_condition(
            &t,
            &json!({
                "ForAllValues:StringEquals": { "dynamodb:Attributes": ["a", "b"] },
                "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["x#*"] },
                "StringEqualsIfExists": { "dynamodb:ReturnValues": "NONE" }
            }),
        );
        assert!(limits.allows_attribute("a") && !limits.allows_attribute("c"));
        assert_eq!(show(&limits.leading_keys), "{~x#*}");
        assert_eq!(show(&limits.return_values), "{NONE}");

        // ForAnyValue, or a single-valued operator, limits nothing on a multi-valued key.
        for operator in ["ForAnyValue:StringEquals", "StringEquals"] {
            let limits = Limits::of_condition(&t, &json!({ operator: { "dynamodb:Attributes": ["a"] } }));
            assert!(limits.attributes.is_none(), "{operator}");
        }
        let like = Limits::of_condition(
            &t,
            &json!({ "ForAllValues:StringLike": { "dynamodb:Attributes": ["send_*"] } }),
        );
        assert!(like.allows_attribute("send_leases") && !like.allows_attribute("role"));
    }

    #[test]
    fn two_matching_statements_allow_the_union_and_an_unlimited_one_allows_everything() {
        let t = t();
        let a = Limits::of_condition(
            &t,
            &json!({ "ForAllValues:StringEquals": { "dynamodb:Attributes": ["a"] } }),
        );
        let b = Limits::of_condition(
            &t,
            &json!({ "ForAllValues:StringEquals": { "dynamodb:Attributes": ["b"] } }),
        );
        let ab = a.union(&b);
        assert!(ab.allows_attribute("a") && ab.allows_attribute("b") && !ab.allows_attribute("c"));
        assert!(a.union(&Limits::default()).allows_attribute("role"));
    }
}

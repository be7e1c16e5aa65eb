//! The DynamoDB tables of `infra/template.yaml`, read from the template itself (the single
//! definition of every table). CloudFormation short tags (`!Sub`, `!Ref`, `!GetAtt`, ...)
//! are kept as tagged values and looked through where a plain value is needed.

pub use crate::yaml::untag;
use crate::yaml::{entries, get, seq, str_at};
use serde_yaml_ng::Value;
use std::path::PathBuf;

/// `infra/template.yaml` of this repository.
pub fn template_path() -> PathBuf {
    crate::yaml::repo_file("infra/template.yaml")
}

/// The parsed template.
pub fn template() -> Value {
    crate::yaml::load("infra/template.yaml")
}

/// The environment variable naming a table: `FooBarTable` ↔ `FOO_BAR_TABLE`.
pub fn env_var_for(logical_id: &str) -> String {
    let mut out = String::new();
    for (i, c) in logical_id.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub attribute: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub key: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

/// One `AWS::DynamoDB::Table` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub logical_id: String,
    pub env_var: String,
    /// Attribute name → `S` / `N` / `B`.
    pub attributes: Vec<(String, String)>,
    pub key: Vec<KeyElement>,
    pub indexes: Vec<IndexDef>,
    pub ttl_attribute: Option<String>,
}

fn key_schema(v: &Value) -> Vec<KeyElement> {
    seq(v, "KeySchema")
        .into_iter()
        .map(|k| KeyElement {
            attribute: str_at(k, "AttributeName")
                .expect("KeySchema.AttributeName")
                .to_owned(),
            key_type: str_at(k, "KeyType").expect("KeySchema.KeyType").to_owned(),
        })
        .collect()
}

/// Every DynamoDB table the template defines, in template order.
pub fn dynamo_tables() -> Vec<TableDef> {
    let template = template();
    let resources = get(&template, "Resources").expect("the template has Resources");
    entries(resources)
        .into_iter()
        .filter(|(_, r)| str_at(r, "Type") == Some("AWS::DynamoDB::Table"))
        .map(|(logical_id, r)| {
            let props = get(r, "Properties").unwrap_or_else(|| panic!("{logical_id} has no Properties"));
            let ttl = get(props, "TimeToLiveSpecification")
                .filter(|t| get(t, "Enabled").and_then(Value::as_bool).unwrap_or(false))
                .and_then(|t| str_at(t, "AttributeName"))
                .map(str::to_owned);
            TableDef {
                env_var: env_var_for(&logical_id),
                attributes: seq(props, "AttributeDefinitions")
                    .into_iter()
                    .map(|a| {
                        (
                            str_at(a, "AttributeName").expect("AttributeName").to_owned(),
                            str_at(a, "AttributeType").expect("AttributeType").to_owned(),
                        )
                    })
                    .collect(),
                key: key_schema(props),
                indexes: seq(props, "GlobalSecondaryIndexes")
                    .into_iter()
                    .map(|g| {
                        let projection = get(g, "Projection");
                        IndexDef {
                            name: str_at(g, "IndexName").expect("IndexName").to_owned(),
                            key: key_schema(g),
                            projection: projection
                                .and_then(|p| str_at(p, "ProjectionType"))
                                .unwrap_or("ALL")
                                .to_owned(),
                            non_key_attributes: projection
                                .map(|p| seq(p, "NonKeyAttributes"))
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|a| a.as_str().map(str::to_owned))
                                .collect(),
                        }
                    })
                    .collect(),
                ttl_attribute: ttl,
                logical_id,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_map_to_environment_variables() {
        assert_eq!(env_var_for("ProfilesTable"), "PROFILES_TABLE");
        assert_eq!(env_var_for("FollowedCompaniesTable"), "FOLLOWED_COMPANIES_TABLE");
    }

    #[test]
    fn the_template_defines_the_tables_of_the_design() {
        let tables = dynamo_tables();
        let profiles = tables
            .iter()
            .find(|t| t.env_var == "PROFILES_TABLE")
            .expect("profiles");
        assert_eq!(
            profiles.key,
            vec![KeyElement {
                attribute: "user_id".into(),
                key_type: "HASH".into()
            }]
        );
        let messages = tables
            .iter()
            .find(|t| t.env_var == "ADMIN_MESSAGES_TABLE")
            .expect("admin_messages");
        let by_recipient = messages
            .indexes
            .iter()
            .find(|i| i.name == "by_recipient")
            .expect("by_recipient");
        assert_eq!(by_recipient.key[1].attribute, "created_at");
        let idem = tables
            .iter()
            .find(|t| t.env_var == "IDEMPOTENCY_TABLE")
            .expect("idempotency");
        assert_eq!(idem.ttl_attribute.as_deref(), Some("expires_at"));
    }
}

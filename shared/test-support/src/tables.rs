use crate::infra::{dynamo_tables, IndexDef, KeyElement, TableDef};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use domain::cascade::CASCADE_PLAN;
use std::collections::BTreeMap;

/// The tables one test created: env var (`PROFILES_TABLE`) → table name (`<prefix>-ProfilesTable`).
#[derive(Debug, Clone)]
pub struct TableSet {
    pub prefix: String,
    names: BTreeMap<String, String>,
}

impl TableSet {
    /// The table name behind `env_var`. Panics when the template has no such table.
    pub fn name(&self, env_var: &str) -> &str {
        self.names
            .get(env_var)
            .unwrap_or_else(|| panic!("infra/template.yaml defines no table for {env_var}"))
    }

    pub fn get(&self, env_var: &str) -> Option<String> {
        self.names.get(env_var).cloned()
    }

    /// env var → table name, for every table.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.names
    }

    /// An environment for the `aws_adapters::env` constructors: these tables, plus more.
    pub fn env(&self) -> TestEnv {
        TestEnv(self.names.clone())
    }
}

/// A fake process environment for `aws_adapters::env::*_from`.
#[derive(Debug, Clone, Default)]
pub struct TestEnv(pub BTreeMap<String, String>);

impl TestEnv {
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    pub fn unset(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }

    /// The lookup the `*_from` constructors take.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.0.get(name).cloned()
    }
}

fn key_type(k: &KeyElement) -> KeyType {
    KeyType::from(k.key_type.as_str())
}

fn schema(key: &[KeyElement]) -> Vec<KeySchemaElement> {
    key.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute)
                .key_type(key_type(k))
                .build()
                .expect("a key schema element")
        })
        .collect()
}

fn index(i: &IndexDef) -> GlobalSecondaryIndex {
    let projection = Projection::builder()
        .projection_type(ProjectionType::from(i.projection.as_str()))
        .set_non_key_attributes((!i.non_key_attributes.is_empty()).then(|| i.non_key_attributes.clone()))
        .build();
    GlobalSecondaryIndex::builder()
        .index_name(&i.name)
        .set_key_schema(Some(schema(&i.key)))
        .projection(projection)
        .build()
        .expect("a global secondary index")
}

async fn create(client: &Client, name: &str, def: &TableDef) {
    let attributes = def
        .attributes
        .iter()
        .map(|(n, t)| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::from(t.as_str()))
                .build()
                .expect("an attribute definition")
        })
        .collect();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(schema(&def.key)))
        .set_global_secondary_indexes(
            (!def.indexes.is_empty()).then(|| def.indexes.iter().map(index).collect()),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "creating {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        });
    if let Some(attr) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .expect("a TTL spec"),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "enabling TTL on {name}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            });
    }
}

/// Create every `AWS::DynamoDB::Table` of `infra/template.yaml` (keys, attributes, indexes,
/// TTL, on-demand billing) under a fresh random prefix, as `<prefix>-<LogicalId>`.
pub async fn create_tables(sdk: &SdkConfig) -> TableSet {
    let client = Client::new(sdk);
    let prefix = crate::unique("it");
    let defs = dynamo_tables();
    assert!(!defs.is_empty(), "infra/template.yaml defines no DynamoDB table");
    let names: BTreeMap<String, String> = defs
        .iter()
        .map(|d| (d.env_var.clone(), format!("{prefix}-{}", d.logical_id)))
        .collect();
    futures::future::join_all(defs.iter().map(|d| create(&client, &names[&d.env_var], d))).await;
    TableSet { prefix, names }
}

/// The template's definitions of the user-data tables: every table of the cascade plan.
pub fn user_data_table_defs() -> Vec<TableDef> {
    let defs: Vec<TableDef> = dynamo_tables()
        .into_iter()
        .filter(|d| CASCADE_PLAN.iter().any(|t| t.env_var == d.env_var))
        .collect();
    assert_eq!(
        defs.len(),
        CASCADE_PLAN.len(),
        "every table of the cascade plan is defined in infra/template.yaml"
    );
    defs
}

/// Create the user-data tables (those of the cascade plan), exactly as the template defines
/// them and under the names `tables` gives them, in another DynamoDB (`sdk`: dynalite).
pub async fn create_user_data_tables(sdk: &SdkConfig, tables: &TableSet) {
    let client = Client::new(sdk);
    let defs = user_data_table_defs();
    futures::future::join_all(defs.iter().map(|d| create(&client, tables.name(&d.env_var), d))).await;
}

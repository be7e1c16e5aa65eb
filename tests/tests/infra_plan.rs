//! `infra/template.yaml` checked against the code's contracts, with no emulator and no AWS:
//!
//! - every DynamoDB table is either cascaded (`domain::cascade::CASCADE_PLAN`) or deliberately
//!   kept (`KEPT_TABLES`), and a table keyed on a user id cannot be forgotten;
//! - every plan entry's key schema and lookup (partition key, or GSI + its partition key)
//!   matches the table definition;
//! - every function gets every setting it reads, and table variables name real tables;
//! - no IAM statement lets any function update or delete `security_logs` (append-only);
//! - every admin route exists, behind the Cognito JWT authorizer with a required scope;
//! - the continuation queue outlives the worker and ends in an alarmed dead-letter queue;
//! - delivery-events is subscribed to the topic SES publishes to, reaches no table but
//!   `admin_messages`, is granted exactly the calls its adapter makes, and what it cannot
//!   record ends in an alarmed dead-letter queue;
//! - the HTTP API's CORS configuration exposes the response headers the dashboard reads;
//! - every `!Ref` / `!GetAtt` / `${...}` names something that exists (cfn-lint misses some of
//!   these inside `Environment.Variables`).
//!
//! Each checker returns the list of problems it found; the tests also run every checker on
//! deliberately broken copies of the template, so a checker that cannot fail fails the suite.

use std::collections::{BTreeMap, BTreeSet};

use domain::cascade::{CascadeTable, Lookup, CASCADE_PLAN, KEPT_TABLES};
use serde_json::{json, Map, Value};

const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// Attributes that hold a user id: a table keyed (or indexed) on one of them holds user data.
const USER_ID_ATTRS: &[&str] = &["user_id", "recipient_id"];

/// Every setting of the environment contract. The functions share one configuration loader,
/// so every function gets all of them (a missing one fails at start-up with its name).
const REQUIRED_ENV: &[&str] = &[
    "PROFILES_TABLE",
    "ADMIN_MESSAGES_TABLE",
    "SECURITY_LOGS_TABLE",
    "DELETION_JOBS_TABLE",
    "TRANSACTIONS_TABLE",
    "FOLLOWED_COMPANIES_TABLE",
    "BILLING_RECORDS_TABLE",
    "SESSIONS_TABLE",
    "HELP_REQUESTS_TABLE",
    "IDEMPOTENCY_TABLE",
    "USER_POOL_ID",
    "MAIL_FROM",
    "SUPPORT_REPLY_TO",
    "SES_CONFIGURATION_SET",
    "DELETION_QUEUE_URL",
    "DELETE_BUDGET_MS",
    "WORKER_BUDGET_MS",
    "MESSAGES_PER_MINUTE",
    "DELETIONS_PER_HOUR",
];

/// The HTTP API (the admin routes, plus the read routes of the Users tab) and the function
/// (cargo bin) that serves each route.
const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/admin/users/{userId}/messages", "message-user"),
    ("GET", "/admin/users/{userId}/messages", "message-user"),
    ("DELETE", "/admin/users/{userId}", "delete-user"),
    ("GET", "/admin/users/{userId}/deletion", "delete-user"),
    ("GET", "/admin/users/{userId}/deletion-preview", "delete-user"),
    ("GET", "/admin/users", "list-users"),
];

const WORKER_BIN: &str = "deletion-worker";

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

/// Values used to render ARNs for matching (any fixed values do).
const PSEUDO: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::StackName", "stack"),
    ("AWS::URLSuffix", "amazonaws.com"),
    (
        "AWS::StackId",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/id",
    ),
    ("AWS::NoValue", ""),
    ("AWS::NotificationARNs", ""),
];

// ---------------------------------------------------------------------------------------------
// Parsing: YAML with CloudFormation short-form tags -> the JSON form (`!Ref X` -> {"Ref": X}).
// ---------------------------------------------------------------------------------------------

fn parse(yaml: &str) -> Value {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("template is not YAML: {e}"));
    to_json(doc)
}

fn to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            match name {
                "Ref" | "Condition" => json!({ name: value }),
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or((&s, ""));
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}

struct Template {
    doc: Value,
}

impl Template {
    fn new(doc: Value) -> Self {
        Template { doc }
    }

    fn resources(&self) -> &Map<String, Value> {
        self.doc["Resources"]
            .as_object()
            .expect("the template has a Resources map")
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().iter().filter(move |(_, r)| r["Type"] == ty)
    }

    fn parameters(&self) -> BTreeSet<String> {
        self.doc["Parameters"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn tables(&self) -> Vec<TableDef> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, r)| TableDef::from_resource(id, r))
            .collect()
    }

    fn functions(&self) -> Vec<(&String, &Value)> {
        self.of_type("AWS::Serverless::Function").collect()
    }

    /// The cargo bin a function is built from (Metadata.BuildProperties.Binary).
    fn binary_of(&self, function: &Value) -> Option<String> {
        function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .map(str::to_owned)
    }

    fn function_by_binary(&self, bin: &str) -> Option<(&String, &Value)> {
        self.functions()
            .into_iter()
            .find(|(_, f)| self.binary_of(f).as_deref() == Some(bin))
    }

    /// Globals.Function.Environment.Variables merged with the function's own (SAM merges maps).
    fn environment_of(&self, function: &Value) -> Map<String, Value> {
        let mut vars = self.doc["Globals"]["Function"]["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if let Some(own) = function["Properties"]["Environment"]["Variables"].as_object() {
            vars.extend(own.clone());
        }
        vars
    }

    /// A function property, falling back to Globals.Function.
    fn function_property<'a>(&'a self, function: &'a Value, name: &str) -> &'a Value {
        let own = &function["Properties"][name];
        if own.is_null() {
            &self.doc["Globals"]["Function"][name]
        } else {
            own
        }
    }

    fn table_env_var(&self, env_var: &str) -> Option<TableDef> {
        self.tables().into_iter().find(|t| t.env_var == env_var)
    }

    /// Renders a value to a string with pseudo parameters and table ARNs filled in; anything
    /// that cannot be resolved statically becomes `*` (so it matches conservatively).
    fn render(&self, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().expect("one entry");
                match k.as_str() {
                    "Ref" => self.render_ref(arg.as_str().unwrap_or("")),
                    "Fn::GetAtt" => {
                        let (res, attr) = getatt_parts(arg);
                        self.render_getatt(&res, &attr)
                    }
                    "Fn::Sub" => {
                        let (text, vars) = match arg {
                            Value::Array(a) => (a.first().and_then(Value::as_str).unwrap_or(""), a.get(1)),
                            other => (other.as_str().unwrap_or(""), None),
                        };
                        self.render_sub(text, vars)
                    }
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap_or("");
                        let parts: Vec<String> = arg[1]
                            .as_array()
                            .map(|a| a.iter().map(|p| self.render(p)).collect())
                            .unwrap_or_else(|| vec!["*".to_owned()]);
                        parts.join(sep)
                    }
                    _ => "*".to_owned(),
                }
            }
            _ => "*".to_owned(),
        }
    }

    fn render_ref(&self, name: &str) -> String {
        if let Some((_, v)) = PSEUDO.iter().find(|(p, _)| *p == name) {
            return (*v).to_owned();
        }
        match self.resources().get(name) {
            Some(r) if r["Type"] == "AWS::DynamoDB::Table" => TableDef::from_resource(name, r).physical_name,
            Some(_) => format!("ref-{name}"),
            None if self.parameters().contains(name) => format!("param-{name}"),
            None => "*".to_owned(),
        }
    }

    fn render_getatt(&self, res: &str, attr: &str) -> String {
        match self.resources().get(res) {
            Some(r) if r["Type"] == "AWS::DynamoDB::Table" && attr == "Arn" => {
                table_arn(&TableDef::from_resource(res, r).physical_name)
            }
            Some(_) => format!("getatt-{res}-{attr}"),
            None => "*".to_owned(),
        }
    }

    fn render_sub(&self, text: &str, vars: Option<&Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..end];
            if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.render(v));
            } else if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some((res, attr)) = name.split_once('.') {
                out.push_str(&self.render_getatt(res, attr));
            } else {
                out.push_str(&self.render_ref(name));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn getatt_parts(arg: &Value) -> (String, String) {
    match arg {
        Value::Array(a) => (
            a.first().and_then(Value::as_str).unwrap_or("").to_owned(),
            a.get(1).and_then(Value::as_str).unwrap_or("").to_owned(),
        ),
        Value::String(s) => {
            let (r, a) = s.split_once('.').unwrap_or((s, ""));
            (r.to_owned(), a.to_owned())
        }
        _ => (String::new(), String::new()),
    }
}

fn table_arn(physical_name: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:123456789012:table/{physical_name}")
}

/// `FollowedCompaniesTable` -> `FOLLOWED_COMPANIES_TABLE`.
fn env_var_for(logical_id: &str) -> String {
    let stem = logical_id.strip_suffix("Table").unwrap_or(logical_id);
    let mut out = String::new();
    for (i, c) in stem.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push_str("_TABLE");
    out
}

#[derive(Debug, Clone)]
struct Gsi {
    name: String,
    key: Vec<String>,
}

#[derive(Debug, Clone)]
struct TableDef {
    logical_id: String,
    env_var: String,
    physical_name: String,
    key: Vec<String>,
    gsis: Vec<Gsi>,
}

/// Key attribute names, partition (HASH) key first.
fn key_schema(v: &Value) -> Vec<String> {
    let mut parts: Vec<(u8, String)> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| {
                    let order = if k["KeyType"] == "HASH" { 0 } else { 1 };
                    (order, k["AttributeName"].as_str().unwrap_or("").to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    parts.sort_by_key(|(o, _)| *o);
    parts.into_iter().map(|(_, n)| n).collect()
}

impl TableDef {
    fn from_resource(logical_id: &str, r: &Value) -> Self {
        let props = &r["Properties"];
        let physical_name = match &props["TableName"] {
            Value::Null => format!("stack-{logical_id}-GENERATED"),
            // Only pseudo parameters are expected in a table name; render them directly.
            Value::Object(m) if m.contains_key("Fn::Sub") => {
                let mut s = m["Fn::Sub"].as_str().unwrap_or("*").to_owned();
                for (p, v) in PSEUDO {
                    s = s.replace(&format!("${{{p}}}"), v);
                }
                s
            }
            Value::String(s) => s.clone(),
            _ => "*".to_owned(),
        };
        let gsis = props["GlobalSecondaryIndexes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| Gsi {
                        name: g["IndexName"].as_str().unwrap_or("").to_owned(),
                        key: key_schema(&g["KeySchema"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        TableDef {
            logical_id: logical_id.to_owned(),
            env_var: env_var_for(logical_id),
            physical_name,
            key: key_schema(&props["KeySchema"]),
            gsis,
        }
    }

    /// The user-id attribute this table is keyed or indexed on, if any.
    fn user_id_attr(&self) -> Option<String> {
        let mut candidates = self
            .key
            .first()
            .into_iter()
            .chain(self.gsis.iter().filter_map(|g| g.key.first()));
        candidates.find(|a| USER_ID_ATTRS.contains(&a.as_str())).cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// Checkers. Each returns the problems it found (empty = fine).
// ---------------------------------------------------------------------------------------------

/// (a) Every table is cascaded or kept, exactly once; every plan/kept entry names a real table.
fn check_tables_classified(t: &Template, plan: &[CascadeTable], kept: &[(&str, &str)]) -> Vec<String> {
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
fn check_user_keyed_tables(t: &Template, plan: &[CascadeTable], kept: &[(&str, &str)]) -> Vec<String> {
    t.tables()
        .into_iter()
        .filter_map(|table| {
            let attr = table.user_id_attr()?;
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
fn check_plan_matches_tables(t: &Template, plan: &[CascadeTable]) -> Vec<String> {
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

/// (d) Every function gets every setting; `*_TABLE` variables reference the table of that name;
/// the other references point at the right kind of resource; budgets fit inside timeouts.
fn check_environment(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = t.functions();
    if functions.is_empty() {
        problems.push("the template has no AWS::Serverless::Function".to_owned());
    }
    for (id, f) in functions {
        let env = t.environment_of(f);
        for var in REQUIRED_ENV {
            if !env.contains_key(*var) {
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
        for var in [
            "DELETE_BUDGET_MS",
            "WORKER_BUDGET_MS",
            "MESSAGES_PER_MINUTE",
            "DELETIONS_PER_HOUR",
        ] {
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
    problems
}

/// A policy statement, with where it came from.
struct Statement<'a> {
    origin: String,
    body: &'a Value,
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// Flattens `Fn::If` into both branches.
fn alternatives(v: &Value) -> Vec<&Value> {
    if let Some(args) = v.get("Fn::If").and_then(Value::as_array) {
        return args.iter().skip(1).flat_map(alternatives).collect();
    }
    as_list(v)
        .into_iter()
        .flat_map(|x| {
            if x.get("Fn::If").is_some() {
                alternatives(x)
            } else {
                vec![x]
            }
        })
        .collect()
}

fn statements_of_document<'a>(origin: &str, doc: &'a Value, out: &mut Vec<Statement<'a>>) {
    for s in alternatives(&doc["Statement"]) {
        out.push(Statement {
            origin: origin.to_owned(),
            body: s,
        });
    }
}

/// Case-insensitive glob with `*` and `?` (IAM's wildcards).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let s: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// (e) No IAM statement (function policies, SAM policy templates, IAM resources) lets anything
/// update or delete security_logs items, or the table.
fn check_security_logs_append_only(t: &Template) -> Vec<String> {
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
        if !grants_tampering {
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

/// (method, path)
type Route = (String, String);
/// (function logical id, cargo bin)
type Owner = (String, Option<String>);

/// (f) Every route exists once, served by the right function, attached to an HTTP API whose
/// authorizer is a Cognito JWT authorizer, with at least one required scope. Any other HttpApi
/// route must be protected the same way.
fn check_routes(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found: BTreeMap<Route, Vec<Owner>> = BTreeMap::new();
    for (id, f) in t.functions() {
        let Some(events) = f["Properties"]["Events"].as_object() else {
            continue;
        };
        for (event_id, event) in events {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let p = &event["Properties"];
            let method = p["Method"].as_str().unwrap_or("").to_uppercase();
            let path = p["Path"].as_str().unwrap_or("").to_owned();
            let route = format!("{method} {path} ({id}.{event_id})");
            found
                .entry((method, path))
                .or_default()
                .push((id.clone(), t.binary_of(f)));

            let Some(api_id) = p["ApiId"].get("Ref").and_then(Value::as_str) else {
                problems.push(format!(
                    "{route}: must name the HttpApi (ApiId: !Ref ...), not the implicit API"
                ));
                continue;
            };
            let api = &t.resources()[api_id];
            if api["Type"] != "AWS::Serverless::HttpApi" {
                problems.push(format!(
                    "{route}: ApiId {api_id} is not an AWS::Serverless::HttpApi"
                ));
                continue;
            }
            let auth = &api["Properties"]["Auth"];
            let authorizer = p["Auth"]["Authorizer"]
                .as_str()
                .or_else(|| auth["DefaultAuthorizer"].as_str());
            let Some(authorizer) = authorizer.filter(|a| *a != "NONE") else {
                problems.push(format!("{route}: has no authorizer"));
                continue;
            };
            let jwt = &auth["Authorizers"][authorizer]["JwtConfiguration"];
            let get = |k: &str| {
                jwt.as_object()
                    .and_then(|m| {
                        m.iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(k))
                            .map(|(_, v)| v.clone())
                    })
                    .unwrap_or(Value::Null)
            };
            let issuer = t.render(&get("issuer"));
            if !issuer.starts_with("https://cognito-idp.") || !issuer.contains("param-") {
                problems.push(format!(
                    "{route}: authorizer {authorizer} is not a JWT authorizer with the user pool's issuer ({issuer})"
                ));
            }
            if as_list(&get("audience")).is_empty() {
                problems.push(format!("{route}: authorizer {authorizer} has no audience"));
            }
            if as_list(&p["Auth"]["AuthorizationScopes"]).is_empty() {
                problems.push(format!("{route}: requires no authorization scope"));
            }
        }
    }
    for (method, path, bin) in ROUTES {
        match found.get(&((*method).to_owned(), (*path).to_owned())) {
            None => problems.push(format!("route {method} {path} is missing")),
            Some(owners) if owners.len() > 1 => {
                problems.push(format!("route {method} {path} is defined {} times", owners.len()))
            }
            Some(owners) => {
                let (id, actual) = &owners[0];
                if actual.as_deref() != Some(*bin) {
                    problems.push(format!(
                        "route {method} {path} is served by {id} ({actual:?}), expected {bin}"
                    ));
                }
            }
        }
    }
    problems
}

/// The worker consumes the continuation queue with partial batch responses; the queue hides a
/// message for at least 6 worker timeouts, gives up into a dead-letter queue, which is alarmed.
fn check_deletion_queue(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((worker_id, worker)) = t.function_by_binary(WORKER_BIN) else {
        return vec![format!("no function builds {WORKER_BIN}")];
    };
    let timeout = t.function_property(worker, "Timeout").as_u64().unwrap_or(0);

    // The trigger: an explicit event source mapping or a SAM SQS event.
    // (name, source queue ARN, properties with BatchSize / FunctionResponseTypes)
    let mut triggers: Vec<(String, &Value, &Value)> = Vec::new();
    for (id, r) in t.of_type("AWS::Lambda::EventSourceMapping") {
        let props = &r["Properties"];
        if props["FunctionName"].get("Ref").and_then(Value::as_str) == Some(worker_id.as_str()) {
            triggers.push((id.clone(), &props["EventSourceArn"], props));
        }
    }
    if let Some(events) = worker["Properties"]["Events"].as_object() {
        for (id, e) in events.iter().filter(|(_, e)| e["Type"] == "SQS") {
            triggers.push((
                format!("{worker_id}.{id}"),
                &e["Properties"]["Queue"],
                &e["Properties"],
            ));
        }
    }
    if triggers.len() != 1 {
        problems.push(format!(
            "{worker_id} must have exactly one SQS trigger, found {}",
            triggers.len()
        ));
        return problems;
    }
    let (trigger_id, source, props) = &triggers[0];
    let (queue_id, _) = getatt_parts(&source["Fn::GetAtt"]);
    let Some(queue) = t
        .resources()
        .get(&queue_id)
        .filter(|q| q["Type"] == "AWS::SQS::Queue")
    else {
        problems.push(format!(
            "{trigger_id}: does not read an AWS::SQS::Queue of this template ({source})"
        ));
        return problems;
    };
    if !as_list(&props["FunctionResponseTypes"])
        .iter()
        .any(|v| *v == "ReportBatchItemFailures")
    {
        problems.push(format!(
            "{trigger_id}: FunctionResponseTypes must include ReportBatchItemFailures"
        ));
    }
    match props["BatchSize"].as_u64() {
        Some(1..=10) => {}
        other => problems.push(format!(
            "{trigger_id}: BatchSize must be set and small (1..=10), got {other:?}"
        )),
    }
    if let Some(env) = t.environment_of(worker).get("DELETION_QUEUE_URL") {
        if env.get("Ref").and_then(Value::as_str) != Some(queue_id.as_str()) {
            problems.push(format!(
                "DELETION_QUEUE_URL ({env}) is not the queue {worker_id} consumes ({queue_id})"
            ));
        }
    }
    let visibility = queue["Properties"]["VisibilityTimeout"].as_u64().unwrap_or(30);
    if visibility < 6 * timeout {
        problems.push(format!(
            "{queue_id}: VisibilityTimeout {visibility} s is under 6 x {worker_id}'s timeout {timeout} s"
        ));
    }
    let redrive = &queue["Properties"]["RedrivePolicy"];
    let (dlq_id, _) = getatt_parts(&redrive["deadLetterTargetArn"]["Fn::GetAtt"]);
    match redrive["maxReceiveCount"].as_u64() {
        Some(1..=10) => {}
        other => problems.push(format!(
            "{queue_id}: RedrivePolicy.maxReceiveCount must be 1..=10, got {other:?}"
        )),
    }
    if t.resources()
        .get(&dlq_id)
        .is_some_and(|q| q["Type"] == "AWS::SQS::Queue")
    {
        problems.extend(check_alarmed_dead_letter_queue(t, &dlq_id));
    } else {
        problems.push(format!(
            "{queue_id}: RedrivePolicy has no dead-letter queue of this template"
        ));
    }
    problems
}

/// A dead-letter queue keeps what it holds the maximum 14 days and is watched by an alarm with
/// an action on its visible messages.
fn check_alarmed_dead_letter_queue(t: &Template, dlq_id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(dlq) = t
        .resources()
        .get(dlq_id)
        .filter(|q| q["Type"] == "AWS::SQS::Queue")
    else {
        return vec![format!("{dlq_id} is not an AWS::SQS::Queue of this template")];
    };
    if dlq["Properties"]["MessageRetentionPeriod"].as_u64() != Some(1_209_600) {
        problems.push(format!(
            "{dlq_id}: keep dead letters the maximum 14 days (1209600 s)"
        ));
    }
    let alarmed = t.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
        let p = &a["Properties"];
        p["MetricName"] == "ApproximateNumberOfMessagesVisible"
            && as_list(&p["Dimensions"]).iter().any(|d| {
                getatt_parts(&d["Value"]["Fn::GetAtt"]).0 == dlq_id
                    || d["Value"].get("Ref").and_then(Value::as_str) == Some(dlq_id)
            })
            && !as_list(&p["AlarmActions"]).is_empty()
    });
    if !alarmed {
        problems.push(format!(
            "{dlq_id}: no alarm with an action on ApproximateNumberOfMessagesVisible"
        ));
    }
    problems
}

/// The function's grants: inline statements (its Policies, or its own template role), the SAM
/// policy templates it uses (name, arguments) and the managed policies it attaches.
struct Grants<'a> {
    statements: Vec<Statement<'a>>,
    templates: Vec<(&'a String, &'a Value)>,
    managed: Vec<String>,
}

fn grants_of<'a>(t: &'a Template, id: &str, f: &'a Value) -> Grants<'a> {
    let mut g = Grants {
        statements: Vec::new(),
        templates: Vec::new(),
        managed: Vec::new(),
    };
    for policy in alternatives(t.function_property(f, "Policies")) {
        match policy {
            Value::String(managed) => g.managed.push(managed.clone()),
            Value::Object(m) if m.contains_key("Statement") => {
                statements_of_document(&format!("{id} (inline policy)"), policy, &mut g.statements);
            }
            Value::Object(m) => g.templates.extend(m.iter()),
            other => g.managed.push(t.render(other)),
        }
    }
    // A function with its own role: that role's policies.
    let role = &f["Properties"]["Role"];
    if !role.is_null() {
        let role_id = getatt_parts(&role["Fn::GetAtt"]).0;
        match t
            .resources()
            .get(&role_id)
            .filter(|r| r["Type"] == "AWS::IAM::Role")
        {
            Some(r) => {
                for p in as_list(&r["Properties"]["Policies"]) {
                    statements_of_document(
                        &format!("{role_id} (role policy)"),
                        &p["PolicyDocument"],
                        &mut g.statements,
                    );
                }
                for arn in as_list(&r["Properties"]["ManagedPolicyArns"]) {
                    g.managed.push(t.render(arn));
                }
            }
            // Unknown role: nothing can be said about it, so assume the worst.
            None => g
                .managed
                .push(format!("role {} (not a role of this template)", t.render(role))),
        }
    }
    // Separate policies attached to its role (SAM names a function's role `<id>Role`).
    let role_names = [format!("{id}Role"), getatt_parts(&role["Fn::GetAtt"]).0];
    for (pid, r) in t.resources() {
        if matches!(
            r["Type"].as_str(),
            Some("AWS::IAM::Policy" | "AWS::IAM::RolePolicy")
        ) {
            let mut roles = as_list(&r["Properties"]["Roles"]);
            roles.push(&r["Properties"]["RoleName"]);
            let names_role = roles.into_iter().any(|v| {
                let name = v
                    .get("Ref")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| t.render(v));
                role_names.iter().any(|n| !n.is_empty() && *n == name)
            });
            if names_role {
                statements_of_document(pid, &r["Properties"]["PolicyDocument"], &mut g.statements);
            }
        }
    }
    g
}

/// DynamoDB actions probed to tell whether a statement's actions reach DynamoDB at all.
const DYNAMODB_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DescribeTable",
    "dynamodb:GetRecords",
    "dynamodb:ExportTableToPointInTime",
];

/// The action patterns of an Allow statement that reach DynamoDB (`NotAction` counts as all).
fn dynamodb_action_patterns(t: &Template, s: &Value) -> Vec<String> {
    if s["Effect"] != "Allow" {
        return vec![];
    }
    if !s["NotAction"].is_null() {
        let excluded: Vec<String> = alternatives(&s["NotAction"])
            .into_iter()
            .map(|a| t.render(a))
            .collect();
        let reaches = DYNAMODB_ACTIONS
            .iter()
            .any(|a| !excluded.iter().any(|e| glob(e, a)));
        return if reaches {
            vec![format!("NotAction {}", s["NotAction"])]
        } else {
            vec![]
        };
    }
    alternatives(&s["Action"])
        .into_iter()
        .map(|a| t.render(a))
        .filter(|p| p.to_lowercase().starts_with("dynamodb:") || DYNAMODB_ACTIONS.iter().any(|a| glob(p, a)))
        .collect()
}

/// Whether a statement's resources cover this ARN (`NotResource` covers what it does not list).
fn statement_covers(t: &Template, s: &Value, arn: &str) -> bool {
    if !s["NotResource"].is_null() {
        let excluded: Vec<String> = alternatives(&s["NotResource"])
            .into_iter()
            .map(|r| t.render(r))
            .collect();
        return !excluded.iter().any(|e| glob(e, arn));
    }
    alternatives(&s["Resource"])
        .into_iter()
        .map(|r| t.render(r))
        .any(|r| glob(&r, arn))
}

/// Every ARN of a table that IAM can name: the table, its indexes, streams, exports, backups.
fn table_arns(table: &TableDef) -> Vec<String> {
    let arn = table_arn(&table.physical_name);
    let mut arns = vec![arn.clone()];
    arns.extend(table.gsis.iter().map(|g| format!("{arn}/index/{}", g.name)));
    arns.extend(
        ["stream", "export", "backup"]
            .iter()
            .map(|k| format!("{arn}/{k}/x")),
    );
    arns
}

/// (g) The function built from `bin` can reach no DynamoDB table but `allowed` (environment
/// variable names): no statement, policy template or managed policy covers another table.
fn check_table_access(t: &Template, bin: &str, allowed: &[&str]) -> Vec<String> {
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

/// The SNS subscriber of the SES configuration set's events.
const DELIVERY_BIN: &str = "delivery-events";
/// The topic the SES event destination publishes to.
const DELIVERY_TOPIC: &str = "MessageEventsTopic";
/// The only table delivery-events touches.
const DELIVERY_TABLE: &str = "ADMIN_MESSAGES_TABLE";
/// Exactly the calls of shared/aws-adapters/src/dynamo/delivery.rs: (action, suffix of the
/// table's ARN).
const DELIVERY_GRANTS: &[(&str, &str)] = &[
    ("dynamodb:Query", "/index/by_ses_message_id"),
    ("dynamodb:UpdateItem", ""),
];

/// (h) delivery-events is granted exactly the DynamoDB calls its adapter makes, as inline
/// statements (no wildcard, no policy template, no condition-free extra).
fn check_delivery_grants(t: &Template) -> Vec<String> {
    let Some((id, f)) = t.function_by_binary(DELIVERY_BIN) else {
        return vec![format!("no function builds {DELIVERY_BIN}")];
    };
    let Some(table) = t.table_env_var(DELIVERY_TABLE) else {
        return vec![format!("no table for {DELIVERY_TABLE}")];
    };
    let arn = table_arn(&table.physical_name);
    let expected: BTreeSet<(String, String)> = DELIVERY_GRANTS
        .iter()
        .map(|(a, suffix)| (a.to_lowercase(), format!("{arn}{suffix}")))
        .collect();
    let mut problems = Vec::new();
    let grants = grants_of(t, id, f);
    for (name, _) in &grants.templates {
        if name.to_lowercase().contains("dynamodb") {
            problems.push(format!(
                "{id}: policy template {name}: state the exact calls as inline statements"
            ));
        }
    }
    let mut granted = BTreeSet::new();
    for s in &grants.statements {
        let actions = dynamodb_action_patterns(t, s.body);
        if actions.is_empty() {
            continue;
        }
        let sid = s.body["Sid"].as_str().unwrap_or("(no Sid)");
        if !s.body["NotAction"].is_null() || !s.body["NotResource"].is_null() {
            problems.push(format!(
                "{}: statement {sid} uses NotAction/NotResource",
                s.origin
            ));
            continue;
        }
        for action in &actions {
            for resource in alternatives(&s.body["Resource"]).into_iter().map(|r| t.render(r)) {
                granted.insert((action.to_lowercase(), resource));
            }
        }
    }
    for (action, resource) in granted.difference(&expected) {
        problems.push(format!(
            "{id}: grants {action} on {resource}, which its adapter does not call"
        ));
    }
    for (action, resource) in expected.difference(&granted) {
        problems.push(format!(
            "{id}: does not grant {action} on {resource}, which its adapter calls"
        ));
    }
    problems
}

/// (i) delivery-events is subscribed (once) to the topic the SES configuration set's event
/// destination publishes to, and SNS may invoke it.
fn check_delivery_subscription(t: &Template) -> Vec<String> {
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
/// goes to an SQS on-failure destination or dead-letter queue, which is alarmed.
fn check_delivery_failures(t: &Template) -> Vec<String> {
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
        problems.extend(check_alarmed_dead_letter_queue(t, &queue));
    }
    problems
}

/// Response headers the dashboard reads from a browser: Retry-After (429/503),
/// Idempotent-Replayed (a replayed send), Location (the status URL of a 202 delete).
const EXPOSED_HEADERS: &[&str] = &["retry-after", "idempotent-replayed", "location"];

/// (k) The HTTP API's CORS configuration exposes every header the dashboard reads.
fn check_cors_exposes_headers(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, api) in t.of_type("AWS::Serverless::HttpApi") {
        let exposed: Vec<String> = as_list(&api["Properties"]["CorsConfiguration"]["ExposeHeaders"])
            .into_iter()
            .map(|h| t.render(h).to_lowercase())
            .collect();
        for header in EXPOSED_HEADERS {
            if !exposed.iter().any(|e| e == header || e == "*") {
                problems.push(format!("{id}: CorsConfiguration.ExposeHeaders lacks {header}"));
            }
        }
    }
    problems
}

/// Every Ref / GetAtt / Sub variable names a parameter, resource or pseudo parameter.
fn check_references(t: &Template) -> Vec<String> {
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

// ---------------------------------------------------------------------------------------------
// Tests on the real template.
// ---------------------------------------------------------------------------------------------

fn template() -> Template {
    Template::new(parse(TEMPLATE))
}

fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  - {}", problems.join("\n  - "));
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
fn every_function_gets_every_setting_and_table_variables_name_real_tables() {
    assert_clean("environment", check_environment(&template()));
}

#[test]
fn no_function_can_update_or_delete_security_logs() {
    assert_clean("security_logs", check_security_logs_append_only(&template()));
}

#[test]
fn every_admin_route_is_behind_the_jwt_authorizer_with_a_required_scope() {
    assert_clean("routes", check_routes(&template()));
}

#[test]
fn the_deletion_queue_outlives_the_worker_and_ends_in_an_alarmed_dead_letter_queue() {
    assert_clean("deletion queue", check_deletion_queue(&template()));
}

#[test]
fn every_reference_in_the_template_names_something_that_exists() {
    assert_clean("references", check_references(&template()));
}

#[test]
fn every_function_is_built_from_its_own_crate_with_cargo_lambda() {
    let t = template();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut bins = BTreeSet::new();
    for (id, f) in t.functions() {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}");
        let bin = t
            .binary_of(f)
            .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary is missing"));
        let manifest = format!("{root}/functions/{bin}/Cargo.toml");
        assert!(
            std::path::Path::new(&manifest).is_file(),
            "{id}: {manifest} does not exist"
        );
        assert_eq!(
            t.function_property(f, "CodeUri"),
            "..",
            "{id}: CodeUri must be the workspace root"
        );
        assert_eq!(t.function_property(f, "Handler"), "bootstrap", "{id}");
        assert_eq!(t.function_property(f, "Runtime"), "provided.al2023", "{id}");
        let log_group = t.function_property(f, "LoggingConfig")["LogGroup"]
            .get("Ref")
            .and_then(Value::as_str);
        let retained = log_group.and_then(|g| t.resources().get(g)).is_some_and(|g| {
            g["Type"] == "AWS::Logs::LogGroup" && !g["Properties"]["RetentionInDays"].is_null()
        });
        assert!(
            retained,
            "{id}: LoggingConfig.LogGroup must reference a LogGroup with RetentionInDays"
        );
        assert!(bins.insert(bin.clone()), "{bin} is built twice");
    }
    let expected: BTreeSet<String> = ROUTES
        .iter()
        .map(|(_, _, b)| (*b).to_owned())
        .chain([WORKER_BIN.to_owned(), DELIVERY_BIN.to_owned()])
        .collect();
    assert_eq!(bins, expected);
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
fn the_delivery_events_function_reaches_no_table_but_admin_messages() {
    assert_clean(
        "delivery-events tables",
        check_table_access(&template(), DELIVERY_BIN, &[DELIVERY_TABLE]),
    );
}

#[test]
fn the_delivery_events_function_is_granted_exactly_the_calls_its_adapter_makes() {
    assert_clean("delivery-events grants", check_delivery_grants(&template()));
}

#[test]
fn the_delivery_events_function_is_subscribed_to_the_topic_ses_publishes_to() {
    assert_clean(
        "delivery-events subscription",
        check_delivery_subscription(&template()),
    );
}

#[test]
fn delivery_events_that_keep_failing_end_in_an_alarmed_dead_letter_queue() {
    assert_clean("delivery-events failures", check_delivery_failures(&template()));
}

#[test]
fn the_dashboard_can_read_every_response_header_it_needs_across_origins() {
    assert_clean("CORS", check_cors_exposes_headers(&template()));
}

// ---------------------------------------------------------------------------------------------
// The checkers themselves fail on broken copies of the template.
// ---------------------------------------------------------------------------------------------

/// The real template text with a table inserted at the top of `Resources`.
fn with_extra_table(yaml_resource: &str) -> Template {
    let at = TEMPLATE.find("\nResources:\n").expect("a Resources section") + "\nResources:\n".len();
    let mut text = TEMPLATE.to_owned();
    text.insert_str(at, yaml_resource);
    Template::new(parse(&text))
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
    let t = with_extra_table(FOO_TABLE);
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
    let t = with_extra_table(
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
    let t = with_extra_table(FOO_TABLE);
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

#[test]
fn a_route_without_the_authorizer_or_a_scope_or_missing_fails_the_check() {
    let mut t = template();
    let events = &mut t.doc["Resources"]["DeleteUserFunction"]["Properties"]["Events"];
    events["DeleteUser"]["Properties"]["Auth"] = json!({ "Authorizer": "NONE" });
    events["DeletionPreview"]["Properties"]["Auth"]
        .as_object_mut()
        .expect("auth")
        .remove("AuthorizationScopes");
    events.as_object_mut().expect("events").remove("DeletionStatus");
    let problems = check_routes(&t);
    assert!(problems
        .iter()
        .any(|p| p.starts_with("DELETE /admin/users/{userId} ") && p.contains("no authorizer")));
    assert!(problems
        .iter()
        .any(|p| p.contains("deletion-preview") && p.contains("no authorization scope")));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("GET /admin/users/{userId}/deletion is missing")),
        "{problems:?}"
    );
}

#[test]
fn an_authorizer_that_is_not_the_user_pools_jwt_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["CognitoJwt"]["JwtConfiguration"]
        ["issuer"] = json!("https://example.com");
    let problems = check_routes(&t);
    assert_eq!(problems.len(), ROUTES.len(), "{problems:?}");
}

#[test]
fn a_short_visibility_timeout_or_whole_batch_failures_fail_the_check() {
    let mut t = template();
    t.doc["Resources"]["DeletionQueue"]["Properties"]["VisibilityTimeout"] = json!(300);
    let mapping = t.doc["Resources"]
        .as_object_mut()
        .expect("resources")
        .values_mut()
        .find(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .expect("the worker's event source mapping");
    mapping["Properties"]
        .as_object_mut()
        .expect("props")
        .remove("FunctionResponseTypes");
    let problems = check_deletion_queue(&t);
    assert!(
        problems.iter().any(|p| p.contains("VisibilityTimeout")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("ReportBatchItemFailures")),
        "{problems:?}"
    );
}

/// Appends a statement to the inline policy of delivery-events.
fn with_delivery_statement(statement: Value) -> Template {
    let mut t = template();
    let policies = &mut t.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Policies"];
    policies[0]["Statement"]
        .as_array_mut()
        .expect("inline statements")
        .push(statement);
    t
}

#[test]
fn any_grant_that_lets_delivery_events_reach_another_table_fails_the_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": { "Fn::GetAtt": ["ProfilesTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": { "Fn::Sub": "${SessionsTable.Arn}/index/by_user" } }),
        json!({ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "*", "Resource": { "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-*" } }),
        json!({ "Effect": "Allow", "NotAction": "s3:*", "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": "dynamodb:UpdateItem", "NotResource": { "Fn::GetAtt": ["AdminMessagesTable", "Arn"] } }),
    ];
    for statement in cases {
        let problems = check_table_access(
            &with_delivery_statement(statement.clone()),
            DELIVERY_BIN,
            &[DELIVERY_TABLE],
        );
        assert!(!problems.is_empty(), "expected the checker to flag {statement}");
        assert!(
            problems.iter().all(|p| p.contains("reaches")),
            "{statement}: {problems:?}"
        );
    }

    let mut t = template();
    let policies = t.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Policies"]
        .as_array_mut()
        .expect("policies");
    policies.push(json!({ "DynamoDBReadPolicy": { "TableName": { "Ref": "TransactionsTable" } } }));
    policies.push(json!("arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"));
    let problems = check_table_access(&t, DELIVERY_BIN, &[DELIVERY_TABLE]);
    assert!(
        problems.len() == 2
            && problems
                .iter()
                .any(|p| p.contains("DynamoDBReadPolicy") && p.contains("TransactionsTable"))
            && problems
                .iter()
                .any(|p| p.contains("AmazonDynamoDBReadOnlyAccess")),
        "{problems:?}"
    );
}

#[test]
fn grants_on_admin_messages_or_outside_dynamodb_or_a_deny_pass_the_table_check() {
    let cases = [
        json!({ "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": { "Fn::GetAtt": ["AdminMessagesTable", "Arn"] } }),
        json!({ "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*" }),
        json!({ "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*" }),
    ];
    for statement in cases {
        assert_clean(
            &statement.to_string(),
            check_table_access(
                &with_delivery_statement(statement.clone()),
                DELIVERY_BIN,
                &[DELIVERY_TABLE],
            ),
        );
    }
    // The same checker on message-user, which does use other tables, is not clean.
    assert!(!check_table_access(&template(), "message-user", &[DELIVERY_TABLE]).is_empty());
}

#[test]
fn a_grant_beyond_or_short_of_the_adapters_calls_fails_the_delivery_grants_check() {
    let extra = with_delivery_statement(
        json!({ "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": { "Fn::GetAtt": ["AdminMessagesTable", "Arn"] } }),
    );
    let problems = check_delivery_grants(&extra);
    assert!(
        problems.len() == 1 && problems[0].contains("grants dynamodb:getitem"),
        "{problems:?}"
    );

    let mut short = template();
    short.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Policies"][0]["Statement"]
        .as_array_mut()
        .expect("inline statements")
        .retain(|s| s["Action"] != "dynamodb:UpdateItem");
    let problems = check_delivery_grants(&short);
    assert!(
        problems.len() == 1 && problems[0].contains("does not grant dynamodb:updateitem"),
        "{problems:?}"
    );

    let mut wide = template();
    wide.doc["Resources"]["DeliveryEventsFunction"]["Properties"]["Policies"][0]["Statement"][0]
        ["Resource"] = json!({ "Fn::Sub": "${AdminMessagesTable.Arn}/index/*" });
    let problems = check_delivery_grants(&wide);
    assert!(
        problems.iter().any(|p| p.contains("/index/*"))
            && problems.iter().any(|p| p.contains("does not grant")),
        "{problems:?}"
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
fn a_cors_configuration_that_hides_a_header_the_dashboard_reads_fails_the_check() {
    let mut t = template();
    t.doc["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["ExposeHeaders"] =
        json!(["retry-after"]);
    let problems = check_cors_exposes_headers(&t);
    assert!(
        problems.len() == 2
            && problems.iter().any(|p| p.contains("idempotent-replayed"))
            && problems.iter().any(|p| p.contains("location")),
        "{problems:?}"
    );
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

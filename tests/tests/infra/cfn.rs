//! The CloudFormation reader of the infra checks: the template (YAML with CloudFormation's
//! short-form tags) as JSON, its resources, functions, environments and tables, values rendered
//! to strings (ARNs with fixed pseudo parameters), and the IAM statements each function gets.
//! Every check reads the template through this module only.

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The template checked: `infra/template.yaml`, or the file named by `INFRA_TEMPLATE` (to run
/// every check on another template, for example the one before a change:
/// `INFRA_TEMPLATE=/tmp/old.yaml cargo test -p integration-tests --test infra_plan`).
pub const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The text of the template under test.
pub fn template_text() -> String {
    match std::env::var("INFRA_TEMPLATE") {
        Ok(path) if !path.is_empty() => {
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("INFRA_TEMPLATE={path}: {e}"))
        }
        _ => TEMPLATE.to_owned(),
    }
}

/// The template under test, parsed.
pub fn template() -> Template {
    Template::new(parse(&template_text()))
}

/// The template under test with a YAML resource inserted at the top of `Resources`.
pub fn with_extra_resource(yaml_resource: &str) -> Template {
    let mut text = template_text();
    let at = text.find("\nResources:\n").expect("a Resources section") + "\nResources:\n".len();
    text.insert_str(at, yaml_resource);
    Template::new(parse(&text))
}

pub fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  - {}", problems.join("\n  - "));
}

/// Asserts that `problems` holds one that contains every one of `needles`.
pub fn assert_flags(problems: &[String], needles: &[&str]) {
    assert!(
        problems.iter().any(|p| needles.iter().all(|n| p.contains(n))),
        "expected a problem containing {needles:?}, got {problems:?}"
    );
}

/// Values used to render ARNs for matching (any fixed values do).
pub const PSEUDO: &[(&str, &str)] = &[
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

pub fn parse(yaml: &str) -> Value {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("template is not YAML: {e}"));
    to_json(doc)
}

pub fn to_json(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
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

pub struct Template {
    pub doc: Value,
}

impl Template {
    pub fn new(doc: Value) -> Self {
        Template { doc }
    }

    pub fn resources(&self) -> &Map<String, Value> {
        self.doc["Resources"]
            .as_object()
            .expect("the template has a Resources map")
    }

    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().iter().filter(move |(_, r)| r["Type"] == ty)
    }

    pub fn parameters(&self) -> BTreeSet<String> {
        self.doc["Parameters"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn tables(&self) -> Vec<TableDef> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, r)| TableDef::from_resource(id, r))
            .collect()
    }

    pub fn functions(&self) -> Vec<(&String, &Value)> {
        self.of_type("AWS::Serverless::Function").collect()
    }

    /// The cargo bin a function is built from (Metadata.BuildProperties.Binary).
    pub fn binary_of(&self, function: &Value) -> Option<String> {
        function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .map(str::to_owned)
    }

    pub fn function_by_binary(&self, bin: &str) -> Option<(&String, &Value)> {
        self.functions()
            .into_iter()
            .find(|(_, f)| self.binary_of(f).as_deref() == Some(bin))
    }

    /// Globals.Function.Environment.Variables merged with the function's own (SAM merges maps).
    pub fn environment_of(&self, function: &Value) -> Map<String, Value> {
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
    pub fn function_property<'a>(&'a self, function: &'a Value, name: &str) -> &'a Value {
        let own = &function["Properties"][name];
        if own.is_null() {
            &self.doc["Globals"]["Function"][name]
        } else {
            own
        }
    }

    pub fn table_env_var(&self, env_var: &str) -> Option<TableDef> {
        self.tables().into_iter().find(|t| t.env_var == env_var)
    }

    /// Renders a value to a string with pseudo parameters and table ARNs filled in; anything
    /// that cannot be resolved statically becomes `*` (so it matches conservatively).
    pub fn render(&self, v: &Value) -> String {
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

    pub fn render_ref(&self, name: &str) -> String {
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

    pub fn render_getatt(&self, res: &str, attr: &str) -> String {
        match self.resources().get(res) {
            Some(r) if r["Type"] == "AWS::DynamoDB::Table" && attr == "Arn" => {
                table_arn(&TableDef::from_resource(res, r).physical_name)
            }
            Some(_) => format!("getatt-{res}-{attr}"),
            None => "*".to_owned(),
        }
    }

    pub fn render_sub(&self, text: &str, vars: Option<&Value>) -> String {
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

pub fn getatt_parts(arg: &Value) -> (String, String) {
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

pub fn table_arn(physical_name: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:123456789012:table/{physical_name}")
}

/// `FollowedCompaniesTable` -> `FOLLOWED_COMPANIES_TABLE`.
pub fn env_var_for(logical_id: &str) -> String {
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
pub struct Gsi {
    pub name: String,
    pub key: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub logical_id: String,
    pub env_var: String,
    pub physical_name: String,
    pub key: Vec<String>,
    pub gsis: Vec<Gsi>,
}

/// Key attribute names, partition (HASH) key first.
pub fn key_schema(v: &Value) -> Vec<String> {
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
    pub fn from_resource(logical_id: &str, r: &Value) -> Self {
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
}

/// A policy statement, with where it came from.
pub struct Statement<'a> {
    pub origin: String,
    pub body: &'a Value,
}

pub fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// Flattens `Fn::If` into both branches.
pub fn alternatives(v: &Value) -> Vec<&Value> {
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

pub fn statements_of_document<'a>(origin: &str, doc: &'a Value, out: &mut Vec<Statement<'a>>) {
    for s in alternatives(&doc["Statement"]) {
        out.push(Statement {
            origin: origin.to_owned(),
            body: s,
        });
    }
}

/// Case-insensitive glob with `*` and `?` (IAM's wildcards).
pub fn glob(pattern: &str, text: &str) -> bool {
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

/// The function's grants: inline statements (its Policies, or its own template role), the SAM
/// policy templates it uses (name, arguments) and the managed policies it attaches.
pub struct Grants<'a> {
    pub statements: Vec<Statement<'a>>,
    pub templates: Vec<(&'a String, &'a Value)>,
    pub managed: Vec<String>,
}

pub fn grants_of<'a>(t: &'a Template, id: &str, f: &'a Value) -> Grants<'a> {
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
pub const DYNAMODB_ACTIONS: &[&str] = &[
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
pub fn dynamodb_action_patterns(t: &Template, s: &Value) -> Vec<String> {
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
pub fn statement_covers(t: &Template, s: &Value, arn: &str) -> bool {
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
pub fn table_arns(table: &TableDef) -> Vec<String> {
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

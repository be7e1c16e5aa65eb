//! Reading this repository's YAML documents (`infra/template.yaml`, `docs/openapi.yaml`), with
//! CloudFormation short tags (`!Sub`, `!Ref`, `!GetAtt`, ...) looked through where a plain
//! value is needed.
//!
//! `shared/http-api/tests/openapi.rs` includes this file as a module of its own (`#[path]`):
//! it needs nothing but `serde_yaml_ng`, and every crate under `shared/` finds the repository
//! root at `../..` from its manifest.

use serde_yaml_ng::Value;
use std::path::PathBuf;

/// A file of this repository, by its path from the root.
pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// The parsed YAML file at `rel` from the repository root.
pub fn load(rel: &str) -> Value {
    let path = repo_file(rel);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// A tagged value (`!Sub "..."`) seen as the value it wraps.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// The value at `key` of a mapping, tags looked through.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    untag(v).as_mapping().and_then(|m| m.get(key)).map(untag)
}

/// The string at `key` of a mapping.
pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// The items of the sequence at `key` (none when there is none).
pub fn seq<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    get(v, key)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().map(untag).collect())
        .unwrap_or_default()
}

/// The (string key, value) entries of a mapping (none when it is not one).
pub fn entries(v: &Value) -> Vec<(String, &Value)> {
    untag(v)
        .as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), untag(v))))
                .collect()
        })
        .unwrap_or_default()
}

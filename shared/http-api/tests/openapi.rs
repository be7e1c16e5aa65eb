//! `docs/openapi.yaml` against the code and the infrastructure: the routes of
//! `infra/template.yaml`, the problem codes of this crate (with their statuses), the request
//! bodies the handlers accept, and the headers they send.
//!
//! The document is also checked by a real validator: `.venv/bin/openapi-spec-validator
//! docs/openapi.yaml` (run by the test command).

// The repository's YAML reader, shared with `test-support` (which this crate does not
// depend on): the file, short tags looked through, mapping and sequence access.
#[path = "../../test-support/src/yaml.rs"]
mod yaml;

use http_api::{code, ALL_CODES};
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use yaml::{entries, get, load, seq, str_at};

fn doc() -> Value {
    load("docs/openapi.yaml")
}

/// Follows a local `$ref` (`#/components/...`), repeatedly.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let Some(reference) = str_at(v, "$ref") else {
        return v;
    };
    let pointer = reference
        .strip_prefix("#/")
        .unwrap_or_else(|| panic!("only local references are used: {reference}"));
    let target = pointer.split('/').fold(doc, |at, part| {
        get(at, part).unwrap_or_else(|| panic!("{reference} does not resolve"))
    });
    resolve(doc, target)
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// (METHOD, path, operation) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = get(doc, "paths").expect("paths");
    let mut out = Vec::new();
    for (path, item) in entries(paths) {
        for (method, op) in entries(item) {
            if METHODS.contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

/// (status, response) of one operation, references resolved.
fn responses<'a>(doc: &'a Value, op: &'a Value) -> Vec<(String, &'a Value)> {
    entries(get(op, "responses").expect("responses"))
        .into_iter()
        .map(|(status, r)| (status, resolve(doc, r)))
        .collect()
}

/// The `code` enum of a problem response's schema (`allOf: [Problem, {properties: {code:
/// {enum}}}]`), or `None` when the schema does not narrow the code.
fn narrowed_codes(doc: &Value, response: &Value) -> Option<Vec<String>> {
    let schema = get(response, "content")
        .and_then(|c| get(c, "application/problem+json"))
        .and_then(|m| get(m, "schema"))?;
    let schema = resolve(doc, schema);
    let parts: Vec<&Value> = match get(schema, "allOf").and_then(Value::as_sequence) {
        Some(parts) => parts.iter().map(|p| resolve(doc, p)).collect(),
        None => vec![schema],
    };
    parts.iter().find_map(|p| {
        let codes = get(p, "properties")
            .and_then(|props| get(props, "code"))
            .and_then(|c| get(c, "enum"))
            .and_then(Value::as_sequence)?;
        Some(
            codes
                .iter()
                .map(|c| c.as_str().expect("codes are strings").to_owned())
                .collect(),
        )
    })
}

fn has_problem_content(response: &Value) -> bool {
    get(response, "content")
        .and_then(|c| get(c, "application/problem+json"))
        .is_some()
}

fn template_routes() -> BTreeSet<(String, String)> {
    let template = load("infra/template.yaml");
    let mut routes = BTreeSet::new();
    for (_, resource) in entries(get(&template, "Resources").expect("Resources")) {
        if str_at(resource, "Type") != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = get(resource, "Properties").and_then(|p| get(p, "Events")) else {
            continue;
        };
        for (name, event) in entries(events) {
            if str_at(event, "Type") != Some("HttpApi") {
                continue;
            }
            let props = get(event, "Properties").unwrap_or_else(|| panic!("{name}: Properties"));
            let method = str_at(props, "Method").unwrap_or_else(|| panic!("{name}: Method"));
            let path = str_at(props, "Path").unwrap_or_else(|| panic!("{name}: Path"));
            routes.insert((method.to_uppercase(), path.to_owned()));
        }
    }
    routes
}

#[test]
fn the_document_is_yaml_and_openapi_3_1() {
    let doc = doc();
    let version = str_at(&doc, "openapi").expect("an openapi version string");
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert!(str_at(get(&doc, "info").expect("info"), "title").is_some());
    assert!(str_at(get(&doc, "info").expect("info"), "version").is_some());
}

#[test]
fn every_route_of_the_template_is_documented_and_nothing_else() {
    let in_template = template_routes();
    assert!(
        in_template.len() >= 6,
        "the template's HttpApi routes: {in_template:?}"
    );
    let doc = doc();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let missing: Vec<_> = in_template.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&in_template).collect();
    assert!(
        missing.is_empty(),
        "routes of infra/template.yaml missing from the document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes that infra/template.yaml does not have: {extra:?}"
    );
}

#[test]
fn the_code_vocabulary_is_exactly_the_crates() {
    let doc = doc();
    let schema = get(&doc, "components")
        .and_then(|c| get(c, "schemas"))
        .and_then(|s| get(s, "ProblemCode"))
        .expect("components.schemas.ProblemCode");
    let documented: BTreeSet<&str> = get(schema, "enum")
        .and_then(Value::as_sequence)
        .expect("ProblemCode.enum")
        .iter()
        .map(|c| c.as_str().expect("a string"))
        .collect();
    let produced: BTreeSet<&str> = ALL_CODES.iter().copied().collect();
    let missing: Vec<_> = produced.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&produced).collect();
    assert!(
        missing.is_empty(),
        "codes the crate produces that ProblemCode lacks: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "ProblemCode lists codes the crate never produces: {extra:?}"
    );
}

#[test]
fn every_problem_response_lists_codes_of_its_own_status_and_together_they_cover_every_code() {
    let doc = doc();
    let mut used = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        for (status, response) in responses(&doc, op) {
            let at = format!("{method} {path} {status}");
            if status == "default" {
                assert!(has_problem_content(response), "{at}: a problem document");
                continue;
            }
            let status: u16 = status.parse().unwrap_or_else(|_| panic!("{at}: a status"));
            if status < 400 {
                assert!(!has_problem_content(response), "{at}: success is not a problem");
                continue;
            }
            let codes = narrowed_codes(&doc, response)
                .unwrap_or_else(|| panic!("{at}: a problem response lists its codes"));
            assert!(!codes.is_empty(), "{at}: at least one code");
            for c in codes {
                assert_eq!(
                    code::status(&c),
                    Some(status),
                    "{at}: `{c}` is answered with another status (or is no code of the crate)"
                );
                used.insert(c);
            }
        }
    }
    // Only a function invoked directly, past API Gateway's routing, answers these two; they
    // are documented in ProblemCode and the `default` responses.
    for direct_only in [code::METHOD_NOT_ALLOWED, code::NOT_FOUND] {
        assert!(
            !used.contains(direct_only),
            "{direct_only} is not a routed answer"
        );
        used.insert(direct_only.to_owned());
    }
    let all: BTreeSet<String> = ALL_CODES.iter().map(|c| c.to_string()).collect();
    let unused: Vec<_> = all.difference(&used).collect();
    assert!(unused.is_empty(), "codes no operation documents: {unused:?}");
}

#[test]
fn the_design_codes_are_documented_on_their_routes() {
    let doc = doc();
    let codes_of = |method: &str, path: &str| -> BTreeSet<String> {
        let (_, _, op) = operations(&doc)
            .into_iter()
            .find(|(m, p, _)| m == method && p == path)
            .unwrap_or_else(|| panic!("{method} {path} is documented"));
        responses(&doc, op)
            .into_iter()
            .filter_map(|(_, r)| narrowed_codes(&doc, r))
            .flatten()
            .collect()
    };
    let post = codes_of("POST", "/admin/users/{userId}/messages");
    for c in [
        "invalid_body",
        "subject_invalid",
        "body_invalid",
        "invalid_user_id",
        "unauthenticated",
        "forbidden_role",
        "user_not_found",
        "request_in_progress",
        "user_deleted",
        "payload_too_large",
        "no_email_address",
        "recipient_undeliverable",
        "idempotency_key_reused",
        "rate_limited",
        "mail_rejected",
        "dependency_unavailable",
        "internal_error",
    ] {
        assert!(post.contains(c), "POST messages documents {c}");
    }
    let delete = codes_of("DELETE", "/admin/users/{userId}");
    for c in [
        "invalid_body",
        "invalid_user_id",
        "unauthenticated",
        "forbidden_role",
        "self_deletion",
        "privileged_target",
        "user_not_found",
        "last_owner",
        "user_deleted",
        "payload_too_large",
        "acknowledgement_required",
        "rate_limited",
        "dependency_unavailable",
        "internal_error",
    ] {
        assert!(delete.contains(c), "DELETE documents {c}");
    }
    for c in [
        "self_deletion",
        "privileged_target",
        "acknowledgement_required",
        "mail_rejected",
        "request_in_progress",
        "idempotency_key_reused",
        "last_owner",
    ] {
        assert!(
            !codes_of("GET", "/admin/users").contains(c),
            "GET /admin/users cannot answer {c}"
        );
    }
}

#[test]
fn every_429_and_503_carries_a_required_retry_after() {
    let doc = doc();
    let mut seen = 0;
    for (method, path, op) in operations(&doc) {
        for (status, response) in responses(&doc, op) {
            if status != "429" && status != "503" {
                continue;
            }
            seen += 1;
            let header = get(response, "headers")
                .and_then(|h| get(h, "Retry-After"))
                .map(|h| resolve(&doc, h))
                .unwrap_or_else(|| panic!("{method} {path} {status}: a Retry-After header"));
            assert_eq!(
                get(header, "required").and_then(Value::as_bool),
                Some(true),
                "{method} {path} {status}"
            );
        }
    }
    assert!(
        seen >= 8,
        "every operation has a 503, the rate-limited ones a 429"
    );
}

#[test]
fn every_operation_requires_the_jwt_bearer_token() {
    let doc = doc();
    let schemes = get(&doc, "components")
        .and_then(|c| get(c, "securitySchemes"))
        .expect("components.securitySchemes");
    let global = get(&doc, "security")
        .and_then(Value::as_sequence)
        .expect("a global security requirement");
    assert!(!global.is_empty());
    for requirement in global {
        for (name, _) in entries(requirement) {
            let scheme = get(schemes, &name).unwrap_or_else(|| panic!("scheme {name} is defined"));
            let ok = match str_at(scheme, "type") {
                Some("http") => {
                    str_at(scheme, "scheme").map(str::to_ascii_lowercase).as_deref() == Some("bearer")
                        && str_at(scheme, "bearerFormat") == Some("JWT")
                }
                Some("openIdConnect") | Some("oauth2") => true,
                other => panic!("{name}: unexpected scheme type {other:?}"),
            };
            assert!(ok, "{name} is a JWT bearer scheme");
        }
    }
    for (method, path, op) in operations(&doc) {
        if let Some(security) = get(op, "security").and_then(Value::as_sequence) {
            assert!(
                !security.is_empty() && security.iter().all(|r| !entries(r).is_empty()),
                "{method} {path} must not opt out of authentication"
            );
        }
    }
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    get(doc, "components")
        .and_then(|c| get(c, "schemas"))
        .and_then(|s| get(s, name))
        .unwrap_or_else(|| panic!("components.schemas.{name}"))
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    entries(get(schema, "properties").expect("properties"))
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn request_bodies_are_strict_and_bounded_like_the_handlers() {
    let doc = doc();
    let send = schema(&doc, "SendMessageRequest");
    assert_eq!(
        get(send, "additionalProperties").and_then(Value::as_bool),
        Some(false)
    );
    assert_eq!(
        property_names(send),
        ["subject", "body", "send_anyway"].map(String::from).into()
    );
    let prop = |s: &'_ Value, p: &str, k: &str| {
        get(s, "properties")
            .and_then(|ps| get(ps, p))
            .and_then(|x| get(x, k))
            .and_then(Value::as_u64)
    };
    // The subject's bound is after trimming, so it lives in its pattern, not in maxLength.
    let pattern = |s: &'_ Value, p: &str| {
        get(s, "properties")
            .and_then(|ps| get(ps, p))
            .and_then(|x| str_at(x, "pattern"))
            .map(str::to_owned)
    };
    assert!(
        pattern(send, "subject").is_some_and(|p| p.contains("{0,198}")),
        "the subject's pattern bounds it to 200 characters after trimming"
    );
    assert!(
        pattern(send, "body").is_some(),
        "the body's pattern refuses control characters"
    );
    assert_eq!(prop(send, "body", "maxLength"), Some(10_000));
    assert_eq!(prop(send, "body", "minLength"), Some(1));

    let delete = schema(&doc, "DeleteUserRequest");
    assert_eq!(
        get(delete, "additionalProperties").and_then(Value::as_bool),
        Some(false)
    );
    assert_eq!(
        property_names(delete),
        ["acknowledge_privileged"].map(String::from).into()
    );
}

#[test]
fn the_send_operation_documents_the_idempotency_headers() {
    let doc = doc();
    let (_, _, post) = operations(&doc)
        .into_iter()
        .find(|(m, p, _)| m == "POST" && p == "/admin/users/{userId}/messages")
        .expect("POST messages");
    let params: Vec<&Value> = get(post, "parameters")
        .and_then(Value::as_sequence)
        .expect("parameters")
        .iter()
        .map(|p| resolve(&doc, p))
        .collect();
    let key = params
        .iter()
        .find(|p| str_at(p, "name") == Some("Idempotency-Key"))
        .expect("the Idempotency-Key parameter");
    assert_eq!(str_at(key, "in"), Some("header"));
    let created = responses(&doc, post)
        .into_iter()
        .find(|(s, _)| s == "201")
        .map(|(_, r)| r)
        .expect("201");
    assert!(
        get(created, "headers")
            .and_then(|h| get(h, "Idempotent-Replayed"))
            .is_some(),
        "201 documents Idempotent-Replayed"
    );
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = doc();
    for (path, item) in entries(get(&doc, "paths").expect("paths")) {
        let declared: BTreeSet<String> = seq(item, "parameters")
            .into_iter()
            .map(|p| resolve(&doc, p))
            .filter(|p| str_at(p, "in") == Some("path"))
            .filter_map(|p| str_at(p, "name").map(str::to_owned))
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{path}");
    }
}

//! The HTTP API: every admin route exists once, served by the right function, behind the
//! Cognito JWT authorizer with a required scope; CORS exposes the headers the dashboard reads;
//! every function is built from its own crate with cargo-lambda.

use super::cfn::{as_list, assert_clean, template, Template};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The HTTP API (the admin routes, plus the read routes of the Users tab) and the function
/// (cargo bin) that serves each route.
const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/admin/users/{userId}/messages", "message-user"),
    ("GET", "/admin/users/{userId}/messages", "message-user"),
    ("DELETE", "/admin/users/{userId}", "delete-user"),
    ("GET", "/admin/users/{userId}/deletion", "delete-user"),
    ("GET", "/admin/users/{userId}/deletion-preview", "delete-user"),
    ("GET", "/admin/users", "list-users"),
    ("GET", "/admin/audit", "audit-log"),
    ("GET", "/admin/erasures", "audit-log"),
];

/// The functions that serve no route: the queue worker, the SES events subscriber, the sweep.
const NON_HTTP_BINS: &[&str] = &[
    "deletion-worker",
    "delivery-events",
    "sweeper",
    "token-revocation",
];

/// (method, path)
type Route = (String, String);
/// (function logical id, cargo bin)
type Owner = (String, Option<String>);

/// (f) Every route exists once, served by the right function, attached to an HTTP API whose
/// authorizer is a Cognito JWT authorizer, with at least one required scope. Any other HttpApi
/// route must be protected the same way.
pub fn check_routes(t: &Template) -> Vec<String> {
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

/// Response headers the dashboard reads from a browser: Retry-After (429/503),
/// Idempotent-Replayed (a replayed send), Location (the status URL of a 202 delete).
const EXPOSED_HEADERS: &[&str] = &["retry-after", "idempotent-replayed", "location"];

/// (k) The HTTP API's CORS configuration exposes every header the dashboard reads.
pub fn check_cors_exposes_headers(t: &Template) -> Vec<String> {
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

#[test]
fn every_admin_route_is_behind_the_jwt_authorizer_with_a_required_scope() {
    assert_clean("routes", check_routes(&template()));
}

#[test]
fn the_dashboard_can_read_every_response_header_it_needs_across_origins() {
    assert_clean("CORS", check_cors_exposes_headers(&template()));
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
        .chain(NON_HTTP_BINS.iter().map(|b| (*b).to_owned()))
        .collect();
    assert_eq!(bins, expected);
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

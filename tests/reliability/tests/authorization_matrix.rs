//! The authorization matrix through the real handlers: every caller kind x action x target x
//! acknowledgement, one freshly seeded in-memory backend per cell, checked against the table
//! in `authorization_matrix.txt` (written from the product's rules, not from the policy
//! crate). A second test covers the last active owner, which needs a world of its own.

use domain::cascade::CASCADE_PLAN;
use domain::memory::{InMemoryBackend, State};
use domain::model::{EventType, MessageStatus};
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const TABLE: &str = include_str!("authorization_matrix.txt");

const CALLERS: &[&str] = &[
    "no-claims",
    "unknown-sub",
    "tombstoned",
    "deleting",
    "user",
    "admin",
    "owner",
    "unknown-role",
];
const ACTIONS: &[&str] = &["send", "delete", "history", "status"];
const TARGETS: &[&str] = &[
    "self",
    "user",
    "admin",
    "owner",
    "tombstoned",
    "deleting",
    "missing",
];
const ACKS: &[&str] = &["absent", "false", "true"];

const SUBJECT: &str = "Quarterly account review";
const BODY: &str = "Please confirm your billing address by Friday";

/// Seeded profiles: (id, role, email); tombstones have no email.
const PEOPLE: &[(&str, &str, Option<&str>)] = &[
    ("admin-1", "admin", Some("ada.admin@matrix-example.com")),
    ("owner-1", "owner", Some("olga.owner@matrix-example.com")),
    ("user-1", "user", Some("uma.user@matrix-example.com")),
    ("odd-1", "superadmin", Some("odd.role@matrix-example.com")),
    ("target-user", "user", Some("Tara.Target@Matrix-Example.com")),
    ("target-admin", "admin", Some("tim.admin@matrix-example.com")),
    ("target-owner", "owner", Some("tess.owner@matrix-example.com")),
];
/// Tombstones (a deleted former admin as a caller, a deleted user as a target).
const TOMBSTONES: &[(&str, &str)] = &[("former-1", "admin"), ("target-gone", "user")];
/// Deletions just created, not run yet (an admin as a caller, a user as a target): the
/// profile is marked with the job and still holds its email.
const LEAVING: &[(&str, &str, &str)] = &[
    ("leaving-admin", "admin", "lea.leaving@matrix-example.com"),
    ("target-leaving", "user", "tom.leaving@matrix-example.com"),
];

fn caller_id(kind: &str) -> Option<&'static str> {
    match kind {
        "no-claims" => None,
        "unknown-sub" => Some("ghost-1"),
        "tombstoned" => Some("former-1"),
        "deleting" => Some("leaving-admin"),
        "user" => Some("user-1"),
        "admin" => Some("admin-1"),
        "owner" => Some("owner-1"),
        "unknown-role" => Some("odd-1"),
        other => panic!("unknown caller kind {other}"),
    }
}

fn target_id(kind: &str, caller: Option<&'static str>) -> &'static str {
    match kind {
        "self" => caller.unwrap_or("ghost-1"),
        "user" => "target-user",
        "admin" => "target-admin",
        "owner" => "target-owner",
        "tombstoned" => "target-gone",
        "deleting" => "target-leaving",
        "missing" => "target-missing",
        other => panic!("unknown target kind {other}"),
    }
}

/// The audit row's `action` for each action of the table.
fn audit_action(action: &str) -> &'static str {
    match action {
        "send" => "send_message",
        "delete" => "delete_user",
        "history" => "view_messages",
        "status" => "view_deletion",
        other => panic!("unknown action {other}"),
    }
}

/// The address a mail to `id` goes to: as stored, trimmed (the case is kept).
fn email_of(id: &str) -> Option<String> {
    PEOPLE
        .iter()
        .find(|(p, _, _)| *p == id)
        .and_then(|(_, _, e)| e.map(|e| e.trim().to_owned()))
}

fn seeded() -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    for (id, role, email) in PEOPLE {
        b.put_profile(world::profile(id, role, *email));
        b.put_auth_user(id);
    }
    for (id, role) in TOMBSTONES {
        b.put_profile(world::tombstone(id, role));
        b.state()
            .jobs
            .insert((*id).to_owned(), world::completed_job(id, role));
    }
    for (id, role, email) in LEAVING {
        let mut p = world::profile(id, role, Some(email));
        p.deletion_job_id = Some(format!("job-{id}"));
        b.put_profile(p);
        b.put_auth_user(id);
        b.state()
            .jobs
            .insert((*id).to_owned(), world::new_job(id, role, "owner-1"));
    }
    world::put_user_data(&b, "target-leaving", 2);
    world::put_user_data(&b, "target-user", 2);
    world::put_user_data(&b, "target-admin", 1);
    world::put_user_data(&b, "user-1", 1);
    b
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    line: usize,
    columns: [Vec<String>; 4],
    status: u16,
    code: Option<String>,
    effect: String,
}

impl Row {
    fn matches(&self, cell: [&str; 4]) -> bool {
        self.columns
            .iter()
            .zip(cell)
            .all(|(col, v)| col.iter().any(|c| c == "*" || c == v))
    }
}

fn parse_table() -> Vec<Row> {
    let vocab: [&[&str]; 4] = [CALLERS, ACTIONS, TARGETS, ACKS];
    let mut rows = Vec::new();
    for (i, raw) in TABLE.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts.len(), 7, "line {}: 7 columns expected: {line}", i + 1);
        let columns: [Vec<String>; 4] = std::array::from_fn(|c| {
            let values: Vec<String> = parts[c].split(',').map(str::to_owned).collect();
            for v in &values {
                assert!(
                    v == "*" || vocab[c].contains(&v.as_str()),
                    "line {}: {v:?} is not a known value of column {}",
                    i + 1,
                    c + 1
                );
            }
            values
        });
        let status: u16 = parts[4]
            .parse()
            .unwrap_or_else(|_| panic!("line {}: bad status", i + 1));
        let code = (parts[5] != "-").then(|| parts[5].to_owned());
        let effect = parts[6].to_owned();
        assert!(
            ["audited", "unaudited", "read", "mailed", "erased"].contains(&effect.as_str()),
            "line {}: unknown effect {effect}",
            i + 1
        );
        rows.push(Row {
            line: i + 1,
            columns,
            status,
            code,
            effect,
        });
    }
    rows
}

fn event(
    action: &str, ack: &str, caller: Option<&str>, target: &str,
) -> (Function, http_api::event::ApiEvent) {
    let ack_value = match ack {
        "absent" => None,
        "false" => Some(false),
        "true" => Some(true),
        other => panic!("unknown ack {other}"),
    };
    let with_ack = |e: http_api::event::ApiEvent| match ack_value {
        None => e,
        Some(v) => e.json(&json!({ "acknowledge_privileged": v })),
    };
    match action {
        "send" => {
            let mut body = json!({ "subject": SUBJECT, "body": BODY });
            if let Some(v) = ack_value {
                body["acknowledge_privileged"] = json!(v);
            }
            (Function::MessageUser, world::send(caller, target).json(&body))
        }
        "delete" => (Function::DeleteUser, with_ack(world::delete(caller, target))),
        "history" => (Function::MessageUser, with_ack(world::history(caller, target))),
        "status" => (
            Function::DeleteUser,
            with_ack(world::deletion_status(caller, target)),
        ),
        other => panic!("unknown action {other}"),
    }
}

/// Checks what a cell's call did to the backend.
fn check_effect(
    effect: &str, action: &str, code: Option<&str>, caller: Option<&str>, target: &str, before: &State,
    after: &State,
) -> Result<(), String> {
    let changed = world::differences(before, after);
    let events = world::new_events(before, after);
    match effect {
        "audited" => {
            if !changed.is_empty() {
                return Err(format!("a refusal changed {changed:?}"));
            }
            let [event] = events.as_slice() else {
                return Err(format!(
                    "{} events instead of one admin_action_denied",
                    events.len()
                ));
            };
            let expected_action = audit_action(action);
            let ok = event.event_type == EventType::AdminActionDenied
                && event.fields.get("action").map(String::as_str) == Some(expected_action)
                && event.fields.get("reason").map(String::as_str) == code
                && event.actor_id.as_deref() == caller
                && event.target_id == target;
            if !ok {
                return Err(format!("unexpected audit event {event:?}"));
            }
        }
        "unaudited" | "read" => {
            if !changed.is_empty() || !events.is_empty() {
                return Err(format!("changed {changed:?}, {} new events", events.len()));
            }
        }
        "mailed" => {
            let mails = &after.sent_mail[before.sent_mail.len()..];
            let to = email_of(target).expect("a mailed target has an address");
            let [mail] = mails else {
                return Err(format!("{} mails instead of one", mails.len()));
            };
            if mail.to != to || mail.subject != SUBJECT || mail.body != BODY {
                return Err(format!("unexpected mail to {}", mail.to));
            }
            let rows: Vec<_> = after
                .messages
                .values()
                .filter(|m| !before.messages.contains_key(&m.message_id))
                .collect();
            let [row] = rows.as_slice() else {
                return Err(format!("{} new message rows instead of one", rows.len()));
            };
            if row.status != MessageStatus::Sent
                || row.recipient_id != target
                || row.message_id != mail.message_id
            {
                return Err(format!("unexpected message row {row:?}"));
            }
            let sent: Vec<_> = events
                .iter()
                .filter(|e| e.event_type == EventType::AdminSentUserMessage)
                .collect();
            if sent.len() != 1 || events.len() != 1 {
                return Err(format!("events {events:?}"));
            }
            for (name, same) in [
                ("profiles", before.profiles == after.profiles),
                ("deletion_jobs", before.jobs == after.jobs),
                ("user data", before.tables == after.tables),
                ("cognito", before.auth_users == after.auth_users),
            ] {
                if !same {
                    return Err(format!("a send changed {name}"));
                }
            }
        }
        "erased" => {
            let job = after.jobs.get(target).ok_or("no deletion job")?;
            if !job.is_completed() {
                return Err(format!("job not completed: {job:?}"));
            }
            let p = after.profiles.get(target).ok_or("the profile row is gone")?;
            if !p.is_tombstone() || p.email.is_some() || p.display_name != "Deleted User" {
                return Err(format!("not a tombstone: {p:?}"));
            }
            if after.auth_users.contains_key(target) {
                return Err("the Cognito user is still there".into());
            }
            let left: usize = CASCADE_PLAN
                .iter()
                .map(|t| {
                    if t.name == "admin_messages" {
                        after
                            .messages
                            .values()
                            .filter(|m| m.recipient_id == target)
                            .count()
                    } else {
                        after.tables.get(t.name).map_or(0, |rows| {
                            rows.values().filter(|i| i.values().any(|v| v == target)).count()
                        })
                    }
                })
                .sum();
            if left > 0 {
                return Err(format!("{left} items of the user are left"));
            }
            let deleted: Vec<_> = events
                .iter()
                .filter(|e| e.event_type == EventType::AdminDeletedUser)
                .collect();
            if deleted.len() != 1 {
                return Err(format!("{} admin_deleted_user events", deleted.len()));
            }
            if events
                .iter()
                .any(|e| e.event_type == EventType::AdminActionDenied)
            {
                return Err("an allowed deletion wrote admin_action_denied".into());
            }
            if after.sent_mail.len() != before.sent_mail.len() {
                return Err("a deletion sent mail".into());
            }
        }
        other => return Err(format!("unknown effect {other}")),
    }
    Ok(())
}

/// Checks the body of a success.
fn check_success(action: &str, target: &str, answer: &Answer) -> Result<(), String> {
    let doc = answer.json();
    let ok = match action {
        "send" => doc["status"] == "sent" && doc["message_id"].is_string() && doc["sent_at"].is_string(),
        "delete" => doc["status"] == "completed" && doc["job_id"].is_string() && doc["deleted"].is_object(),
        "history" => doc["items"].is_array(),
        "status" => {
            let expected = match target {
                "target-gone" => "completed",
                "target-leaving" => "in_progress",
                _ => "not_started",
            };
            doc["status"] == expected && doc["user_id"] == target
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected success body {doc}"))
    }
}

#[tokio::test]
async fn every_caller_action_target_and_acknowledgement_gets_the_documented_answer_and_effect() {
    logs::capture();
    let mut secrets: Vec<String> = PEOPLE
        .iter()
        .filter_map(|(_, _, e)| e.map(str::to_owned))
        .collect();
    secrets.extend(LEAVING.iter().map(|(_, _, e)| (*e).to_owned()));
    secrets.extend([SUBJECT.to_owned(), BODY.to_owned()]);
    logs::forbid(&secrets);

    let rows = parse_table();
    let mut row_hits = vec![0usize; rows.len()];
    let mut failures = Vec::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut cells = 0;

    for caller_kind in CALLERS {
        for action in ACTIONS {
            for target_kind in TARGETS {
                for ack in ACKS {
                    cells += 1;
                    let cell = [*caller_kind, *action, *target_kind, *ack];
                    let matching: Vec<usize> = rows
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.matches(cell))
                        .map(|(i, _)| i)
                        .collect();
                    let [index] = matching.as_slice() else {
                        failures.push(format!(
                            "{cell:?}: matches {} rows of the table (lines {:?}); exactly one expected",
                            matching.len(),
                            matching.iter().map(|i| rows[*i].line).collect::<Vec<_>>()
                        ));
                        continue;
                    };
                    row_hits[*index] += 1;
                    let row = &rows[*index];

                    let b = seeded();
                    let apps = Apps::in_memory(&b);
                    let caller = caller_id(caller_kind);
                    let target = target_id(target_kind, caller);
                    let (function, ev) = event(action, ack, caller, target);
                    let before = b.snapshot();
                    let answer = apps.call(function, ev).await;
                    let after = b.snapshot();
                    *tally.entry(answer.summary()).or_default() += 1;

                    let expected = match &row.code {
                        Some(code) => format!("{} {code}", row.status),
                        None => row.status.to_string(),
                    };
                    if answer.summary() != expected {
                        failures.push(format!(
                            "{cell:?} (line {}): expected {expected}, got {}: {}",
                            row.line,
                            answer.summary(),
                            answer.body
                        ));
                        continue;
                    }
                    answer.assert_well_formed();
                    if row.code.is_none() {
                        if let Err(e) = check_success(action, target, &answer) {
                            failures.push(format!("{cell:?} (line {}): {e}", row.line));
                            continue;
                        }
                    }
                    if let Err(e) = check_effect(
                        &row.effect,
                        action,
                        row.code.as_deref(),
                        caller,
                        target,
                        &before,
                        &after,
                    ) {
                        failures.push(format!("{cell:?} (line {}) [{}]: {e}", row.line, row.effect));
                    }
                }
            }
        }
    }

    for (row, hits) in rows.iter().zip(&row_hits) {
        if *hits == 0 {
            failures.push(format!("line {} of the table matches no cell", row.line));
        }
    }
    println!(
        "authorization matrix: {cells} cells, {} table rows; answers: {tally:?}",
        rows.len()
    );
    assert_eq!(cells, CALLERS.len() * ACTIONS.len() * TARGETS.len() * ACKS.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells disagree with authorization_matrix.txt:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let lines = logs::assert_clean();
    assert!(
        lines > 0,
        "the handlers logged nothing at all: is the capture installed?"
    );
}

/// The last active owner: a world of its own (the matrix always has an owner caller).
#[tokio::test]
async fn the_last_active_owner_cannot_be_deleted_and_the_refusal_changes_nothing() {
    logs::capture();
    logs::forbid(["solo.owner@matrix-example.com", "second.owner@matrix-example.com"]);
    let world_with = |second_owner: Option<bool>| {
        let b = InMemoryBackend::new();
        b.put_profile(world::profile(
            "solo-owner",
            "owner",
            Some("solo.owner@matrix-example.com"),
        ));
        b.put_profile(world::profile(
            "admin-1",
            "admin",
            Some("ada.admin@matrix-example.com"),
        ));
        match second_owner {
            None => {}
            // Another owner, active.
            Some(false) => b.put_profile(world::profile(
                "owner-2",
                "owner",
                Some("second.owner@matrix-example.com"),
            )),
            // Another owner whose deletion job has just been created: not active any more.
            Some(true) => {
                let mut p = world::profile("owner-2", "owner", Some("second.owner@matrix-example.com"));
                p.deletion_job_id = Some("job-owner-2".into());
                b.put_profile(p);
                b.state()
                    .jobs
                    .insert("owner-2".into(), world::new_job("owner-2", "owner", "solo-owner"));
            }
        }
        for id in ["solo-owner", "admin-1", "owner-2"] {
            b.put_auth_user(id);
        }
        b
    };
    // (world, caller, target, ack, expected answer)
    let cases: &[(Option<bool>, &str, &str, bool, &str)] = &[
        // The only owner, whoever asks and however: refused before anything else is decided
        // (the admin would also be refused for the role).
        (None, "admin-1", "solo-owner", true, "409 last_owner"),
        (None, "admin-1", "solo-owner", false, "409 last_owner"),
        // The only other owner is being deleted: this one is the last active owner now.
        (Some(true), "admin-1", "solo-owner", true, "409 last_owner"),
        // ... and the owner being deleted has no rights left at all.
        (Some(true), "owner-2", "solo-owner", true, "401 unauthenticated"),
        // With another active owner, the usual rules apply.
        (
            Some(false),
            "admin-1",
            "solo-owner",
            true,
            "403 privileged_target",
        ),
        (Some(false), "owner-2", "solo-owner", true, "200"),
    ];
    for (second, caller, target, ack, expected) in cases {
        let b = world_with(*second);
        let apps = Apps::in_memory(&b);
        let before = b.snapshot();
        let event = world::delete(Some(caller), target).json(&json!({ "acknowledge_privileged": ack }));
        let answer = apps.call(Function::DeleteUser, event).await;
        let after = b.snapshot();
        let what = format!("{caller} deletes {target} (second owner {second:?}, ack {ack})");
        assert_eq!(answer.summary(), *expected, "{what}: {}", answer.body);
        answer.assert_well_formed();
        if answer.status >= 400 {
            assert!(
                world::differences(&before, &after).is_empty(),
                "{what}: a refusal changed {:?}",
                world::differences(&before, &after)
            );
            let events = world::new_events(&before, &after);
            assert_eq!(events.len(), 1, "{what}: one admin_action_denied");
            assert_eq!(events[0].event_type, EventType::AdminActionDenied, "{what}");
            assert_eq!(
                events[0].fields.get("reason").map(String::as_str),
                answer.code(),
                "{what}"
            );
        } else {
            assert!(after.jobs["solo-owner"].is_completed(), "{what}");
        }
    }
    println!("last owner: {} cases", cases.len());
    logs::assert_clean();
}

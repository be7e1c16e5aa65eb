//! Privacy against the emulator, after real flows through the real handlers: what is left of
//! a deleted user in EVERY table of the template, what `security_logs` holds, and what the
//! logs said. Needs the emulator: run with `scripts/test.sh`.

use reliability_tests::cloud::{all_strings, str_attr, Cloud, Item};
use reliability_tests::world::{self, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use test_support::cognito;

/// The tables that may keep a deleted user's id, and why (the tombstone, the erasure
/// receipt and the append-only audit log: `domain::cascade::KEPT_TABLES`).
const MAY_HOLD_THE_ID: &[&str] = &["PROFILES_TABLE", "DELETION_JOBS_TABLE", "SECURITY_LOGS_TABLE"];

struct Person {
    id: String,
    email: String,
    name: String,
}

fn person(prefix: &str) -> Person {
    let id = test_support::unique(&format!("{prefix}-"));
    Person {
        email: format!("  {}.Private+tag@Privacy-Example.com ", id.to_uppercase()),
        name: format!("Priya Privacyperson {}", &id[id.len() - 6..]),
        id,
    }
}

impl Person {
    fn normal_email(&self) -> String {
        self.email.trim().to_lowercase()
    }
}

async fn add(cloud: &Cloud, p: &Person, role: &str) {
    let mut profile = world::profile(&p.id, role, Some(&p.email));
    profile.display_name = p.name.clone();
    profile.auth_username = Some(p.id.clone());
    cloud.put_profile(&profile).await;
    cognito::create_user(&cloud.emulator, &cloud.pool, &p.id, None).await;
    logs::forbid([p.normal_email(), p.name.clone()]);
}

async fn send(
    cloud: &Cloud, apps: &world::Apps, from: &str, to: &str, subject: &str, body: &str, key: Option<&str>,
) -> Answer {
    logs::forbid([subject, body]);
    let mut event = world::send(Some(from), to).json(&json!({ "subject": subject, "body": body }));
    if let Some(k) = key {
        event = event.header("idempotency-key", k);
    }
    let answer = apps.call(Function::MessageUser, event).await;
    answer.assert_success(201);
    assert!(!cloud.emails_to(&to_address(cloud, to).await).await.is_empty());
    answer
}

/// The address a mail to `id` goes to: as stored, trimmed (the case is kept).
async fn to_address(cloud: &Cloud, id: &str) -> String {
    let row = cloud.profile_row(id).await.expect("a profile");
    str_attr(&row, "email").unwrap_or_default().trim().to_owned()
}

async fn delete(cloud: &Cloud, apps: &world::Apps, by: &str, target: &str, ack: bool) {
    let event = world::delete(Some(by), target).json(&json!({ "acknowledge_privileged": ack }));
    let answer = apps.call(Function::DeleteUser, event).await;
    answer.assert_well_formed();
    assert!(matches!(answer.status, 200 | 202), "{}", answer.body);
    if answer.status == 202 {
        cloud.finish_deletion(&apps.worker, target).await;
    }
    let status = apps
        .call(Function::DeleteUser, world::deletion_status(Some(by), target))
        .await;
    assert_eq!(status.assert_success(200)["status"], "completed");
}

/// Every row of every table, with the strings it holds.
async fn every_row(cloud: &Cloud) -> Vec<(String, Item, Vec<String>)> {
    cloud
        .scan_all()
        .await
        .into_iter()
        .map(|(table, item)| {
            let strings = all_strings(&item);
            (table, item, strings)
        })
        .collect()
}

fn holds(strings: &[String], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    strings.iter().any(|s| s.to_lowercase().contains(&needle))
}

#[tokio::test]
async fn after_a_completed_deletion_only_the_tombstone_the_job_and_security_logs_hold_the_users_id() {
    logs::capture();
    let cloud = Cloud::new().await;
    let apps = cloud.apps();
    let owner = person("owner");
    let target = person("user");
    let bystander = person("other");
    add(&cloud, &owner, "owner").await;
    add(&cloud, &target, "user").await;
    add(&cloud, &bystander, "user").await;
    cloud.seed_user_data(&target.id, 5).await;
    cloud.seed_user_data(&bystander.id, 2).await;

    let subject = format!("About your plan {}", target.id);
    let body = format!("Dear customer, your plan renews soon {}", target.id);
    send(
        &cloud,
        &apps,
        &owner.id,
        &target.id,
        &subject,
        &body,
        Some("privacy-key-1"),
    )
    .await;
    send(
        &cloud,
        &apps,
        &owner.id,
        &target.id,
        "Second note here",
        &body,
        None,
    )
    .await;
    send(
        &cloud,
        &apps,
        &owner.id,
        &bystander.id,
        "Bystander subject",
        "Bystander body text",
        None,
    )
    .await;
    apps.call(Function::MessageUser, world::history(Some(&owner.id), &target.id))
        .await
        .assert_success(200);
    // The target tries an admin action: refused and audited under their id.
    apps.call(Function::ListUsers, world::list(Some(&target.id)))
        .await
        .assert_problem(403, "forbidden_role");

    delete(&cloud, &apps, &owner.id, &target.id, false).await;
    // Was this person erased? The address comes in, is hashed, and is kept nowhere: not in the
    // lookup's audit row, the answer or a log line (every row is checked below).
    let found = apps
        .call(
            Function::AuditLog,
            world::erasures(Some(&owner.id), &target.email.to_uppercase()),
        )
        .await;
    let doc = found.assert_success(200);
    assert_eq!(doc["erasures"].as_array().map(Vec::len), Some(1), "{doc}");
    assert!(
        !found.body.to_lowercase().contains(&target.normal_email()),
        "{doc}"
    );

    let mut holders: Vec<String> = Vec::new();
    for (table, item, strings) in every_row(&cloud).await {
        assert!(
            !holds(&strings, &target.normal_email()),
            "{table} still holds the deleted user's email address: {item:?}"
        );
        assert!(
            !holds(&strings, &target.name),
            "{table} still holds the deleted user's name"
        );
        assert!(
            !holds(&strings, &subject) && !holds(&strings, &body),
            "{table} still holds a message to the user"
        );
        if holds(&strings, &target.id) {
            assert!(
                MAY_HOLD_THE_ID.contains(&table.as_str()),
                "{table} still holds the deleted user's id: {item:?}"
            );
            holders.push(table.clone());
            if table == "PROFILES_TABLE" {
                assert_eq!(str_attr(&item, "user_id"), Some(target.id.as_str()));
                assert_eq!(str_attr(&item, "display_name"), Some("Deleted User"));
                assert!(
                    !item.contains_key("email") && item.contains_key("deleted_at"),
                    "{item:?}"
                );
            }
        }
    }
    holders.sort();
    holders.dedup();
    println!("after the deletion, the id is held by {holders:?} only");
    assert_eq!(
        cognito::user_enabled(&cloud.emulator, &cloud.pool, &target.id).await,
        None
    );
    // The bystander keeps everything.
    assert_eq!(cloud.emails_to(bystander.email.trim()).await.len(), 1);
    assert!(cloud
        .profile_row(&bystander.id)
        .await
        .and_then(|r| r.get("email").cloned())
        .is_some());
    cloud
        .assert_security_logs_clean(&[&subject, &body, "Bystander subject", "Bystander body text"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn a_deleted_admin_who_sent_messages_leaves_only_pseudonymous_references() {
    logs::capture();
    let cloud = Cloud::new().await;
    let apps = cloud.apps();
    let owner = person("owner");
    let admin = person("admin");
    let user = person("user");
    add(&cloud, &owner, "owner").await;
    add(&cloud, &admin, "admin").await;
    add(&cloud, &user, "user").await;
    let body = format!("A message from an admin who leaves {}", admin.id);
    send(
        &cloud,
        &apps,
        &admin.id,
        &user.id,
        "From the admin",
        &body,
        Some("admin-key-1"),
    )
    .await;

    delete(&cloud, &apps, &owner.id, &admin.id, true).await;

    // Besides the tombstone, the job and the audit trail, the id stays only as the sender of
    // messages other users received (their history; the reference points at a tombstone) and
    // in the admin's own idempotency rows, which expire within 24 hours.
    let now = chrono::Utc::now().timestamp();
    let mut holders = Vec::new();
    for (table, item, strings) in every_row(&cloud).await {
        assert!(
            !holds(&strings, &admin.normal_email()),
            "{table} holds the deleted admin's email: {item:?}"
        );
        assert!(
            !holds(&strings, &admin.name),
            "{table} holds the deleted admin's name"
        );
        if !holds(&strings, &admin.id) || MAY_HOLD_THE_ID.contains(&table.as_str()) {
            continue;
        }
        holders.push(table.clone());
        match table.as_str() {
            "ADMIN_MESSAGES_TABLE" => {
                assert_eq!(str_attr(&item, "sender_id"), Some(admin.id.as_str()), "{item:?}");
                assert_eq!(
                    str_attr(&item, "recipient_id"),
                    Some(user.id.as_str()),
                    "{item:?}"
                );
            }
            "IDEMPOTENCY_TABLE" => {
                let expires: i64 = item
                    .get("expires_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("an idempotency row without expires_at: {item:?}"));
                assert!(
                    expires <= now + 24 * 3600 + 60,
                    "an idempotency row outlives 24 h: {item:?}"
                );
            }
            other => panic!("{other} holds the deleted admin's id: {item:?}"),
        }
    }
    holders.sort();
    holders.dedup();
    println!("besides the tombstone, the job and security_logs, the admin's id is in {holders:?}");
    // The user still sees the message in their history.
    let history = apps
        .call(Function::MessageUser, world::history(Some(&owner.id), &user.id))
        .await;
    assert_eq!(
        history.assert_success(200)["items"].as_array().map(Vec::len),
        Some(1)
    );
    cloud.assert_security_logs_clean(&[&body, "From the admin"]).await;
    logs::assert_clean();
}

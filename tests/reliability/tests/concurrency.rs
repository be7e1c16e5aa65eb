//! Concurrency against the emulator with the real adapters, through the real handlers:
//! duplicate sends, duplicate deletes, and a send racing the deletion of its recipient.
//!
//! DynamoDB goes through the (fault-free) proxy, which makes every conditional write and
//! transaction atomic as DynamoDB does: moto 5.2.5 checks a condition and writes without a
//! lock, so two concurrent claims of one key can both pass there (measured: three 201s with
//! three message ids among eight processes in one round of `black_box_mail`).
//! Needs the emulator: run with `scripts/test.sh`.

use reliability_tests::cloud::{sdk_for, str_attr, Cloud};
use reliability_tests::proxy::FaultProxy;
use reliability_tests::world::{self, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::time::Duration;

fn unique(prefix: &str) -> String {
    test_support::unique(&format!("{prefix}-"))
}

#[tokio::test]
async fn fifty_concurrent_sends_with_one_idempotency_key_send_one_email_and_store_one_row() {
    logs::capture();
    let cloud = Cloud::new().await;
    let admin = unique("admin");
    let target = unique("user");
    let email = format!("{target}@concurrency-example.com");
    let subject = format!("Concurrent subject {target}");
    let body = format!("Concurrent body for {target}");
    logs::forbid([&email, &subject, &body]);
    cloud
        .add_user(&admin, "admin", Some(&format!("{admin}@teleperson-example.com")))
        .await;
    cloud.add_user(&target, "user", Some(&email)).await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));

    let event = || {
        world::send(Some(&admin), &target)
            .header("idempotency-key", "one-key-for-fifty")
            .json(&json!({ "subject": subject, "body": body }))
    };
    let answers: Vec<Answer> =
        futures::future::join_all((0..50).map(|_| apps.call(Function::MessageUser, event()))).await;

    let mut ids: Vec<String> = Vec::new();
    let mut in_progress_ids: Vec<String> = Vec::new();
    let mut replays = 0;
    for a in &answers {
        a.assert_well_formed();
        match a.status {
            201 => {
                ids.push(a.json()["message_id"].as_str().unwrap_or_default().to_owned());
                replays += usize::from(a.header("idempotent-replayed") == Some("true"));
            }
            // Still in progress: the client is asked to retry, and told the message's id.
            409 => {
                let doc = a.assert_problem(409, "request_in_progress");
                in_progress_ids.push(doc["message_id"].as_str().unwrap_or_default().to_owned());
            }
            _ => panic!("a duplicate was answered {}: {}", a.summary(), a.body),
        }
    }
    ids.sort();
    ids.dedup();
    println!(
        "50 concurrent sends: {} answered 201 ({replays} replays), {} answered 409",
        answers.iter().filter(|a| a.status == 201).count(),
        answers.iter().filter(|a| a.status == 409).count()
    );
    assert_eq!(ids.len(), 1, "every 201 carries the same message id");
    assert!(
        in_progress_ids.iter().all(|id| *id == ids[0]),
        "every 409 names the message being sent: {in_progress_ids:?}"
    );
    assert_eq!(cloud.emails_to(&email).await.len(), 1, "exactly one email");
    let rows = cloud
        .rows_where("ADMIN_MESSAGES_TABLE", "recipient_id", &target)
        .await;
    assert_eq!(rows.len(), 1, "exactly one admin_messages row");
    assert_eq!(str_attr(&rows[0], "status"), Some("sent"));
    let events = cloud
        .rows_where("SECURITY_LOGS_TABLE", "target_id", &target)
        .await;
    let sent = events
        .iter()
        .filter(|e| str_attr(e, "event_type") == Some("admin_sent_user_message"))
        .count();
    assert_eq!(sent, 1, "exactly one admin_sent_user_message event");
    cloud.assert_security_logs_clean(&[&subject, &body]).await;
    logs::assert_clean();
}

#[tokio::test]
async fn ten_concurrent_deletes_of_one_user_make_one_job_and_one_audit_event() {
    logs::capture();
    let cloud = Cloud::new().await;
    let admin = unique("admin");
    let target = unique("user");
    let email = format!("{target}@concurrency-example.com");
    logs::forbid([&email]);
    cloud.add_user(&admin, "admin", None).await;
    cloud.add_user(&target, "user", Some(&email)).await;
    cloud.seed_user_data(&target, 30).await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));

    let answers: Vec<Answer> = futures::future::join_all(
        (0..10).map(|_| apps.call(Function::DeleteUser, world::delete(Some(&admin), &target))),
    )
    .await;
    let mut job_ids = Vec::new();
    for a in &answers {
        a.assert_well_formed();
        assert!(
            matches!(a.status, 200 | 202),
            "a concurrent delete answered {}: {}",
            a.summary(),
            a.body
        );
        job_ids.push(a.json()["job_id"].as_str().unwrap_or_default().to_owned());
    }
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "every answer names the same job: {job_ids:?}");

    // Whatever was handed to the queue finishes there; nobody sends the DELETE again.
    cloud.finish_deletion(&apps.worker, &target).await;
    let again = apps
        .call(Function::DeleteUser, world::delete(Some(&admin), &target))
        .await;
    again.assert_problem(410, "user_deleted");

    let jobs = cloud.rows_where("DELETION_JOBS_TABLE", "user_id", &target).await;
    assert_eq!(jobs.len(), 1, "one job");
    assert_eq!(str_attr(&jobs[0], "status"), Some("completed"));
    let audits = cloud
        .rows_where("SECURITY_LOGS_TABLE", "target_id", &target)
        .await
        .into_iter()
        .filter(|e| str_attr(e, "event_type") == Some("admin_deleted_user"))
        .count();
    assert_eq!(audits, 1, "one admin_deleted_user event");
    cloud.assert_security_logs_clean(&[]).await;
    logs::assert_clean();
}

#[tokio::test]
async fn a_send_racing_the_deletion_of_its_recipient_is_sent_before_the_tombstone_or_refused() {
    logs::capture();
    let cloud = Cloud::new().await;
    let admin = unique("admin");
    cloud.add_user(&admin, "owner", None).await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));
    let rounds = 12;
    let (mut sent, mut refused) = (0, 0);
    for round in 0..rounds {
        let target = unique(&format!("race{round}"));
        let email = format!("{target}@race-example.com");
        let body = format!("Race body {target}");
        logs::forbid([&email, &body]);
        cloud.add_user(&target, "user", Some(&email)).await;
        cloud.seed_user_data(&target, 2).await;

        let send_delay = Duration::from_millis(fastrand::u64(0..300));
        let delete_delay = Duration::from_millis(fastrand::u64(0..40));
        let send = async {
            tokio::time::sleep(send_delay).await;
            apps.call(
                Function::MessageUser,
                world::send(Some(&admin), &target).json(&json!({ "body": body })),
            )
            .await
        };
        let delete = async {
            tokio::time::sleep(delete_delay).await;
            apps.call(Function::DeleteUser, world::delete(Some(&admin), &target))
                .await
        };
        let (send_answer, delete_answer) = futures::join!(send, delete);
        send_answer.assert_well_formed();
        delete_answer.assert_well_formed();
        assert!(
            matches!(delete_answer.status, 200 | 202),
            "round {round}: delete answered {}",
            delete_answer.summary()
        );
        cloud.finish_deletion(&apps.worker, &target).await;

        let profile = cloud.profile_row(&target).await.expect("the tombstone stays");
        let deleted_at = str_attr(&profile, "deleted_at")
            .expect("the profile is a tombstone")
            .to_owned();
        let mails = cloud.emails_to(&email).await.len();
        let sent_events: Vec<_> = cloud
            .rows_where("SECURITY_LOGS_TABLE", "target_id", &target)
            .await
            .into_iter()
            .filter(|e| str_attr(e, "event_type") == Some("admin_sent_user_message"))
            .collect();
        match send_answer.status {
            201 => {
                sent += 1;
                let sent_at = send_answer.json()["sent_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert!(
                    sent_at <= deleted_at,
                    "round {round}: mail sent at {sent_at}, after the tombstone of {deleted_at}"
                );
                assert_eq!(mails, 1, "round {round}: one mail");
                assert_eq!(sent_events.len(), 1, "round {round}: the send is audited");
                let event_at = str_attr(&sent_events[0], "created_at").unwrap_or_default();
                assert!(
                    event_at <= deleted_at.as_str(),
                    "round {round}: audit after the tombstone"
                );
            }
            410 => {
                refused += 1;
                send_answer.assert_problem(410, "user_deleted");
                assert_eq!(mails, 0, "round {round}: a refused send mailed a deleted user");
                assert!(sent_events.is_empty(), "round {round}");
            }
            _ => panic!(
                "round {round}: the racing send answered {}: {}",
                send_answer.summary(),
                send_answer.body
            ),
        }
    }
    println!("send vs delete race: {rounds} rounds, {sent} sent before the tombstone, {refused} refused");
    cloud.assert_security_logs_clean(&["Race body"]).await;
    logs::assert_clean();
}

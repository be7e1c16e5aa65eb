//! At most one email per message under faults on the wire, through message-user's handler in
//! this process (the real SDK clients built by `aws_adapters::env` as the Lambda builds them,
//! with [`FaultProxy`] as their endpoint for DynamoDB and SESv2).
//!
//! Twelve Idempotency-Keys, each sent once and retried five times by its client, one key per
//! recipient and per proxy, with seeded faults:
//! - DynamoDB, each call with probability 1/8: refused before it applies (500
//!   `InternalServerError`), applied then answered 500 (the answer lost), or throttled (400
//!   `ThrottlingException`). The SDK retries each; a `TransactWriteItems` retried with the
//!   same `ClientRequestToken` gets its first answer back, as DynamoDB does.
//! - SES: the first `SendEmail` of nine keys meets a fault (three keys each: accepted then
//!   answered 500, accepted then the connection dropped, throttled before acceptance); every
//!   later `SendEmail` meets one with probability 1/8.
//!
//! Whatever happened: each key reached SES at most once; each message id was handed to SES
//! at most once; a `201` means exactly one email reached SES; no row says `sent` unless its
//! email reached SES; a `202 pending` message is never sent again. Once the sweep has run 15
//! minutes later and SES's `Send` events have arrived, every row tells what happened.
//! Needs the emulator: `scripts/test.sh`.

use futures::StreamExt;
use reliability_tests::cloud::{sdk_for, ses_send_event, str_attr, Cloud};
use reliability_tests::proxy::{Fault, FaultProxy};
use reliability_tests::world::{self, Function};
use reliability_tests::{logs, Answer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const KEYS: usize = 12;
const RETRIES: usize = 5;
const RATE: f64 = 0.125;
const SEED: u64 = 0x5eed_2026;

fn dynamodb_faults() -> Vec<Fault> {
    vec![
        Fault::error(500, "InternalServerError"),
        Fault::forward_then_error(500, "InternalServerError"),
        Fault::error(400, "ThrottlingException"),
    ]
}

fn ses_faults() -> Vec<Fault> {
    vec![
        Fault::forward_then_error(500, "InternalFailure"),
        Fault::ForwardThenDrop,
        Fault::error(429, "TooManyRequestsException"),
    ]
}

/// The `message_id` tag of a `SendEmail` request body.
fn tag_of(request: &Value) -> Option<String> {
    request["EmailTags"]
        .as_array()?
        .iter()
        .find(|t| t["Name"] == "message_id")?["Value"]
        .as_str()
        .map(str::to_owned)
}

/// What one key's client saw, and what its proxy saw.
struct KeyRun {
    key: String,
    target: String,
    email: String,
    answers: Vec<Answer>,
    /// `SendEmail` requests the proxy saw (forwarded or not), with their message id tags.
    send_attempts: Vec<(Option<String>, bool)>,
    /// The `MessageId` SES gave each message id that reached it.
    ses_ids: BTreeMap<String, String>,
    faults: BTreeMap<String, usize>,
    replayed_transactions: usize,
    calls: usize,
}

async fn run_key(cloud: &Cloud, admin: &str, k: usize) -> KeyRun {
    let key = format!("faulty-key-{k:02}");
    let target = test_support::unique(&format!("user{k:02}-"));
    let email = format!("{target}@mail-faults-example.com");
    let subject = format!("Faulty subject {k}");
    let body = format!("Faulty body {target}");
    logs::forbid([&email, &body]);
    cloud.add_user(&target, "user", Some(&email)).await;

    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    if k % 4 != 3 {
        proxy.fail("sesv2:SendEmail", ses_faults()[k % 4].clone(), 1);
    }
    proxy.random("sesv2", &[], RATE, ses_faults(), SEED ^ (1000 + k as u64));
    proxy.random("dynamodb", &[], RATE, dynamodb_faults(), SEED ^ k as u64);
    let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));
    let event = || {
        world::send(Some(admin), &target)
            .header("idempotency-key", &key)
            .json(&json!({ "subject": subject, "body": body }))
    };
    let mut answers = Vec::new();
    for _ in 0..=RETRIES {
        let answer = apps.call(Function::MessageUser, event()).await;
        answer.assert_well_formed();
        answers.push(answer);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let send_attempts = proxy
        .seen()
        .into_iter()
        .filter(|s| s.operation == "sesv2:SendEmail")
        .map(|s| (s.body.as_ref().and_then(tag_of), s.forwarded))
        .collect();
    let ses_ids = proxy
        .sent_emails_with_answers()
        .into_iter()
        .filter_map(|(body, answer)| Some((tag_of(&body)?, answer?["MessageId"].as_str()?.to_owned())))
        .collect();
    KeyRun {
        ses_ids,
        key,
        target,
        email,
        answers,
        send_attempts,
        faults: proxy.faults(),
        replayed_transactions: proxy.replayed(),
        calls: proxy.seen().len(),
    }
}

#[tokio::test]
async fn twelve_keys_retried_under_seeded_faults_never_reach_ses_twice_and_the_history_tells_the_truth() {
    logs::capture();
    let cloud = Cloud::new().await;
    let admin = test_support::unique("admin-");
    cloud.add_user(&admin, "admin", None).await;
    let runs: Vec<KeyRun> = futures::stream::iter(0..KEYS)
        .map(|k| run_key(&cloud, &admin, k))
        .buffer_unordered(KEYS)
        .collect()
        .await;
    let in_ses = cloud.emails().await;

    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut faults: BTreeMap<String, usize> = BTreeMap::new();
    let (mut calls, mut replayed, mut emails) = (0, 0, 0);
    // Every message id that reached SES, and the id SES gave it.
    let mut delivered: BTreeMap<String, String> = BTreeMap::new();
    for run in &runs {
        let what = &run.key;
        calls += run.calls;
        replayed += run.replayed_transactions;
        for (f, n) in &run.faults {
            *faults.entry(f.clone()).or_default() += n;
        }
        for a in &run.answers {
            *answers.entry(a.summary()).or_default() += 1;
            assert!(
                matches!(a.status, 201 | 202 | 409 | 429 | 503),
                "{what}: answered {}: {}",
                a.summary(),
                a.body
            );
        }
        // Each key reached SES at most once, and each message id was handed to SES at most
        // once (forwarded or not).
        let forwarded: Vec<&Option<String>> = run
            .send_attempts
            .iter()
            .filter(|(_, f)| *f)
            .map(|(t, _)| t)
            .collect();
        assert!(
            forwarded.len() <= 1,
            "{what}: SES got {} SendEmail requests",
            forwarded.len()
        );
        let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
        for (tag, _) in &run.send_attempts {
            *per_id
                .entry(tag.as_deref().expect("every send is tagged"))
                .or_default() += 1;
        }
        assert!(
            per_id.values().all(|n| *n == 1),
            "{what}: a message id handed to SES twice: {per_id:?}"
        );
        let mails = in_ses.iter().filter(|m| m.to.contains(&run.email)).count();
        assert_eq!(mails, forwarded.len(), "{what}: emails in SES");
        emails += mails;
        if let Some(Some(id)) = forwarded.first() {
            let ses_id = run
                .ses_ids
                .get(id)
                .expect("SES answered the emulator's id")
                .clone();
            assert!(
                in_ses.iter().any(|m| m.id == ses_id),
                "{what}: SES holds the email"
            );
            delivered.insert((*id).clone(), ses_id);
        }
        // A 201 means exactly one email reached SES.
        if run.answers.iter().any(|a| a.status == 201) {
            assert_eq!(mails, 1, "{what}: a 201 without exactly one email");
        }
        // A 202 pending message is never handed to SES after its 202.
        for (i, a) in run.answers.iter().enumerate() {
            if a.status != 202 {
                continue;
            }
            let id = a.json()["message_id"].as_str().expect("a 202 names its message");
            for later in &run.answers[i + 1..] {
                assert!(
                    !matches!(later.status, 201 | 202) || later.json()["message_id"] == id,
                    "{what}: after a 202, another message was sent: {}",
                    later.body
                );
            }
        }
        // No row says sent unless its email reached SES.
        let rows = cloud
            .scan("ADMIN_MESSAGES_TABLE")
            .await
            .into_iter()
            .filter(|r| str_attr(r, "recipient_id") == Some(run.target.as_str()))
            .collect::<Vec<_>>();
        for row in &rows {
            let id = str_attr(row, "message_id").unwrap_or_default();
            if str_attr(row, "status") == Some("sent") {
                assert!(
                    delivered.contains_key(id),
                    "{what}: a row says sent without its email"
                );
            }
        }
    }

    // Fifteen minutes later the sweep settles what is still pending, and SES's Send events
    // arrive for every email it got: then every row tells what happened.
    let report = cloud
        .sweeper_ahead(cloud.emulator.sdk(), Duration::from_secs(16 * 60))
        .run()
        .await
        .expect("the sweep");
    let delivery = cloud.delivery();
    for (id, ses_id) in &delivered {
        delivery
            .apply(&ses_send_event(ses_id, id))
            .await
            .expect("the Send event");
    }
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let targets: BTreeSet<&str> = runs.iter().map(|r| r.target.as_str()).collect();
    for row in cloud.scan("ADMIN_MESSAGES_TABLE").await {
        if !targets.contains(str_attr(&row, "recipient_id").unwrap_or_default()) {
            continue;
        }
        let id = str_attr(&row, "message_id").unwrap_or_default();
        let status = str_attr(&row, "status").unwrap_or_default().to_owned();
        match status.as_str() {
            "sent" => assert!(delivered.contains_key(id), "a sent row without its email"),
            "failed" | "unconfirmed" => {
                assert!(!delivered.contains_key(id), "a {status} row whose email SES got")
            }
            other => panic!("a row still {other} after the sweep and the events"),
        }
        *statuses.entry(status).or_default() += 1;
    }
    let injected: usize = faults.values().sum();
    println!(
        "{KEYS} keys x {} sends, {calls} calls through the proxies, {injected} faults injected ({:.1}%): {faults:?}; \
         {replayed} TransactWriteItems answered from their ClientRequestToken; answers {answers:?}; {emails} emails \
         reached SES; the sweep: {} unconfirmed, {} failed; rows in the end: {statuses:?}",
        RETRIES + 1,
        100.0 * injected as f64 / calls as f64,
        report.unconfirmed.len(),
        report.failed.len()
    );
    assert!(injected > 0);
    cloud
        .assert_security_logs_clean(&["Faulty subject", "Faulty body"])
        .await;
    logs::assert_clean();
}

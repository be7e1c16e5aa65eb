//! A SendEmail whose answer never comes back (SES accepted the mail, the client timed out):
//! the outcome is unknown, so the answer is `202 {message_id, status: "pending"}`, the row
//! stays pending, and the same Idempotency-Key never sends it again. The sweep shows it unconfirmed after 15 minutes; SES's
//! `Send` event moves it to sent. Needs the emulator: run with `scripts/test.sh`.

use reliability_tests::cloud::{sdk_for, ses_send_event, Cloud};
use reliability_tests::logs;
use reliability_tests::proxy::{Fault, FaultProxy};
use reliability_tests::world::{self, Function};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_retry_after_a_send_timed_out_once_ses_had_accepted_it_does_not_mail_twice() {
    logs::capture();
    let cloud = Cloud::new().await;
    let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
    let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));
    let owner = test_support::unique("owner-");
    let target = test_support::unique("user-");
    let email = format!("{target}@ambiguous-example.com");
    let body = format!("Ambiguous body {target}");
    logs::forbid([&email, &body]);
    cloud.add_user(&owner, "owner", None).await;
    cloud.add_user(&target, "user", Some(&email)).await;
    let send = || {
        world::send(Some(&owner), &target)
            .header("idempotency-key", "ambiguous-1")
            .json(&json!({ "body": body }))
    };

    // SES accepts the mail, but its answer never comes back: the send times out (10 s).
    proxy.fail(
        "sesv2:SendEmail",
        Fault::ForwardThenHang(Duration::from_secs(15)),
        1,
    );
    let first = apps.call(Function::MessageUser, send()).await;
    let doc = first.assert_success(202).clone();
    assert_eq!(doc["status"], "pending");
    let id = doc["message_id"].as_str().expect("the message id").to_owned();
    assert_eq!(cloud.emails_to(&email).await.len(), 1, "SES did accept the mail");

    // The client retries with the same Idempotency-Key, at once and a little later.
    for wait in [Duration::ZERO, Duration::from_secs(3)] {
        tokio::time::sleep(wait).await;
        let retry = apps.call(Function::MessageUser, send()).await;
        assert_eq!(retry.assert_success(202), &doc, "the retry after {wait:?}");
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(
        proxy.attempts("sesv2:SendEmail"),
        1,
        "SendEmail was never called again"
    );
    let mails = cloud.emails_to(&email).await.len();
    println!("after an ambiguous SES timeout, two retries answered 202 and the user has {mails} mail(s)");
    assert_eq!(mails, 1, "the same Idempotency-Key sends nothing again");

    // The history: pending, unconfirmed once the sweep ran 15 minutes later, sent once SES's
    // Send event (matched by the message id tag) arrives.
    let status = || async {
        let page = apps
            .call(Function::MessageUser, world::history(Some(&owner), &target))
            .await;
        page.assert_success(200)["items"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(status().await, "pending");
    cloud
        .sweeper_ahead(cloud.emulator.sdk(), Duration::from_secs(16 * 60))
        .run()
        .await
        .expect("the sweep");
    assert_eq!(status().await, "unconfirmed");
    let ses_id = cloud.emails_to(&email).await[0].id.clone();
    cloud
        .delivery()
        .apply(&ses_send_event(&ses_id, &id))
        .await
        .expect("the Send event");
    assert_eq!(status().await, "sent");
    assert_eq!(cloud.emails_to(&email).await.len(), 1);
    logs::assert_clean();
}

//! Tests that fail today because of a bug outside this crate, reported with the file and the
//! reason in the failure message. They stay failing (not `#[ignore]`d) until the bug is
//! fixed. Kept in their own test binary, which sorts after the others, so that the rest of
//! this crate still runs. Needs the emulator: run with `scripts/test.sh`.

use reliability_tests::cloud::{sdk_for, Cloud};
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
    first.assert_problem(503, "dependency_unavailable");
    assert_eq!(cloud.emails_to(&email).await.len(), 1, "SES did accept the mail");

    // The client retries with the same Idempotency-Key, as the 503 invites it to.
    let retry = apps.call(Function::MessageUser, send()).await;
    retry.assert_well_formed();
    let mails = cloud.emails_to(&email).await.len();
    println!(
        "after an ambiguous SES timeout, the retry answered {} and the user has {mails} mail(s)",
        retry.summary()
    );
    assert_eq!(
        mails, 1,
        "BUG (reported, not fixed here): DESIGN.md section 3 says the same Idempotency-Key \"sends \
         nothing again\", but after a SendEmail timeout (SES had accepted the mail) the retry with \
         the same key mailed the user a second time. shared/aws-adapters/src/ses.rs classify() \
         treats a timeout / response error as \"not accepted\" (MailError::Unavailable), \
         shared/domain/src/messaging.rs deliver() marks the row failed and remember() releases \
         the key on every non-final error, so the retry claims the key afresh and sends again"
    );
    logs::assert_clean();
}

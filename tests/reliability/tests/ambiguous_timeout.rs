//! A SendEmail whose answer never comes back (SES accepted the mail, the client timed out):
//! the outcome is unknown, so the row stays pending and the same Idempotency-Key never sends
//! it again. Needs the emulator: run with `scripts/test.sh`.

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
    retry.assert_problem(503, "dependency_unavailable");
    let mails = cloud.emails_to(&email).await.len();
    println!(
        "after an ambiguous SES timeout, the retry answered {} and the user has {mails} mail(s)",
        retry.summary()
    );
    assert_eq!(
        mails, 1,
        "DESIGN.md section 3: the same Idempotency-Key sends nothing again, even after a SendEmail \
         whose answer was lost (SES had accepted the mail)"
    );
    logs::assert_clean();
}

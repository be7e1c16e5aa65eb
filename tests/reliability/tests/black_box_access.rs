//! Black-box: access ends when Cognito ends it. The built `token-revocation` binary gets the
//! CloudTrail event of a sign-out (as EventBridge delivers it), and from then on the built
//! `list-users`, `message-user` and `delete-user` refuse every token issued before it, while a
//! token issued after it works. Tokens that are not the dashboard client's access tokens are
//! refused whatever the route's scope. Needs the emulator: `scripts/test.sh`.

use http_api::event::ApiEvent;
use lambda_sim::Invocation;
use reliability_tests::cloud::Cloud;
use reliability_tests::functions::{invoke, lambda_env, start};
use reliability_tests::{logs, world};
use serde_json::{json, Value};

fn status(inv: &Invocation) -> u64 {
    inv.response["statusCode"].as_u64().unwrap_or(0)
}

fn code(inv: &Invocation) -> String {
    let body: Value =
        serde_json::from_str(inv.response["body"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// The sample CloudTrail event of an `AdminUserGlobalSignOut`, about `username` in `pool`,
/// made at `at` (whole seconds, as CloudTrail writes them), naming the user by username only.
fn sign_out(pool: &str, username: &str, at: i64) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../functions/token-revocation/events/admin-user-global-sign-out.json"
    );
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the sample event")).unwrap();
    let time = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    event["time"] = json!(time);
    event["detail"]["eventTime"] = json!(time);
    event["detail"]["requestParameters"]["userPoolId"] = json!(pool);
    event["detail"]["requestParameters"]["username"] = json!(username);
    // Named by username only: the function finds the `sub` with AdminGetUser.
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("additionalEventData");
    event
}

#[tokio::test]
async fn a_sign_out_in_cognito_ends_every_earlier_token_of_that_admin_at_once() {
    logs::capture();
    let cloud = Cloud::new().await;
    let login = test_support::unique("signed-out-admin-");
    let admin = cloud.add_user_by_sub(&login, "admin", None).await;
    let target = test_support::unique("user-");
    let address = format!("{target}@access-example.com");
    cloud.add_user(&target, "user", Some(&address)).await;

    let env = lambda_env(&cloud);
    let (revocation, list, message, delete) = futures::join!(
        start("token-revocation", env.clone()),
        start("list-users", env.clone()),
        start("message-user", env.clone()),
        start("delete-user", env.clone()),
    );
    let now = chrono::Utc::now().timestamp();
    let admin_ref = admin.as_str();
    let issued = |iat: i64| move |e: ApiEvent| e.caller(admin_ref).claim("iat", &iat.to_string());
    let before = issued(now - 60);

    let list_with =
        |claims: &dyn Fn(ApiEvent) -> ApiEvent| claims(ApiEvent::new("GET", world::LIST_ROUTE)).to_value();
    assert_eq!(
        status(&invoke(&list, &list_with(&before)).await),
        200,
        "before the sign-out"
    );

    // The sign-out, named by username as CloudTrail records AdminUserGlobalSignOut.
    let answer = invoke(&revocation, &sign_out(&cloud.pool, &login, now)).await;
    assert_eq!(
        answer.response["revoked"],
        json!(admin),
        "{}\n{}",
        answer.response,
        revocation.log_text()
    );
    let row = cloud.profile_row(&admin).await.expect("the admin's profile");
    assert_eq!(
        row.get("tokens_valid_after")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some((now + 1).to_string().as_str()),
        "the cut-off is the end of the sign-out's second"
    );
    // EventBridge delivers at least once: the same event again moves nothing.
    let again = invoke(&revocation, &sign_out(&cloud.pool, &login, now)).await;
    assert_eq!(again.response["revoked"], json!(admin), "{}", again.response);

    // Every function refuses the earlier token, as an unauthenticated caller.
    let refused = invoke(&list, &list_with(&before)).await;
    assert_eq!(
        (status(&refused), code(&refused).as_str()),
        (401, "unauthenticated")
    );
    let send = before(ApiEvent::new("POST", world::MESSAGES_ROUTE))
        .path_param("userId", &target)
        .json(&json!({ "subject": "Hello", "body": "After the sign-out" }))
        .to_value();
    let refused = invoke(&message, &send).await;
    assert_eq!(
        (status(&refused), code(&refused).as_str()),
        (401, "unauthenticated")
    );
    assert!(cloud.emails_to(&address).await.is_empty(), "nothing was sent");
    let erase = before(ApiEvent::new("DELETE", world::USER_ROUTE))
        .path_param("userId", &target)
        .to_value();
    let refused = invoke(&delete, &erase).await;
    assert_eq!(
        (status(&refused), code(&refused).as_str()),
        (401, "unauthenticated")
    );
    assert!(cloud.job_row(&target).await.is_none(), "no deletion started");

    // A token issued after the sign-out (the admin signed in again) works.
    let after = issued(now + 2);
    assert_eq!(
        status(&invoke(&list, &list_with(&after)).await),
        200,
        "a new sign-in"
    );

    // Not the dashboard's access token: refused whatever the route's scope would allow.
    let id_token = |e: ApiEvent| after(e).claim("token_use", "id");
    let other_client = |e: ApiEvent| after(e).claim("client_id", "another-app-client");
    for (what, claims) in [
        ("an ID token", &id_token as &dyn Fn(ApiEvent) -> ApiEvent),
        ("another app client's token", &other_client),
    ] {
        let inv = invoke(&list, &list_with(claims)).await;
        assert_eq!(
            (status(&inv), code(&inv).as_str()),
            (401, "unauthenticated"),
            "{what}"
        );
    }
    reliability_tests::functions::assert_logs_clean(&[
        ("token-revocation", &revocation),
        ("list-users", &list),
        ("message-user", &message),
        ("delete-user", &delete),
    ]);
}

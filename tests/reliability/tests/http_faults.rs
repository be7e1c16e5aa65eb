//! Fault injection on the wire: the real SDK clients (built by `aws_adapters::env` exactly as
//! the Lambdas build them, with the proxy as their endpoint) talk to the emulator through
//! [`FaultProxy`], which answers chosen calls with throttling, 5xx, SES refusals or hangs.
//!
//! Each fault gets its documented answer (DESIGN.md section 3: 429, 502, 503), the SDK's own
//! retries are used where they are safe (the proxy counts the attempts), and no record is
//! lost. Needs the emulator: run with `scripts/test.sh`.

use futures::StreamExt;
use reliability_tests::cloud::{sdk_for, str_attr, Cloud, Item};
use reliability_tests::proxy::{self, Fault, FaultProxy};
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::cognito;

/// The DynamoDB faults the SDK must retry: (HTTP status, error code).
const DYNAMO_FAULTS: &[(u16, &str)] = &[
    (400, "ProvisionedThroughputExceededException"),
    (400, "ThrottlingException"),
    (500, "InternalServerError"),
    (503, "ServiceUnavailable"),
];

/// Attempts the SDK makes per call (`aws_config`'s standard retry mode).
const MAX_ATTEMPTS: u64 = 3;

/// How many cases run at once (each with its own proxy, clients and users).
const PARALLEL: usize = 4;

struct Case {
    proxy: FaultProxy,
    apps: Apps,
    owner: String,
    target: String,
    email: String,
    subject: String,
    body: String,
}

impl Case {
    async fn new(cloud: &Cloud, items_per_table: usize) -> Case {
        let proxy = FaultProxy::start(cloud.emulator.endpoint()).await;
        let apps = cloud.apps_with(&sdk_for(&proxy.endpoint()));
        let owner = test_support::unique("owner-");
        let target = test_support::unique("user-");
        let email = format!("{target}@faults-example.com");
        let subject = format!("Fault subject {target}");
        let body = format!("Fault body {target}");
        logs::forbid([&email, &subject, &body]);
        cloud.add_user(&owner, "owner", None).await;
        cloud.add_user(&target, "user", Some(&email)).await;
        if items_per_table > 0 {
            cloud.seed_user_data(&target, items_per_table).await;
        }
        Case {
            proxy,
            apps,
            owner,
            target,
            email,
            subject,
            body,
        }
    }

    fn send_event(&self, key: &str) -> http_api::event::ApiEvent {
        world::send(Some(&self.owner), &self.target)
            .header("idempotency-key", key)
            .json(&json!({ "subject": self.subject, "body": self.body }))
    }

    async fn send(&self, key: &str) -> Answer {
        self.apps.call(Function::MessageUser, self.send_event(key)).await
    }

    async fn delete(&self) -> Answer {
        self.apps
            .call(
                Function::DeleteUser,
                world::delete(Some(&self.owner), &self.target),
            )
            .await
    }
}

async fn rows_where(cloud: &Cloud, env_var: &str, attr: &str, value: &str) -> Vec<Item> {
    cloud
        .scan(env_var)
        .await
        .into_iter()
        .filter(|i| str_attr(i, attr) == Some(value))
        .collect()
}

/// No record of a send is lost: a mail that went out has its row; every row is pending, sent
/// or failed; a `201` has its mail, its `sent` row and its audit event. Returns the mails.
async fn assert_send_lost_nothing(cloud: &Cloud, case: &Case, answer: &Answer, what: &str) -> usize {
    let mails = cloud.emails_to(&case.email).await.len();
    let rows = rows_where(cloud, "ADMIN_MESSAGES_TABLE", "recipient_id", &case.target).await;
    assert!(mails <= 1, "{what}: {mails} mails for one request");
    if mails == 1 {
        assert!(
            !rows.is_empty(),
            "{what}: a mail went out without an admin_messages row"
        );
    }
    for row in &rows {
        let status = str_attr(row, "status").unwrap_or_default();
        assert!(
            ["pending", "sent", "failed"].contains(&status),
            "{what}: a message row in state {status:?}"
        );
    }
    if answer.status == 201 {
        let id = answer.json()["message_id"].as_str().unwrap_or_default();
        assert_eq!(mails, 1, "{what}: a 201 without its mail");
        assert!(
            rows.iter()
                .any(|r| str_attr(r, "message_id") == Some(id) && str_attr(r, "status") == Some("sent")),
            "{what}: a 201 without its sent row"
        );
        let events = rows_where(cloud, "SECURITY_LOGS_TABLE", "message_id", id).await;
        assert_eq!(events.len(), 1, "{what}: a 201 without its audit event");
    }
    mails
}

/// The calls a request makes with no fault: operation → number of calls.
async fn baseline<F, Fut>(cloud: &Cloud, items: usize, run: F) -> BTreeMap<String, usize>
where
    F: FnOnce(Case) -> Fut,
    Fut: std::future::Future<Output = (Case, Answer)>,
{
    let case = Case::new(cloud, items).await;
    let (case, answer) = run(case).await;
    answer.assert_well_formed();
    assert!(answer.status < 300, "the baseline succeeds: {}", answer.body);
    let ops = case.proxy.operations();
    assert_eq!(case.proxy.injected(), 0);
    ops
}

/// Every (operation, call index) of a baseline, for the given services.
fn calls(ops: &BTreeMap<String, usize>, services: &[&str]) -> Vec<(String, u32)> {
    ops.iter()
        .filter(|(op, _)| services.iter().any(|s| op.starts_with(&format!("{s}:"))))
        .flat_map(|(op, n)| (0..*n as u32).map(move |c| (op.clone(), c)))
        .collect()
}

#[tokio::test]
async fn every_dynamodb_call_of_a_send_survives_one_fault_through_the_sdks_own_retry() {
    logs::capture();
    let cloud = Cloud::new().await;
    let ops = baseline(&cloud, 0, |c| async {
        let a = c.send("base").await;
        (c, a)
    })
    .await;
    println!("a send makes these calls: {ops:?}");
    let mut cases = Vec::new();
    for (op, call) in calls(&ops, &["dynamodb"]) {
        for (status, code) in DYNAMO_FAULTS {
            cases.push((op.clone(), call, *status, *code));
        }
    }
    let n = cases.len();
    let injected: Vec<u64> = futures::stream::iter(cases)
        .map(|(op, call, status, code)| {
            let cloud = &cloud;
            let ops = &ops;
            async move {
                let case = Case::new(cloud, 0).await;
                case.proxy.fail_after(&op, call, Fault::error(status, code), 1);
                let answer = case.send("k").await;
                let what = format!("{op} call {} answered {status} {code} once", call + 1);
                answer.assert_well_formed();
                assert_eq!(answer.status, 201, "{what}: {}", answer.body);
                assert_eq!(case.proxy.injected(), 1, "{what}");
                assert_eq!(
                    case.proxy.attempts(&op),
                    ops[&op] + 1,
                    "{what}: the SDK retries the call once"
                );
                assert_eq!(assert_send_lost_nothing(cloud, &case, &answer, &what).await, 1);
                case.proxy.injected()
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let total: u64 = injected.iter().sum();
    println!(
        "send, one fault per DynamoDB call: {n} cases, {total} faults injected ({} in this binary)",
        proxy::total_injected()
    );
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn a_dynamodb_call_of_a_send_that_keeps_failing_is_503_after_three_attempts_and_loses_no_record() {
    logs::capture();
    let cloud = Cloud::new().await;
    let ops = baseline(&cloud, 0, |c| async {
        let a = c.send("base").await;
        (c, a)
    })
    .await;
    let cases: Vec<(String, u32, (u16, &str))> = calls(&ops, &["dynamodb"])
        .into_iter()
        .enumerate()
        .map(|(i, (op, call))| (op, call, DYNAMO_FAULTS[i % DYNAMO_FAULTS.len()]))
        .collect();
    let n = cases.len();
    let outcomes: Vec<(String, u16, u64)> = futures::stream::iter(cases)
        .map(|(op, call, (status, code))| {
            let cloud = &cloud;
            async move {
                let case = Case::new(cloud, 0).await;
                case.proxy
                    .fail_after(&op, call, Fault::error(status, code), MAX_ATTEMPTS as u32);
                let answer = case.send("k").await;
                let what = format!("{op} call {} answering {status} {code} every time", call + 1);
                answer.assert_well_formed();
                if answer.status != 201 {
                    answer.assert_problem(503, "dependency_unavailable");
                }
                assert_eq!(
                    case.proxy.injected(),
                    MAX_ATTEMPTS,
                    "{what}: the SDK makes {MAX_ATTEMPTS} attempts before giving up"
                );
                assert_send_lost_nothing(cloud, &case, &answer, &what).await;
                (format!("{op}#{}", call + 1), answer.status, case.proxy.injected())
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let total: u64 = outcomes.iter().map(|o| o.2).sum();
    let answers: Vec<String> = outcomes.iter().map(|(c, s, _)| format!("{c} -> {s}")).collect();
    println!(
        "send, a DynamoDB call failing {MAX_ATTEMPTS} times: {n} cases, {total} faults injected; {answers:?}"
    );
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn ses_refusals_and_outages_get_their_documented_answers_without_an_automatic_resend() {
    logs::capture();
    let cloud = Cloud::new().await;
    // (fault, expected status and code, whether the mail reaches the emulator)
    let cases: Vec<(Fault, u16, &str, bool)> = vec![
        (
            Fault::error(429, "TooManyRequestsException"),
            429,
            "rate_limited",
            false,
        ),
        (Fault::error(400, "MessageRejected"), 502, "mail_rejected", false),
        (
            Fault::error(500, "InternalFailure"),
            503,
            "dependency_unavailable",
            false,
        ),
        (
            Fault::error(503, "ServiceUnavailable"),
            503,
            "dependency_unavailable",
            false,
        ),
        // Past the 10 s SendEmail timeout: unforwarded, and forwarded but never answered.
        (
            Fault::Hang(Duration::from_secs(15)),
            503,
            "dependency_unavailable",
            false,
        ),
        (
            Fault::ForwardThenHang(Duration::from_secs(15)),
            503,
            "dependency_unavailable",
            true,
        ),
    ];
    let n = cases.len();
    let injected: Vec<u64> = futures::stream::iter(cases)
        .map(|(fault, status, code, delivered)| {
            let cloud = &cloud;
            async move {
                let case = Case::new(cloud, 0).await;
                let what = format!("SendEmail answering {fault:?}");
                let unanswered = matches!(fault, Fault::Hang(_) | Fault::ForwardThenHang(_));
                case.proxy.fail("sesv2:SendEmail", fault, 1);
                let answer = case.send("k").await;
                answer.assert_problem(status, code);
                assert_eq!(
                    case.proxy.attempts("sesv2:SendEmail"),
                    1,
                    "{what}: SendEmail is not idempotent, the SDK must not resend it"
                );
                let mails = assert_send_lost_nothing(cloud, &case, &answer, &what).await;
                assert_eq!(mails, usize::from(delivered), "{what}");
                let rows = rows_where(cloud, "ADMIN_MESSAGES_TABLE", "recipient_id", &case.target).await;
                assert_eq!(rows.len(), 1, "{what}: the attempt is recorded");
                // A send that got no answer may have been accepted: its row stays `pending`
                // (outcome unknown) and is never marked failed; a refusal or an outage is `failed`.
                if unanswered {
                    assert_eq!(str_attr(&rows[0], "status"), Some("pending"), "{what}");
                } else if !delivered {
                    assert_eq!(str_attr(&rows[0], "status"), Some("failed"), "{what}");
                }
                if status == 429 || status == 503 {
                    assert!(answer.header("retry-after").is_some(), "{what}");
                }
                case.proxy.injected()
            }
        })
        .buffer_unordered(n)
        .collect()
        .await;
    println!(
        "SES faults: {n} cases, {} injected ({} in this binary)",
        injected.iter().sum::<u64>(),
        proxy::total_injected()
    );
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

/// After a delete: the job is completed, the data is gone, the Cognito user is gone and the
/// deletion was audited once.
async fn assert_deleted(cloud: &Cloud, case: &Case, what: &str) {
    let jobs = rows_where(cloud, "DELETION_JOBS_TABLE", "user_id", &case.target).await;
    assert_eq!(jobs.len(), 1, "{what}: one job");
    assert_eq!(str_attr(&jobs[0], "status"), Some("completed"), "{what}");
    for table in domain::cascade::CASCADE_PLAN {
        let attr = match table.lookup {
            domain::cascade::Lookup::PartitionKey { attr } | domain::cascade::Lookup::Index { attr, .. } => {
                attr
            }
        };
        let left = rows_where(cloud, table.env_var, attr, &case.target).await.len();
        assert_eq!(left, 0, "{what}: {left} rows left in {}", table.name);
    }
    assert_eq!(
        cognito::user_enabled(&cloud.emulator, &cloud.pool, &case.target).await,
        None,
        "{what}: the Cognito user is gone"
    );
    let audits = rows_where(cloud, "SECURITY_LOGS_TABLE", "target_id", &case.target)
        .await
        .into_iter()
        .filter(|e| str_attr(e, "event_type") == Some("admin_deleted_user"))
        .count();
    assert_eq!(audits, 1, "{what}: admin_deleted_user written {audits} times");
}

#[tokio::test]
async fn every_call_of_a_delete_that_keeps_failing_is_503_and_deleting_again_finishes_the_job() {
    logs::capture();
    let cloud = Cloud::new().await;
    let ops = baseline(&cloud, 3, |c| async {
        let a = c.delete().await;
        (c, a)
    })
    .await;
    println!("a delete makes these calls: {ops:?}");
    let cognito_faults = [(500, "InternalErrorException"), (400, "TooManyRequestsException")];
    let cases: Vec<(String, u32, (u16, &str))> = calls(&ops, &["dynamodb", "cognito"])
        .into_iter()
        .enumerate()
        .map(|(i, (op, call))| {
            let fault = if op.starts_with("cognito:") {
                cognito_faults[i % cognito_faults.len()]
            } else {
                DYNAMO_FAULTS[i % DYNAMO_FAULTS.len()]
            };
            (op, call, fault)
        })
        .collect();
    let n = cases.len();
    let outcomes: Vec<(u16, u64)> = futures::stream::iter(cases)
        .map(|(op, call, (status, code))| {
            let cloud = &cloud;
            async move {
                let case = Case::new(cloud, 3).await;
                let what = format!("{op} call {} answering {status} {code} every time", call + 1);
                case.proxy
                    .fail_after(&op, call, Fault::error(status, code), MAX_ATTEMPTS as u32);
                let first = case.delete().await;
                first.assert_well_formed();
                if first.status != 200 {
                    first.assert_problem(503, "dependency_unavailable");
                }
                assert_eq!(
                    case.proxy.injected(),
                    MAX_ATTEMPTS,
                    "{what}: {MAX_ATTEMPTS} attempts"
                );
                case.proxy.heal();
                let again = case.delete().await;
                match (first.status, again.status) {
                    (_, 200) => {}
                    (200, 410) => {}
                    _ => panic!(
                        "{what}: deleting again answered {}: {}",
                        again.summary(),
                        again.body
                    ),
                }
                assert_deleted(cloud, &case, &what).await;
                (first.status, case.proxy.injected())
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let total: u64 = outcomes.iter().map(|o| o.1).sum();
    let unavailable = outcomes.iter().filter(|o| o.0 == 503).count();
    println!(
        "delete, a call failing {MAX_ATTEMPTS} times: {n} cases ({unavailable} answered 503), {total} faults \
         injected ({} in this binary)",
        proxy::total_injected()
    );
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn one_cognito_fault_during_a_delete_is_retried_by_the_sdk() {
    logs::capture();
    let cloud = Cloud::new().await;
    let cases = [
        ("cognito:AdminDisableUser", 500, "InternalErrorException"),
        ("cognito:AdminUserGlobalSignOut", 400, "TooManyRequestsException"),
        ("cognito:AdminDeleteUser", 400, "TooManyRequestsException"),
        ("cognito:AdminDeleteUser", 500, "InternalErrorException"),
    ];
    for (op, status, code) in cases {
        let case = Case::new(&cloud, 1).await;
        let what = format!("{op} answering {status} {code} once");
        case.proxy.fail(op, Fault::error(status, code), 1);
        let answer = case.delete().await;
        answer.assert_success(200);
        assert_eq!(case.proxy.attempts(op), 2, "{what}: one retry");
        assert_deleted(&cloud, &case, &what).await;
    }
    println!(
        "cognito, one fault per call: {} cases ({} injected in this binary)",
        cases.len(),
        proxy::total_injected()
    );
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

#[tokio::test]
async fn a_failing_continuation_queue_is_503_and_the_job_stays_resumable() {
    logs::capture();
    let cloud = Cloud::new().await;
    let mut case = Case::new(&cloud, 2).await;
    // No time at all: the routine hands everything to the queue.
    case.apps.delete.budget = Duration::ZERO;
    case.proxy.fail(
        "sqs:SendMessage",
        Fault::error(500, "InternalError"),
        MAX_ATTEMPTS as u32,
    );
    let first = case.delete().await;
    first.assert_problem(503, "dependency_unavailable");
    assert_eq!(case.proxy.attempts("sqs:SendMessage"), MAX_ATTEMPTS as usize);
    let jobs = rows_where(&cloud, "DELETION_JOBS_TABLE", "user_id", &case.target).await;
    assert_eq!(jobs.len(), 1, "the job exists and can be resumed");

    // One fault only: the SDK's retry gets the continuation out; the worker finishes.
    case.proxy.heal();
    case.proxy
        .fail("sqs:SendMessage", Fault::error(503, "ServiceUnavailable"), 1);
    let second = case.delete().await;
    second.assert_success(202);
    cloud.run_worker(&case.apps.worker).await;
    assert_deleted(&cloud, &case, "after the queue recovered").await;
    println!("sqs: {} faults injected", case.proxy.injected());
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
}

//! Fault injection on the wire: the real SDK clients (built by `aws_adapters::env` exactly as
//! the Lambdas build them, with the proxy as their endpoint) talk to the emulator through
//! [`FaultProxy`], which answers chosen calls with throttling, 5xx, SES refusals, hangs and
//! dropped connections, before or after the call applied.
//!
//! Each fault gets its documented answer (`docs/openapi.yaml`: 202 pending when SES's
//! answer is unknown, 429, 502, 503), the SDK's own retries are used where they are safe (the
//! proxy counts the attempts), no record is lost, no mail goes out twice, and a deletion
//! whose request failed is finished by the queue (or the sweep) with nobody sending the
//! DELETE again. Needs the emulator: run with `scripts/test.sh`.

use futures::StreamExt;
use reliability_tests::cloud::{sdk_for, ses_send_event, str_attr, Cloud};
use reliability_tests::proxy::{self, Fault, FaultProxy};
use reliability_tests::world::{self, Apps, Function};
use reliability_tests::{logs, Answer};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::cognito;
use test_support::rows::user_attr;

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

/// No record of a send is lost: a mail that went out has its row; every row is pending, sent
/// or failed; a `201` has its mail, its `sent` row and its audit event; no row says sent
/// without its mail. Returns the mails.
async fn assert_send_lost_nothing(cloud: &Cloud, case: &Case, answer: &Answer, what: &str) -> usize {
    // Each case has its own proxy and recipient: what SES accepted through it went to them.
    let mails = case.proxy.accepted_emails();
    let rows = cloud
        .rows_where("ADMIN_MESSAGES_TABLE", "recipient_id", &case.target)
        .await;
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
        if status == "sent" {
            assert_eq!(mails, 1, "{what}: a row says sent without a mail");
        }
    }
    if answer.status == 201 {
        let id = answer.json()["message_id"].as_str().unwrap_or_default();
        assert_eq!(mails, 1, "{what}: a 201 without its mail");
        assert!(
            rows.iter()
                .any(|r| str_attr(r, "message_id") == Some(id) && str_attr(r, "status") == Some("sent")),
            "{what}: a 201 without its sent row"
        );
        let events = cloud.rows_where("SECURITY_LOGS_TABLE", "message_id", id).await;
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

/// The calls a send makes with no fault.
async fn send_baseline(cloud: &Cloud) -> BTreeMap<String, usize> {
    baseline(cloud, 0, |c| async {
        let a = c.send("base").await;
        (c, a)
    })
    .await
}

/// No `security_logs` row holds an address or a subject or body of these tests, and no log
/// line holds personal data.
async fn assert_clean(cloud: &Cloud) {
    cloud
        .assert_security_logs_clean(&["Fault subject", "Fault body"])
        .await;
    logs::assert_clean();
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
    let ops = send_baseline(&cloud).await;
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
                assert_eq!(
                    answer.status,
                    201,
                    "{what}: {} (calls: {:?}, baseline {:?})\n{}",
                    answer.body,
                    case.proxy.operations(),
                    ops,
                    logs::capture()
                        .text()
                        .lines()
                        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
                        .take(8)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
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
    assert_clean(&cloud).await;
}

#[tokio::test]
async fn a_dynamodb_call_of_a_send_that_keeps_failing_is_503_after_three_attempts_and_loses_no_record() {
    logs::capture();
    let cloud = Cloud::new().await;
    let ops = send_baseline(&cloud).await;
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
                if !matches!(answer.status, 201 | 202) {
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
    assert_clean(&cloud).await;
}

/// What SES's fault means for the send, and whether the mail reached SES.
struct SesCase {
    fault: Option<Fault>,
    /// The answer and code ("-" for a success).
    status: u16,
    code: &'static str,
    delivered: bool,
    /// The row after the send.
    row: &'static str,
}

fn ses_cases() -> Vec<SesCase> {
    // Nothing was sent and the key is released: the answer is this problem.
    let refused = |fault, status, code| SesCase {
        fault,
        status,
        code,
        delivered: false,
        row: "failed",
    };
    // It may have been sent (or was): 202 pending, and never sent again.
    let pending = |fault, delivered| SesCase {
        fault: Some(fault),
        status: 202,
        code: "-",
        delivered,
        row: "pending",
    };
    let hang = Duration::from_secs(15);
    vec![
        // Definite no: nothing was sent, the key is released.
        refused(
            Some(Fault::error(429, "TooManyRequestsException")),
            429,
            "rate_limited",
        ),
        refused(Some(Fault::error(400, "MessageRejected")), 502, "mail_rejected"),
        // The connection is never made (a closed port): nothing was sent.
        refused(None, 503, "dependency_unavailable"),
        // Anything else may have been sent: 202 pending, and never sent again.
        pending(Fault::error(500, "InternalFailure"), false),
        pending(Fault::error(503, "ServiceUnavailable"), false),
        pending(Fault::Drop, false),
        // Past the 10 s SendEmail timeout, unforwarded.
        pending(Fault::Hang(hang), false),
        // SES accepted it, and the answer is lost: replaced by a 500, dropped, or held back.
        pending(Fault::forward_then_error(500, "InternalFailure"), true),
        pending(Fault::ForwardThenDrop, true),
        pending(Fault::ForwardThenHang(hang), true),
    ]
}

#[tokio::test]
async fn ses_faults_get_their_documented_answers_and_nothing_is_ever_sent_twice() {
    logs::capture();
    let cloud = Cloud::new().await;
    // A port nothing listens on: the connection to SES is never made.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://{}", l.local_addr().expect("an address"))
    };
    let cases = ses_cases();
    let n = cases.len();
    let injected: Vec<u64> = futures::stream::iter(cases)
        .map(|c| {
            let (cloud, closed) = (&cloud, &closed);
            async move {
                let mut case = Case::new(cloud, 0).await;
                let what = format!("SendEmail with {:?}", c.fault);
                match &c.fault {
                    Some(fault) => case.proxy.fail("sesv2:SendEmail", fault.clone(), 1),
                    None => {
                        let mailer = aws_adapters::SesMailer::new(&sdk_for(closed), None);
                        case.apps.messaging = aws_adapters::env::messaging_from_with_mailer(
                            &cloud.env().lookup(),
                            &sdk_for(&case.proxy.endpoint()),
                            mailer,
                        )
                        .expect("messaging configured");
                    }
                }
                let answer = case.send("k").await;
                answer.assert_well_formed();
                println!("{what}: answered {}", answer.status);
                if c.code == "-" {
                    let doc = answer.assert_success(c.status);
                    assert_eq!(doc["status"], "pending", "{what}");
                } else {
                    answer.assert_problem(c.status, c.code);
                }
                let attempts = case.proxy.attempts("sesv2:SendEmail");
                assert!(
                    attempts <= 1,
                    "{what}: SendEmail is not idempotent, the SDK must not resend it ({attempts})"
                );
                let mails = assert_send_lost_nothing(cloud, &case, &answer, &what).await;
                assert_eq!(mails, usize::from(c.delivered), "{what}");
                let rows = cloud
                    .rows_where("ADMIN_MESSAGES_TABLE", "recipient_id", &case.target)
                    .await;
                assert_eq!(rows.len(), 1, "{what}: the attempt is recorded");
                assert_eq!(str_attr(&rows[0], "status"), Some(c.row), "{what}");

                // The client retries with the same key once SES is healthy again.
                case.proxy.heal();
                case.apps = cloud.apps_with(&sdk_for(&case.proxy.endpoint()));
                let retry = case.send("k").await;
                retry.assert_well_formed();
                let mails = case.proxy.accepted_emails();
                if c.status == 202 {
                    // Never sent again: the same answer, and SendEmail is not even called.
                    assert_eq!(retry.assert_success(202), answer.json(), "{what}: the retry");
                    assert_eq!(retry.header("idempotent-replayed"), Some("true"), "{what}");
                    assert_eq!(
                        case.proxy.attempts("sesv2:SendEmail"),
                        attempts,
                        "{what}: sent again"
                    );
                    assert_eq!(mails, usize::from(c.delivered), "{what}: after the retry");
                } else {
                    // Nothing was sent and the key was released: the retry sends it, once.
                    retry.assert_success(201);
                    assert_eq!(mails, 1, "{what}: the retry sends one mail");
                }
                case.proxy.injected()
            }
        })
        .buffer_unordered(n)
        .collect()
        .await;
    println!(
        "SES faults: {n} cases, {} injected ({} in this binary); each then retried with its key",
        injected.iter().sum::<u64>(),
        proxy::total_injected()
    );
    assert_clean(&cloud).await;
}

#[tokio::test]
async fn a_pending_message_becomes_unconfirmed_after_the_sweep_and_sent_with_its_send_event() {
    logs::capture();
    let cloud = Cloud::new().await;
    let case = Case::new(&cloud, 0).await;
    case.proxy.fail("sesv2:SendEmail", Fault::ForwardThenDrop, 1);
    let answer = case.send("k").await;
    let id = answer.assert_success(202)["message_id"]
        .as_str()
        .expect("a message id")
        .to_owned();
    let history = || async {
        let page = case
            .apps
            .call(
                Function::MessageUser,
                world::history(Some(&case.owner), &case.target),
            )
            .await;
        page.assert_success(200)["items"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(history().await, "pending");
    // The sweep that runs 16 minutes later.
    let report = cloud
        .sweeper_ahead(&sdk_for(&case.proxy.endpoint()), Duration::from_secs(16 * 60))
        .run()
        .await
        .expect("the sweep");
    assert!(report.unconfirmed.contains(&id), "{report:?}");
    assert_eq!(history().await, "unconfirmed");
    // SES did send it: its Send event (matched by the message id tag) says so.
    let mails = cloud.emails_to(&case.email).await;
    assert_eq!(mails.len(), 1);
    cloud
        .delivery()
        .apply(&ses_send_event(&mails[0].id, &id))
        .await
        .expect("the Send event");
    assert_eq!(history().await, "sent");
    logs::assert_clean();
}

/// After a delete: the job is completed, the data is gone, the Cognito user is gone and the
/// deletion was audited once.
async fn assert_deleted(cloud: &Cloud, case: &Case, what: &str) {
    let jobs = cloud
        .rows_where("DELETION_JOBS_TABLE", "user_id", &case.target)
        .await;
    assert_eq!(jobs.len(), 1, "{what}: one job");
    assert_eq!(str_attr(&jobs[0], "status"), Some("completed"), "{what}");
    for table in domain::cascade::CASCADE_PLAN {
        let left = cloud
            .rows_where(table.env_var, user_attr(table), &case.target)
            .await
            .len();
        assert_eq!(left, 0, "{what}: {left} rows left in {}", table.name);
    }
    assert_eq!(
        cognito::user_enabled(&cloud.emulator, &cloud.pool, &case.target).await,
        None,
        "{what}: the Cognito user is gone"
    );
    let audits = cloud
        .rows_where("SECURITY_LOGS_TABLE", "target_id", &case.target)
        .await
        .into_iter()
        .filter(|e| str_attr(e, "event_type") == Some("admin_deleted_user"))
        .count();
    assert_eq!(audits, 1, "{what}: admin_deleted_user written {audits} times");
}

/// How many delete cases run at once: most of a failed case's time is the wait for its
/// continuation (the routine's 5 s backoff, SQS's whole-second delays).
const DELETE_PARALLEL: usize = 6;

#[tokio::test]
async fn every_call_of_a_delete_that_keeps_failing_is_finished_by_the_queue_with_no_second_delete() {
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
    let outcomes: Vec<(u16, u64, Option<Duration>)> = futures::stream::iter(cases)
        .map(|(op, call, (status, code))| {
            let cloud = &cloud;
            async move {
                let case = Case::new(cloud, 3).await;
                let what = format!("{op} call {} answering {status} {code} every time", call + 1);
                case.proxy
                    .fail_after(&op, call, Fault::error(status, code), MAX_ATTEMPTS as u32);
                let first = case.delete().await;
                first.assert_well_formed();
                if !matches!(first.status, 200 | 202) {
                    first.assert_problem(503, "dependency_unavailable");
                }
                if case.proxy.injected() == 0 {
                    // The cascade runs its tables at once and reads index tables again until
                    // empty, so how many calls of one operation a delete makes varies from run
                    // to run: this run never made the faulted call (checked), and must still
                    // finish below like any other.
                    assert!(
                        case.proxy.attempts(&op) <= call as usize,
                        "{what}: the call was made but no fault was injected"
                    );
                } else {
                    assert_eq!(
                        case.proxy.injected(),
                        MAX_ATTEMPTS,
                        "{what}: {MAX_ATTEMPTS} attempts"
                    );
                }
                // Nobody sends the DELETE again: what the routine queued finishes the job.
                if cloud.job_row(&case.target).await.is_none() {
                    // Failed before the job was created: nothing started, nothing changed.
                    first.assert_problem(503, "dependency_unavailable");
                    let profile = cloud.profile_row(&case.target).await.expect("the profile");
                    assert_eq!(str_attr(&profile, "email"), Some(case.email.as_str()), "{what}");
                    assert!(!profile.contains_key("deletion_job_id"), "{what}");
                    assert_eq!(
                        cognito::user_enabled(&cloud.emulator, &cloud.pool, &case.target).await,
                        Some(true),
                        "{what}"
                    );
                    return (first.status, case.proxy.injected(), None);
                }
                // Nobody sends the DELETE again: what the routine queued finishes the job.
                let took = if first.status == 200 {
                    Duration::ZERO
                } else {
                    cloud.finish_deletion(&case.apps.worker, &case.target).await
                };
                assert_deleted(cloud, &case, &what).await;
                (first.status, case.proxy.injected(), Some(took))
            }
        })
        .buffer_unordered(DELETE_PARALLEL)
        .collect()
        .await;
    let total: u64 = outcomes.iter().map(|o| o.1).sum();
    let unreached = outcomes.iter().filter(|o| o.1 == 0).count();
    assert!(
        unreached * 4 <= n,
        "{unreached} of {n} faulted calls never came: the cases no longer match what a delete does"
    );
    let unavailable = outcomes.iter().filter(|o| o.0 == 503).count();
    let not_started = outcomes.iter().filter(|o| o.2.is_none()).count();
    let by_queue = outcomes
        .iter()
        .filter(|o| o.2.is_some_and(|t| !t.is_zero()))
        .count();
    let worst = outcomes.iter().filter_map(|o| o.2).max().unwrap_or_default();
    println!(
        "delete, a call failing {MAX_ATTEMPTS} times: {n} cases ({unavailable} answered 503, {not_started} of \
         them before the job existed), {total} faults injected ({} in this binary); {by_queue} jobs finished \
         by the queue with no second DELETE, the slowest {:.1} s after the DELETE answered",
        proxy::total_injected(),
        worst.as_secs_f64()
    );
    assert_clean(&cloud).await;
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
    assert_clean(&cloud).await;
}

#[tokio::test]
async fn a_continuation_that_cannot_be_queued_is_503_and_the_sweep_finishes_the_job() {
    logs::capture();
    let cloud = Cloud::new().await;
    let case = Case::new(&cloud, 2).await;
    // The continuation is queued before any step runs: when that fails, nothing else happens.
    case.proxy.fail(
        "sqs:SendMessage",
        Fault::error(500, "InternalError"),
        MAX_ATTEMPTS as u32,
    );
    let first = case.delete().await;
    first.assert_problem(503, "dependency_unavailable");
    assert_eq!(case.proxy.attempts("sqs:SendMessage"), MAX_ATTEMPTS as usize);
    let job = cloud.job_row(&case.target).await.expect("the job was created");
    assert_eq!(str_attr(&job, "step"), Some("audit"), "no step ran");
    assert_eq!(
        test_support::sqs::counts(&cloud.emulator, &cloud.queue)
            .await
            .total(),
        0,
        "nothing is queued"
    );
    // The queue works again. The sweep that runs once the job has stalled for its grace (120 s)
    // queues it; the worker finishes it. Nobody sends the DELETE again.
    case.proxy.heal();
    let report = cloud
        .sweeper_ahead(&sdk_for(&case.proxy.endpoint()), Duration::from_secs(180))
        .run()
        .await
        .expect("the sweep");
    let job_id = str_attr(&job, "job_id").unwrap_or_default().to_owned();
    assert!(
        report.queued.contains(&job_id),
        "the sweep queued the stalled job: {report:?}"
    );
    cloud.finish_deletion(&case.apps.worker, &case.target).await;
    assert_deleted(&cloud, &case, "after the sweep").await;

    // One SQS fault is absorbed by the SDK's retry: the job goes on through the queue.
    let mut case = Case::new(&cloud, 2).await;
    case.apps.delete.budget = Duration::ZERO;
    case.proxy
        .fail("sqs:SendMessage", Fault::error(503, "ServiceUnavailable"), 1);
    case.delete().await.assert_success(202);
    cloud.finish_deletion(&case.apps.worker, &case.target).await;
    assert_deleted(&cloud, &case, "after one SQS fault").await;
    println!("sqs: {} faults injected", proxy::total_injected());
    assert_clean(&cloud).await;
}

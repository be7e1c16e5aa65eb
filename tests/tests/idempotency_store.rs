//! `DynamoIdempotency` and `DynamoRateLimiter` against the emulator: claims carry their
//! request's owner token (a retried claim that applied is recognised as ours; only the owner
//! completes or releases), an abandoned claim is taken over with its message id, and the
//! sliding-window limiter counts each use once.

use aws_adapters::{DynamoIdempotency, DynamoRateLimiter};
use chrono::{DateTime, Duration, Utc};
use domain::ports::{Claim, ClaimRequest, Idempotency, IdempotencyRecord, RateDecision, RateLimiter};
use integration_tests::{str_attr, Harness};
use std::time::Duration as StdDuration;
use test_support::faults::{dynamodb_client, ReplaceAnswers};

fn idem(h: &Harness) -> DynamoIdempotency {
    DynamoIdempotency::new(h.dynamo.clone(), h.table("IDEMPOTENCY_TABLE"))
}

fn limiter(h: &Harness) -> DynamoRateLimiter {
    DynamoRateLimiter::new(h.dynamo.clone(), h.table("IDEMPOTENCY_TABLE"))
}

/// One request: its message id and owner token, at `now`.
struct Req {
    scope: &'static str,
    fingerprint: &'static str,
    message_id: String,
    owner: String,
    now: DateTime<Utc>,
}

impl Req {
    fn new(fingerprint: &'static str, n: u32, now: DateTime<Utc>) -> Req {
        Req {
            scope: "admin-1",
            fingerprint,
            message_id: format!("m-{n}"),
            owner: format!("owner-{n}"),
            now,
        }
    }

    fn claim<'a>(&'a self, key: &'a str) -> ClaimRequest<'a> {
        ClaimRequest {
            scope: self.scope,
            key,
            fingerprint: self.fingerprint,
            message_id: &self.message_id,
            owner: &self.owner,
            now: self.now,
            lease_until: self.now + Duration::seconds(30),
            expires_at: self.now + Duration::hours(24),
        }
    }
}

fn claimed(id: &str) -> Claim {
    Claim::Claimed {
        message_id: id.to_owned(),
    }
}

async fn in_flight_message(store: &DynamoIdempotency, key: &str, now: DateTime<Utc>) -> String {
    match store.get("admin-1", key, now).await.unwrap() {
        Some(IdempotencyRecord::InFlight { message_id, .. }) => message_id,
        other => panic!("expected the key in flight, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_key_is_claimed_and_another_request_sees_it_in_flight() {
    let h = Harness::new().await;
    let store = idem(&h);
    let now = Utc::now();
    let first = Req::new("fp", 1, now);
    assert_eq!(store.claim(&first.claim("k1")).await.unwrap(), claimed("m-1"));
    match store.claim(&Req::new("fp", 2, now).claim("k1")).await.unwrap() {
        Claim::Taken(IdempotencyRecord::InFlight {
            fingerprint,
            message_id,
            lease_until,
        }) => {
            assert_eq!((fingerprint.as_str(), message_id.as_str()), ("fp", "m-1"));
            assert_eq!(
                lease_until.timestamp_millis(),
                (now + Duration::seconds(30)).timestamp_millis()
            );
        }
        other => panic!("expected in flight, got {other:?}"),
    }
    // Another caller's key of the same text is another key.
    let mut other = Req::new("fp", 3, now);
    other.scope = "admin-2";
    assert_eq!(store.claim(&other.claim("k1")).await.unwrap(), claimed("m-3"));

    let row = h
        .get(&h.table("IDEMPOTENCY_TABLE"), "pk", "idem#admin-1#k1")
        .await
        .unwrap();
    assert_eq!(
        row["expires_at"].as_n().unwrap(),
        &(now + Duration::hours(24)).timestamp().to_string(),
        "TTL in epoch seconds"
    );
    assert_eq!(str_attr(&row, "state"), Some("in_flight"));
    assert_eq!(str_attr(&row, "owner"), Some("owner-1"));
}

#[tokio::test]
async fn a_claim_retried_by_its_own_request_is_recognised_as_its_own() {
    let h = Harness::new().await;
    let now = Utc::now();
    let req = Req::new("fp", 1, now);
    // The first write applies and its answer is lost: the SDK sends it again, which now
    // finds the key taken (by this very request).
    let lost = ReplaceAnswers::lose_dynamodb("UpdateItem", 1);
    let lossy = DynamoIdempotency::new(dynamodb_client(&h.sdk, &lost), h.table("IDEMPOTENCY_TABLE"));
    assert_eq!(lossy.claim(&req.claim("k1")).await.unwrap(), claimed("m-1"));
    assert_eq!(lost.replaced(), 1);
    assert!(lost.calls() >= 2, "the claim was sent again");
    // The same request asking again at the port: its own claim, never "in flight elsewhere".
    assert_eq!(idem(&h).claim(&req.claim("k1")).await.unwrap(), claimed("m-1"));
    // Anyone else is told it is in flight.
    assert!(matches!(
        idem(&h).claim(&Req::new("fp", 2, now).claim("k1")).await.unwrap(),
        Claim::Taken(IdempotencyRecord::InFlight { .. })
    ));
}

#[tokio::test]
async fn only_the_owner_completes_a_key_and_the_answer_is_then_replayed() {
    let h = Harness::new().await;
    let store = idem(&h);
    let now = Utc::now();
    store.claim(&Req::new("fp", 1, now).claim("k1")).await.unwrap();
    // Another request's outcome is not this key's answer.
    store
        .complete("admin-1", "k1", "owner-2", 502, "not mine")
        .await
        .unwrap();
    assert_eq!(in_flight_message(&store, "k1", now).await, "m-1");

    store
        .complete("admin-1", "k1", "owner-1", 201, r#"{"outcome":"sent"}"#)
        .await
        .unwrap();
    let done = IdempotencyRecord::Done {
        fingerprint: "fp".into(),
        status: 201,
        response: r#"{"outcome":"sent"}"#.into(),
    };
    assert_eq!(
        store.claim(&Req::new("fp", 2, now).claim("k1")).await.unwrap(),
        Claim::Taken(done.clone())
    );
    assert_eq!(store.get("admin-1", "k1", now).await.unwrap(), Some(done.clone()));
    // Completing again (a retry) changes nothing.
    store
        .complete("admin-1", "k1", "owner-1", 502, "other")
        .await
        .unwrap();
    assert_eq!(store.get("admin-1", "k1", now).await.unwrap(), Some(done));
}

#[tokio::test]
async fn only_the_owner_releases_a_key_which_can_then_be_claimed_with_a_new_message_id() {
    let h = Harness::new().await;
    let store = idem(&h);
    let now = Utc::now();
    store.claim(&Req::new("fp", 1, now).claim("k1")).await.unwrap();
    store.release("admin-1", "k1", "owner-2").await.unwrap();
    assert_eq!(
        in_flight_message(&store, "k1", now).await,
        "m-1",
        "not released by another"
    );
    store.release("admin-1", "k1", "owner-1").await.unwrap();
    assert_eq!(store.get("admin-1", "k1", now).await.unwrap(), None);
    assert_eq!(
        store.claim(&Req::new("fp", 2, now).claim("k1")).await.unwrap(),
        claimed("m-2")
    );
    // Releasing a completed key does not forget its answer.
    store
        .complete("admin-1", "k1", "owner-2", 201, "r")
        .await
        .unwrap();
    store.release("admin-1", "k1", "owner-2").await.unwrap();
    assert!(matches!(
        store.get("admin-1", "k1", now).await.unwrap(),
        Some(IdempotencyRecord::Done { .. })
    ));
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_with_its_message_id_and_its_new_owner_alone_finishes_it() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t0 = Utc::now();
    store.claim(&Req::new("fp", 1, t0).claim("k1")).await.unwrap();
    let after_lease = t0 + Duration::seconds(31);
    match store
        .claim(&Req::new("other-fp", 9, after_lease).claim("k1"))
        .await
        .unwrap()
    {
        Claim::Taken(IdempotencyRecord::InFlight { fingerprint, .. }) => assert_eq!(fingerprint, "fp"),
        other => panic!("a different request must not take the key over: {other:?}"),
    }
    // The same request (same fingerprint) from another runner takes it over, keeping m-1: no
    // second message row appears, and that row's attempt marker decides whether SES may still
    // be called.
    let heir = Req::new("fp", 2, after_lease);
    assert_eq!(store.claim(&heir.claim("k1")).await.unwrap(), claimed("m-1"));
    let row = h
        .get(&h.table("IDEMPOTENCY_TABLE"), "pk", "idem#admin-1#k1")
        .await
        .unwrap();
    assert_eq!(str_attr(&row, "owner"), Some("owner-2"));
    // The abandoned runner wakes up: it can neither finish nor release the key any more.
    store
        .complete("admin-1", "k1", "owner-1", 201, "late")
        .await
        .unwrap();
    store.release("admin-1", "k1", "owner-1").await.unwrap();
    assert_eq!(in_flight_message(&store, "k1", after_lease).await, "m-1");
    store
        .complete("admin-1", "k1", "owner-2", 202, "pending")
        .await
        .unwrap();
    assert_eq!(
        store.get("admin-1", "k1", after_lease).await.unwrap(),
        Some(IdempotencyRecord::Done {
            fingerprint: "fp".into(),
            status: 202,
            response: "pending".into(),
        })
    );
}

#[tokio::test]
async fn an_expired_key_is_new_again() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t0 = Utc::now();
    store.claim(&Req::new("fp", 1, t0).claim("k1")).await.unwrap();
    store
        .complete("admin-1", "k1", "owner-1", 201, "r")
        .await
        .unwrap();
    let next_day = t0 + Duration::hours(24) + Duration::seconds(1);
    assert_eq!(
        store.get("admin-1", "k1", next_day).await.unwrap(),
        None,
        "expired, even before TTL removes it"
    );
    assert_eq!(
        store
            .claim(&Req::new("other", 2, next_day).claim("k1"))
            .await
            .unwrap(),
        claimed("m-2")
    );
}

#[tokio::test]
async fn of_twenty_concurrent_claims_exactly_one_wins() {
    let h = Harness::new().await;
    let store = idem(&h);
    let now = Utc::now();
    let reqs: Vec<Req> = (0..20).map(|i| Req::new("fp", i, now)).collect();
    let claims = futures::future::join_all(reqs.iter().map(|r| {
        let store = store.clone();
        async move { store.claim(&r.claim("k1")).await.unwrap() }
    }))
    .await;
    let winners: Vec<_> = claims
        .iter()
        .filter(|c| matches!(c, Claim::Claimed { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn the_limiter_counts_uses_in_a_sliding_window_exactly_at_its_boundary() {
    let h = Harness::new().await;
    let limiter = limiter(&h);
    let window = StdDuration::from_secs(60);
    let bucket = "messages#admin-1";
    let t = at("2025-03-01T10:00:00Z");
    for (i, s) in [0, 10, 20].into_iter().enumerate() {
        assert_eq!(
            limiter
                .take(bucket, 3, window, t + Duration::seconds(s), &format!("use-{i}"))
                .await
                .unwrap(),
            RateDecision::Allowed
        );
    }
    // Full until the first use leaves the window, 60 s after it, to the millisecond.
    assert_eq!(
        limiter
            .take(bucket, 3, window, t + Duration::seconds(30), "use-x")
            .await
            .unwrap(),
        RateDecision::Limited {
            retry_after: StdDuration::from_secs(30)
        }
    );
    assert_eq!(
        limiter
            .take(bucket, 3, window, t + Duration::milliseconds(59_999), "use-y")
            .await
            .unwrap(),
        RateDecision::Limited {
            retry_after: StdDuration::from_millis(1)
        }
    );
    assert_eq!(
        limiter
            .take(bucket, 3, window, t + Duration::seconds(60), "use-3")
            .await
            .unwrap(),
        RateDecision::Allowed,
        "at 60 s the first use is out of the window"
    );
    // A refused use took nothing: the window holds use-1, use-2, use-3 now.
    assert_eq!(
        limiter
            .take(bucket, 3, window, t + Duration::seconds(65), "use-z")
            .await
            .unwrap(),
        RateDecision::Limited {
            retry_after: StdDuration::from_secs(5)
        }
    );
    // Other admins have their own windows.
    assert_eq!(
        limiter
            .take("messages#admin-2", 3, window, t + Duration::seconds(30), "use-a")
            .await
            .unwrap(),
        RateDecision::Allowed
    );
}

#[tokio::test]
async fn a_use_is_counted_once_however_often_its_write_is_sent() {
    let h = Harness::new().await;
    let window = StdDuration::from_secs(60);
    let now = Utc::now();
    // The first PutItem applies and its answer is lost; the SDK sends it again, which fails
    // its version condition against the write that applied: the limiter reads again and finds
    // its own use there.
    let lost = ReplaceAnswers::lose_dynamodb("PutItem", 1);
    let lossy = DynamoRateLimiter::new(dynamodb_client(&h.sdk, &lost), h.table("IDEMPOTENCY_TABLE"));
    assert_eq!(
        lossy
            .take("deletions#admin-1", 2, window, now, "use-1")
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    assert_eq!((lost.calls(), lost.replaced()), (2, 1));
    // The same use again (the caller's own retry) counts nothing either.
    assert_eq!(
        limiter(&h)
            .take("deletions#admin-1", 2, window, now, "use-1")
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    let row = h
        .get(&h.table("IDEMPOTENCY_TABLE"), "pk", "rate#deletions#admin-1")
        .await
        .unwrap();
    assert_eq!(row["uses"].as_l().unwrap().len(), 1, "one use stored");
    assert_eq!(
        limiter(&h)
            .take("deletions#admin-1", 2, window, now, "use-2")
            .await
            .unwrap(),
        RateDecision::Allowed,
        "the second of two allowed uses"
    );
    assert!(matches!(
        limiter(&h)
            .take("deletions#admin-1", 2, window, now, "use-3")
            .await
            .unwrap(),
        RateDecision::Limited { .. }
    ));
}

#[tokio::test]
async fn concurrent_takes_never_exceed_the_limit() {
    let h = Harness::new().await;
    let limiter = limiter(&h);
    let now = Utc::now();
    let ids: Vec<String> = (0..12).map(|i| format!("use-{i}")).collect();
    let decisions = futures::future::join_all(
        ids.iter()
            .map(|id| limiter.take("deletions#admin-1", 5, StdDuration::from_secs(3600), now, id)),
    )
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| matches!(d, Ok(RateDecision::Allowed)))
        .count();
    assert_eq!(allowed, 5, "{decisions:?}");
    assert_eq!(
        decisions
            .iter()
            .filter(|d| matches!(d, Ok(RateDecision::Limited { .. })))
            .count(),
        7
    );
}

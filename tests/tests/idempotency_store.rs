//! `DynamoIdempotency` and `DynamoRateLimiter` against the emulator.

use aws_adapters::{DynamoIdempotency, DynamoRateLimiter};
use chrono::{DateTime, Duration, Utc};
use domain::ports::{Claim, Idempotency, IdempotencyRecord, RateDecision, RateLimiter};
use integration_tests::{str_attr, Harness};
use std::time::Duration as StdDuration;

fn idem(h: &Harness) -> DynamoIdempotency {
    DynamoIdempotency::new(h.dynamo.clone(), h.table("IDEMPOTENCY_TABLE"))
}

struct Times {
    now: DateTime<Utc>,
    lease: DateTime<Utc>,
    expires: DateTime<Utc>,
}

fn times(now: DateTime<Utc>) -> Times {
    Times {
        now,
        lease: now + Duration::seconds(30),
        expires: now + Duration::hours(24),
    }
}

async fn claim(store: &DynamoIdempotency, key: &str, fp: &str, mid: &str, t: &Times) -> Claim {
    store
        .claim("admin-1", key, fp, mid, t.now, t.lease, t.expires)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_key_is_claimed_and_a_second_claim_sees_it_in_flight() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t = times(Utc::now());
    assert_eq!(
        claim(&store, "k1", "fp", "m-1", &t).await,
        Claim::Claimed {
            message_id: "m-1".into()
        }
    );
    match claim(&store, "k1", "fp", "m-2", &t).await {
        Claim::Taken(IdempotencyRecord::InFlight {
            fingerprint,
            message_id,
            lease_until,
        }) => {
            assert_eq!((fingerprint.as_str(), message_id.as_str()), ("fp", "m-1"));
            assert_eq!(lease_until.timestamp_millis(), t.lease.timestamp_millis());
        }
        other => panic!("expected in flight, got {other:?}"),
    }
    // Another caller's key of the same text is another key.
    let other = store
        .claim("admin-2", "k1", "fp", "m-3", t.now, t.lease, t.expires)
        .await
        .unwrap();
    assert_eq!(
        other,
        Claim::Claimed {
            message_id: "m-3".into()
        }
    );

    let row = h
        .get(&h.table("IDEMPOTENCY_TABLE"), "pk", "idem#admin-1#k1")
        .await
        .unwrap();
    assert_eq!(
        row["expires_at"].as_n().unwrap(),
        &t.expires.timestamp().to_string(),
        "TTL in epoch seconds"
    );
    assert_eq!(str_attr(&row, "state"), Some("in_flight"));
}

#[tokio::test]
async fn a_completed_key_answers_with_the_stored_response() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t = times(Utc::now());
    claim(&store, "k1", "fp", "m-1", &t).await;
    store
        .complete("admin-1", "k1", 201, r#"{"outcome":"sent"}"#)
        .await
        .unwrap();
    let done = IdempotencyRecord::Done {
        fingerprint: "fp".into(),
        status: 201,
        response: r#"{"outcome":"sent"}"#.into(),
    };
    assert_eq!(
        claim(&store, "k1", "fp", "m-2", &t).await,
        Claim::Taken(done.clone())
    );
    assert_eq!(
        store.get("admin-1", "k1", t.now).await.unwrap(),
        Some(done.clone())
    );
    // Completing again changes nothing.
    store.complete("admin-1", "k1", 502, "other").await.unwrap();
    assert_eq!(store.get("admin-1", "k1", t.now).await.unwrap(), Some(done));
}

#[tokio::test]
async fn a_released_key_can_be_claimed_again_with_a_new_message_id() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t = times(Utc::now());
    claim(&store, "k1", "fp", "m-1", &t).await;
    store.release("admin-1", "k1").await.unwrap();
    assert_eq!(store.get("admin-1", "k1", t.now).await.unwrap(), None);
    assert_eq!(
        claim(&store, "k1", "fp", "m-2", &t).await,
        Claim::Claimed {
            message_id: "m-2".into()
        }
    );
    // Releasing a completed key does not forget its answer.
    store.complete("admin-1", "k1", 201, "r").await.unwrap();
    store.release("admin-1", "k1").await.unwrap();
    assert!(matches!(
        store.get("admin-1", "k1", t.now).await.unwrap(),
        Some(IdempotencyRecord::Done { .. })
    ));
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_with_its_message_id_but_only_by_the_same_request() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t0 = times(Utc::now());
    claim(&store, "k1", "fp", "m-1", &t0).await;
    let after_lease = times(t0.lease + Duration::seconds(1));
    match claim(&store, "k1", "other-fp", "m-x", &after_lease).await {
        Claim::Taken(IdempotencyRecord::InFlight { fingerprint, .. }) => assert_eq!(fingerprint, "fp"),
        other => panic!("a different request must not take the key over: {other:?}"),
    }
    assert_eq!(
        claim(&store, "k1", "fp", "m-2", &after_lease).await,
        Claim::Claimed {
            message_id: "m-1".into()
        }
    );
}

#[tokio::test]
async fn an_expired_key_is_new_again() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t0 = times(Utc::now());
    claim(&store, "k1", "fp", "m-1", &t0).await;
    store.complete("admin-1", "k1", 201, "r").await.unwrap();
    let next_day = times(t0.expires + Duration::seconds(1));
    assert_eq!(
        store.get("admin-1", "k1", next_day.now).await.unwrap(),
        None,
        "expired, even before TTL removes it"
    );
    assert_eq!(
        claim(&store, "k1", "other", "m-2", &next_day).await,
        Claim::Claimed {
            message_id: "m-2".into()
        }
    );
}

#[tokio::test]
async fn of_twenty_concurrent_claims_exactly_one_wins() {
    let h = Harness::new().await;
    let store = idem(&h);
    let t = times(Utc::now());
    let claims = futures::future::join_all((0..20).map(|i| {
        let store = store.clone();
        let mid = format!("m-{i}");
        let (now, lease, expires) = (t.now, t.lease, t.expires);
        async move {
            store
                .claim("admin-1", "k1", "fp", &mid, now, lease, expires)
                .await
                .unwrap()
        }
    }))
    .await;
    let winners: Vec<_> = claims
        .iter()
        .filter(|c| matches!(c, Claim::Claimed { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
}

#[tokio::test]
async fn the_rate_limiter_allows_the_limit_per_window_then_says_when_to_retry() {
    let h = Harness::new().await;
    let limiter = DynamoRateLimiter::new(h.dynamo.clone(), h.table("IDEMPOTENCY_TABLE"));
    let window = StdDuration::from_secs(60);
    let now = DateTime::parse_from_rfc3339("2025-03-01T10:00:15Z")
        .unwrap()
        .with_timezone(&Utc);
    for _ in 0..3 {
        assert_eq!(
            limiter.take("messages#admin-1", 3, window, now).await.unwrap(),
            RateDecision::Allowed
        );
    }
    assert_eq!(
        limiter.take("messages#admin-1", 3, window, now).await.unwrap(),
        RateDecision::Limited {
            retry_after: StdDuration::from_secs(45)
        }
    );
    assert_eq!(
        limiter.take("messages#admin-2", 3, window, now).await.unwrap(),
        RateDecision::Allowed
    );
    let next_window = now + Duration::seconds(45);
    assert_eq!(
        limiter
            .take("messages#admin-1", 3, window, next_window)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
}

#[tokio::test]
async fn concurrent_takes_never_exceed_the_limit() {
    let h = Harness::new().await;
    let limiter = DynamoRateLimiter::new(h.dynamo.clone(), h.table("IDEMPOTENCY_TABLE"));
    let now = Utc::now();
    let decisions = futures::future::join_all(
        (0..12).map(|_| limiter.take("deletions#admin-1", 5, StdDuration::from_secs(3600), now)),
    )
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| matches!(d, Ok(RateDecision::Allowed)))
        .count();
    assert_eq!(allowed, 5, "{decisions:?}");
}

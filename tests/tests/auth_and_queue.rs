//! `CognitoAuthDirectory` and `SqsDeletionQueue` against the emulator.

use aws_adapters::{CognitoAuthDirectory, SqsDeletionQueue};
use domain::deletion::Continuation;
use domain::ports::{AuthDirectory, DeletionQueue, LockedOut};
use std::time::Duration;
use test_support::{cognito, sqs, Emulator};

#[tokio::test]
async fn locking_out_disables_the_user_and_deleting_removes_it() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_user_pool(&emulator).await;
    cognito::create_user(&emulator, &pool, "ann", Some("ann@example.com")).await;
    cognito::create_user(&emulator, &pool, "bob", None).await;
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);

    assert_eq!(auth.lock_out("ann").await.unwrap(), LockedOut::Done);
    assert_eq!(cognito::user_enabled(&emulator, &pool, "ann").await, Some(false));
    assert_eq!(
        cognito::user_enabled(&emulator, &pool, "bob").await,
        Some(true),
        "only that user"
    );
    assert_eq!(
        auth.lock_out("ann").await.unwrap(),
        LockedOut::Done,
        "again: still done"
    );

    auth.delete("ann").await.unwrap();
    assert_eq!(cognito::user_enabled(&emulator, &pool, "ann").await, None);
    assert_eq!(cognito::user_enabled(&emulator, &pool, "bob").await, Some(true));
    // Deleting a user already gone is done: it is the last step that needs the user.
    auth.delete("ann").await.unwrap();
}

#[tokio::test]
async fn locking_out_a_username_nobody_has_is_not_found_not_success() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_user_pool(&emulator).await;
    cognito::create_user(&emulator, &pool, "Google_1234", Some("ann@example.com")).await;
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);
    // A stale or wrong username (for example the user id where the username differs).
    let (_, sub) = cognito::username_and_sub(&emulator, &pool, "Google_1234").await;
    assert_eq!(auth.lock_out(&sub).await.unwrap(), LockedOut::NotFound);
    assert_eq!(auth.lock_out("never-existed").await.unwrap(), LockedOut::NotFound);
    assert_eq!(
        cognito::user_enabled(&emulator, &pool, "Google_1234").await,
        Some(true),
        "nobody else was touched"
    );
}

#[tokio::test]
async fn a_federated_user_whose_username_is_not_its_sub_is_found_by_sub() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_user_pool(&emulator).await;
    // A user signed in through Google: the username is `Google_<id>`, the sub a UUID.
    cognito::create_user(&emulator, &pool, "Google_1234", Some("ann@example.com")).await;
    cognito::create_user(&emulator, &pool, "someone-else", None).await;
    let (username, sub) = cognito::username_and_sub(&emulator, &pool, "Google_1234").await;
    assert_eq!(username, "Google_1234");
    assert_ne!(sub, username);
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);

    assert_eq!(
        auth.find_by_sub(&sub).await.unwrap().as_deref(),
        Some("Google_1234")
    );
    assert_eq!(auth.lock_out("Google_1234").await.unwrap(), LockedOut::Done);
    assert_eq!(
        cognito::user_enabled(&emulator, &pool, "Google_1234").await,
        Some(false)
    );
    assert_eq!(
        auth.find_by_sub("00000000-0000-4000-8000-000000000000")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn in_a_pool_whose_usernames_are_email_addresses_the_user_is_found_by_sub() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_email_username_pool(&emulator).await;
    cognito::create_user(&emulator, &pool, "Ann.Archer@Example.com", None).await;
    // Cognito generated the username; the address is an alias.
    let (username, sub) = cognito::username_and_sub(&emulator, &pool, "Ann.Archer@Example.com").await;
    assert_ne!(username, "Ann.Archer@Example.com");
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);

    let found = auth.find_by_sub(&sub).await.unwrap();
    assert_eq!(found.as_deref(), Some(username.as_str()));
    assert_eq!(auth.lock_out(&username).await.unwrap(), LockedOut::Done);
    assert_eq!(
        cognito::user_enabled(&emulator, &pool, &username).await,
        Some(false)
    );
    auth.delete(&username).await.unwrap();
    assert_eq!(cognito::user_enabled(&emulator, &pool, &username).await, None);
    assert_eq!(auth.find_by_sub(&sub).await.unwrap(), None, "gone");
}

#[tokio::test]
async fn a_missing_user_pool_is_an_error_not_success() {
    let emulator = Emulator::start_or_panic();
    let auth = CognitoAuthDirectory::new(emulator.cognito(), "us-east-1_doesnotexist");
    let err = auth.delete("ann").await.unwrap_err();
    assert_eq!(err.dependency, "cognito");
    assert!(!err.retryable);
    assert!(auth.lock_out("ann").await.is_err());
    assert!(auth.find_by_sub("s").await.is_err());
}

#[tokio::test]
async fn a_continuation_is_queued_as_json_with_its_delay() {
    let emulator = Emulator::start_or_panic();
    let url = sqs::create_queue(&emulator).await;
    let queue = SqsDeletionQueue::new(emulator.sqs(), &url);
    let now = Continuation {
        user_id: "u-1".into(),
        job_id: "job-1".into(),
        attempt: 0,
    };
    queue.enqueue(&now, Duration::ZERO).await.unwrap();
    let later = Continuation {
        attempt: 3,
        ..now.clone()
    };
    queue
        .enqueue(&later, Duration::from_millis(120_500))
        .await
        .unwrap();

    let bodies = sqs::drain(&emulator, &url).await;
    assert_eq!(bodies.len(), 1, "the delayed one is not visible yet");
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "user_id": "u-1", "job_id": "job-1", "attempt": 0 })
    );
    let counts = sqs::counts(&emulator, &url).await;
    assert_eq!((counts.visible, counts.delayed), (0, 1), "one delayed message");
}

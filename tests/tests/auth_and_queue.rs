//! `CognitoAuthDirectory` and `SqsDeletionQueue` against the emulator.

use aws_adapters::{CognitoAuthDirectory, SqsDeletionQueue};
use domain::ports::{AuthDirectory, DeletionQueue};
use test_support::{cognito, sqs, Emulator};

#[tokio::test]
async fn locking_out_disables_the_user_and_deleting_removes_it() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_user_pool(&emulator).await;
    cognito::create_user(&emulator, &pool, "ann", Some("ann@example.com")).await;
    cognito::create_user(&emulator, &pool, "bob", None).await;
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);

    auth.lock_out("ann").await.unwrap();
    assert_eq!(cognito::user_enabled(&emulator, &pool, "ann").await, Some(false));
    assert_eq!(
        cognito::user_enabled(&emulator, &pool, "bob").await,
        Some(true),
        "only that user"
    );
    auth.lock_out("ann").await.unwrap();

    auth.delete("ann").await.unwrap();
    assert_eq!(cognito::user_enabled(&emulator, &pool, "ann").await, None);
    assert_eq!(cognito::user_enabled(&emulator, &pool, "bob").await, Some(true));
}

#[tokio::test]
async fn a_user_already_gone_is_done_for_both_lock_out_and_delete() {
    let emulator = Emulator::start_or_panic();
    let pool = cognito::create_user_pool(&emulator).await;
    let auth = CognitoAuthDirectory::new(emulator.cognito(), &pool);
    auth.lock_out("never-existed").await.unwrap();
    auth.delete("never-existed").await.unwrap();
}

#[tokio::test]
async fn a_missing_user_pool_is_an_error_not_success() {
    let emulator = Emulator::start_or_panic();
    let auth = CognitoAuthDirectory::new(emulator.cognito(), "us-east-1_doesnotexist");
    let err = auth.delete("ann").await.unwrap_err();
    assert_eq!(err.dependency, "cognito");
    assert!(!err.retryable);
}

#[tokio::test]
async fn enqueueing_sends_the_user_and_job_ids_as_json() {
    let emulator = Emulator::start_or_panic();
    let url = sqs::create_queue(&emulator).await;
    SqsDeletionQueue::new(emulator.sqs(), &url)
        .enqueue("u-1", "job-1")
        .await
        .unwrap();
    let bodies = sqs::drain(&emulator, &url).await;
    assert_eq!(bodies.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body, serde_json::json!({ "user_id": "u-1", "job_id": "job-1" }));
}

//! The time left in the invocation. A handler sets it once ([`within`]) from the Lambda
//! context; every AWS call of the adapters inside is then bounded by it, on top of each
//! client's own operation timeout, so that one slow call cannot carry the function past its
//! Lambda timeout. A call cut short answers a timeout error, which every caller treats as
//! "may have applied" (a write is retried conditionally, a send is unconfirmed).

use aws_smithy_runtime_api::client::result::SdkError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Run `fut` with every AWS call inside it bounded by `deadline`.
pub async fn within<F: Future>(deadline: Instant, fut: F) -> F::Output {
    DEADLINE.scope(deadline, fut).await
}

/// Run `fut` bounded by `deadline` when there is one, unbounded otherwise.
pub async fn within_opt<F: Future>(deadline: Option<Instant>, fut: F) -> F::Output {
    match deadline {
        Some(d) => within(d, fut).await,
        None => fut.await,
    }
}

/// The instant `margin` before a Lambda deadline (epoch milliseconds, as the runtime API
/// gives it): the answer still gets out after the last call is cut short. `None` without a
/// deadline (0) or with one already past when the handler starts (`cargo lambda watch`
/// sends a fixed one; Lambda never does).
pub fn before_lambda_deadline(deadline_ms: u64, margin: Duration) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = std::time::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(std::time::SystemTime::now()).ok()?;
    Some(Instant::now() + left.saturating_sub(margin))
}

/// How long an invocation may work: `min(budget, time left before the Lambda deadline -
/// margin)`. The budget alone without a deadline (0: outside Lambda), or with one already
/// past when the handler starts (`cargo lambda watch` sends a fixed one; Lambda never does).
pub fn budget(budget: Duration, deadline_ms: u64, margin: Duration) -> Duration {
    if deadline_ms == 0 {
        return budget;
    }
    let deadline = std::time::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(std::time::SystemTime::now()) {
        Ok(left) => budget.min(left.saturating_sub(margin)),
        Err(_) => budget,
    }
}

/// The time left before the deadline [`within`] set, if one is set.
pub fn left() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// The SDK call bounded by the deadline: `.send().within_deadline().await`.
pub(crate) trait WithinDeadline<T, E, R>: Future<Output = Result<T, SdkError<E, R>>> + Sized {
    fn within_deadline(self) -> impl Future<Output = Result<T, SdkError<E, R>>> {
        bounded(self)
    }
}

impl<F, T, E, R> WithinDeadline<T, E, R> for F where F: Future<Output = Result<T, SdkError<E, R>>> {}

async fn bounded<T, E, R>(fut: impl Future<Output = Result<T, SdkError<E, R>>>) -> Result<T, SdkError<E, R>> {
    match DEADLINE.try_with(|d| *d) {
        Err(_) => fut.await,
        Ok(deadline) => match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result,
            Err(elapsed) => Err(SdkError::timeout_error(elapsed)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn slow() -> Result<(), SdkError<std::io::Error, ()>> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_the_deadline_answers_a_timeout_error_at_the_deadline() {
        let start = Instant::now();
        let out = within(start + Duration::from_secs(2), slow().within_deadline()).await;
        assert!(matches!(out, Err(SdkError::TimeoutError(_))), "{out:?}");
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[test]
    fn a_lambda_deadline_leaves_the_margin_and_a_missing_or_past_one_sets_none() {
        assert_eq!(before_lambda_deadline(0, Duration::from_secs(1)), None);
        assert_eq!(before_lambda_deadline(1_000, Duration::from_secs(1)), None);
        let in_10s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + Duration::from_secs(10);
        let at = before_lambda_deadline(in_10s.as_millis() as u64, Duration::from_secs(2)).unwrap();
        let left = at.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_the_call_runs_to_its_end() {
        let start = Instant::now();
        assert!(slow().within_deadline().await.is_ok());
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        assert_eq!(left(), None);
        within(start + Duration::from_secs(60), async {
            assert_eq!(left(), Some(Duration::from_secs(30)));
        })
        .await;
    }
}

//! Bounded retries with exponential backoff and jitter, for calls that are safe to repeat.
//!
//! Only reads (and placements the broker has told us did not happen) go through here; an order
//! placement whose outcome is unknown is resolved by the adapter, never retried blindly.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::BrokerError;

/// How often and how patiently a retryable call is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled each time.
    pub initial_backoff: Duration,
    /// Cap of one backoff. A broker asking us (Retry-After) to wait longer than this ends the
    /// retries: the error goes back to the caller instead of stalling the job.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): half fixed, half random
    /// ("equal jitter"), never less than the broker's `retry_after`. `None` when the broker
    /// asks for more than `max_backoff`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let half = exp / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(
                rand::rng().random_range(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX)),
            )
        };
        let wait = half + jitter;
        match retry_after {
            Some(hint) if hint > self.max_backoff => None,
            Some(hint) => Some(wait.max(hint)),
            None => Some(wait),
        }
    }

    /// Runs `call` until it succeeds, fails with a non-retryable error, or the attempts run out.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, BrokerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() && attempt < self.max_attempts => {
                    let hint = match &error {
                        BrokerError::RateLimited { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let Some(wait) = self.backoff(attempt, hint) else {
                        return Err(error);
                    };
                    tracing::warn!(
                        call = what,
                        attempt,
                        class = error.class().as_str(),
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "broker call failed, retrying"
                    );
                    if let Some(broker) = error.broker() {
                        crate::common::observe::retried(broker);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> BrokerError {
        BrokerError::Transient {
            broker: "test".into(),
            message: "503".into(),
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_respects_retry_after() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = p.backoff(1, None).unwrap();
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let later = p.backoff(8, None).unwrap();
            assert!(later >= Duration::from_millis(500) && later <= Duration::from_secs(1));
            let hinted = p.backoff(1, Some(Duration::from_millis(700))).unwrap();
            assert!(hinted >= Duration::from_millis(700));
        }
        assert_eq!(p.backoff(1, Some(Duration::from_secs(30))), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_a_bounded_number_of_times() {
        let p = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = p
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(transient())
            })
            .await;
        assert_eq!(result, Err(transient()));
        assert_eq!(calls.load(Ordering::SeqCst), p.max_attempts);
    }

    #[tokio::test(start_paused = true)]
    async fn each_retry_is_reported_to_the_observer() {
        use crate::broker::BrokerKind;
        use std::sync::Arc;

        #[derive(Default)]
        struct Count(AtomicU32);
        impl crate::common::observe::BrokerObserver for Count {
            fn retried(&self, broker: &str) {
                // Other tests of this binary retry too, under their own broker name.
                if broker == "observed" {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            fn rate_limited(&self, _: BrokerKind, _: Duration) {}
        }
        let count = Arc::new(Count::default());
        crate::common::observe::set_observer(count.clone());
        let p = RetryPolicy::default();
        let _: Result<(), _> = p
            .run("test", || async {
                Err(BrokerError::Transient {
                    broker: "observed".into(),
                    message: "503".into(),
                })
            })
            .await;
        assert_eq!(count.0.load(Ordering::SeqCst), p.max_attempts - 1);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_what_is_not_retryable_and_stops_at_success() {
        let p = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let denied = BrokerError::Permission {
            broker: "test".into(),
            message: "no".into(),
        };
        let result: Result<(), _> = p
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(denied.clone())
            })
            .await;
        assert_eq!(result, Err(denied));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result = p
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(transient())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

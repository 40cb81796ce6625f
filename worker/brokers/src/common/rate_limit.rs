//! Client-side rate limiting per API key.
//!
//! One model covers the three venues: a counter that each call raises by its cost and that decays
//! at a fixed rate; a call waits until its cost fits under the ceiling. That is Kraken's documented
//! call counter (ceiling 15, decay 0.33/s for a Starter account) and, with ceiling = burst and
//! decay = rate, a token bucket for Coinbase (~30 requests/s) and Alpaca (200/min).
//!
//! Limiters are shared per API key inside the process ([`shared`]), so a reconnecting session
//! inherits the spent budget instead of starting from zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// The budget of one API key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// The highest the counter may reach (the burst).
    pub ceiling: f64,
    /// How much the counter decays per second (the sustained rate).
    pub decay_per_sec: f64,
}

impl RateLimit {
    /// Coinbase Advanced Trade private REST: 30 requests/s per key.
    pub const COINBASE: RateLimit = RateLimit {
        ceiling: 30.0,
        decay_per_sec: 30.0,
    };
    /// Kraken REST call counter, Starter tier (the most conservative).
    pub const KRAKEN: RateLimit = RateLimit {
        ceiling: 15.0,
        decay_per_sec: 0.33,
    };
    /// Alpaca Trading API: 200 requests/min per account.
    pub const ALPACA: RateLimit = RateLimit {
        ceiling: 200.0,
        decay_per_sec: 200.0 / 60.0,
    };

    /// The three venues' defaults.
    pub const DEFAULTS: [RateLimit; 3] =
        [RateLimit::COINBASE, RateLimit::KRAKEN, RateLimit::ALPACA];

    /// How long a counter at the ceiling takes to decay to zero: after this long without calls a
    /// key has its whole burst again.
    pub fn full_recovery(&self) -> Duration {
        if self.decay_per_sec <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(self.ceiling / self.decay_per_sec)
    }
}

#[derive(Debug)]
struct Counter {
    value: f64,
    at: Instant,
    /// Set when the broker told us to stop (429 / rate limit error): nothing goes out before.
    paused_until: Option<Instant>,
}

/// A decaying call counter (see the module doc).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    counter: tokio::sync::Mutex<Counter>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            counter: tokio::sync::Mutex::new(Counter {
                value: 0.0,
                at: Instant::now(),
                paused_until: None,
            }),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits until a call of `cost` fits, then books it; returns how long it was held back (zero
    /// when it fit at once; a pause counts). Waiters are served in arrival order.
    pub async fn acquire(&self, cost: f64) -> Duration {
        let started = Instant::now();
        let mut slept = false;
        let cost = cost.min(self.limit.ceiling);
        let mut counter = self.counter.lock().await;
        if let Some(until) = counter.paused_until.take() {
            tokio::time::sleep_until(until).await;
            slept = true;
        }
        loop {
            let now = Instant::now();
            let decayed = now.duration_since(counter.at).as_secs_f64() * self.limit.decay_per_sec;
            counter.value = (counter.value - decayed).max(0.0);
            counter.at = now;
            let over = counter.value + cost - self.limit.ceiling;
            if over <= 1e-9 || self.limit.decay_per_sec <= 0.0 {
                counter.value += cost;
                return if slept {
                    started.elapsed()
                } else {
                    Duration::ZERO
                };
            }
            tokio::time::sleep(Duration::from_secs_f64(over / self.limit.decay_per_sec)).await;
            slept = true;
        }
    }

    /// Holds every call of this key back for `wait` (the broker's Retry-After), or for one call's
    /// worth of decay when the broker does not say: used when the broker reports its limit hit
    /// anyway (another process, a tighter tier), so concurrent calls stop hammering it.
    pub async fn pause(&self, wait: Option<Duration>) {
        let wait = wait.unwrap_or_else(|| {
            Duration::from_secs_f64(1.0 / self.limit.decay_per_sec.max(1e-3))
                .min(Duration::from_secs(60))
        });
        let until = Instant::now() + wait;
        let mut counter = self.counter.lock().await;
        counter.paused_until = Some(counter.paused_until.map_or(until, |u| u.max(until)));
    }
}

/// The process-wide limiter of API key `key` (a credentials fingerprint). A session asking for
/// a different limit than the one registered replaces it.
pub fn shared(key: &str, limit: RateLimit) -> Arc<RateLimiter> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<RateLimiter>>>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Arc::new(RateLimiter::new(limit)));
    if entry.limit() != limit {
        *entry = Arc::new(RateLimiter::new(limit));
    }
    entry.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_counter_recovers_in_ceiling_over_decay() {
        for (limit, seconds) in [
            (RateLimit::COINBASE, 1.0),
            (RateLimit::KRAKEN, 15.0 / 0.33),
            (RateLimit::ALPACA, 60.0),
        ] {
            let got = limit.full_recovery().as_secs_f64();
            assert!((got - seconds).abs() < 1e-6, "{limit:?}: {got}");
        }
        let frozen = RateLimit {
            ceiling: 1.0,
            decay_per_sec: 0.0,
        };
        assert_eq!(frozen.full_recovery(), Duration::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_calls_are_spaced_by_the_decay_rate() {
        let limiter = RateLimiter::new(RateLimit {
            ceiling: 3.0,
            decay_per_sec: 1.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire(1.0).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst fits");
        limiter.acquire(1.0).await;
        let after_fourth = start.elapsed();
        assert!(
            after_fourth >= Duration::from_millis(999),
            "{after_fourth:?}"
        );
        limiter.acquire(2.0).await;
        assert!(start.elapsed() >= after_fourth + Duration::from_millis(1999));
    }

    #[tokio::test(start_paused = true)]
    async fn kraken_history_calls_cost_double() {
        let limiter = RateLimiter::new(RateLimit::KRAKEN);
        let start = Instant::now();
        for _ in 0..7 {
            limiter.acquire(2.0).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire(2.0).await;
        assert!(start.elapsed() > Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_next_call_back() {
        let limiter = RateLimiter::new(RateLimit::COINBASE);
        limiter.pause(Some(Duration::from_secs(2))).await;
        let start = Instant::now();
        let held = limiter.acquire(1.0).await;
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert!(
            held >= Duration::from_secs(2),
            "the wait is reported: {held:?}"
        );
        assert_eq!(
            limiter.acquire(1.0).await,
            Duration::ZERO,
            "no wait reported"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "only the next call waits"
        );
    }

    #[test]
    fn the_registry_hands_the_same_limiter_to_the_same_key() {
        let a = shared("fp-test-a", RateLimit::COINBASE);
        let b = shared("fp-test-a", RateLimit::COINBASE);
        let c = shared("fp-test-c", RateLimit::COINBASE);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        let d = shared("fp-test-a", RateLimit::ALPACA);
        assert_eq!(d.limit(), RateLimit::ALPACA);
    }
}

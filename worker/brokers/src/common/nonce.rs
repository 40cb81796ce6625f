//! Strictly increasing nonces per API key (Kraken).
//!
//! Kraken rejects a nonce that is not greater than the last one it accepted for the key, across
//! every process using it. A nonce is `max(now in µs, last used + 1)`; the worker seeds the last
//! used value from the account lease and persists [`NonceSource::last`] back, so a new owner starts
//! above the old one even when the clocks disagree (DESIGN R2).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The nonce authority of one API key inside this process.
#[derive(Debug, Default)]
pub struct NonceSource {
    last: AtomicU64,
}

impl NonceSource {
    pub fn new() -> NonceSource {
        NonceSource::default()
    }

    /// Raises the floor: the next nonce will be above `last_used`. Never lowers it.
    pub fn seed(&self, last_used: u64) {
        self.last.fetch_max(last_used, Ordering::SeqCst);
    }

    /// The last nonce handed out (or seeded); 0 when none.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// The next nonce: `max(now in µs, last + 1)`.
    pub fn next(&self) -> u64 {
        self.next_at(now_micros())
    }

    fn next_at(&self, now: u64) -> u64 {
        let mut current = self.last.load(Ordering::SeqCst);
        loop {
            let candidate = now.max(current.saturating_add(1));
            match self.last.compare_exchange_weak(
                current,
                candidate,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return candidate,
                Err(actual) => current = actual,
            }
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_clock_when_it_is_ahead() {
        let n = NonceSource::new();
        assert_eq!(n.next_at(1_000), 1_000);
        assert_eq!(n.next_at(2_000), 2_000);
        assert_eq!(n.last(), 2_000);
    }

    #[test]
    fn never_repeats_or_goes_back_when_the_clock_stalls_or_jumps_back() {
        let n = NonceSource::new();
        assert_eq!(n.next_at(5_000), 5_000);
        assert_eq!(n.next_at(5_000), 5_001);
        assert_eq!(n.next_at(10), 5_002);
    }

    #[test]
    fn a_seed_from_the_lease_lifts_the_floor_above_a_skewed_clock() {
        let n = NonceSource::new();
        let ahead = now_micros() + 60_000_000;
        n.seed(ahead);
        assert_eq!(n.next(), ahead + 1);
        n.seed(5);
        assert_eq!(n.last(), ahead + 1, "seeding lower never lowers the floor");
    }

    #[test]
    fn concurrent_callers_get_distinct_increasing_values() {
        let n = std::sync::Arc::new(NonceSource::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let n = n.clone();
                std::thread::spawn(move || (0..1000).map(|_| n.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let len = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), len);
    }
}

//! Current prices: a seeded random walk, scripted paths, or frozen values for exact tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;

/// Best bid, best ask and last trade of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub bid: Decimal,
    pub ask: Decimal,
    pub last: Decimal,
    pub time: DateTime<Utc>,
}

/// How prices move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceMotion {
    /// Interval between random-walk steps.
    pub tick: Duration,
    /// Largest relative move per tick (0.001 = 0.1 %); uniform in ±volatility.
    pub volatility: Decimal,
    /// Relative distance from bid to ask (0 = bid = ask = last).
    pub spread: Decimal,
    /// Seed of the walk.
    pub seed: u64,
    /// Freeze every price (no walk at all).
    pub frozen: bool,
}

impl Default for PriceMotion {
    fn default() -> Self {
        PriceMotion {
            tick: Duration::from_secs(1),
            volatility: Decimal::new(1, 3),
            spread: Decimal::ZERO,
            seed: 0,
            frozen: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    last: Decimal,
    frozen: bool,
    step: Decimal,
    time: DateTime<Utc>,
}

/// All current prices, shared by every broker.
#[derive(Debug)]
pub struct PriceBook {
    entries: RwLock<HashMap<String, Entry>>,
    spread: Decimal,
    scripts: Mutex<HashMap<String, AbortHandle>>,
}

fn round_to_step(value: Decimal, step: Decimal) -> Decimal {
    if step.is_zero() {
        return value;
    }
    let steps = (value / step).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let rounded = steps * step;
    if rounded <= Decimal::ZERO {
        step
    } else {
        rounded.normalize()
    }
}

impl PriceBook {
    pub fn new(spread: Decimal) -> PriceBook {
        PriceBook {
            entries: RwLock::new(HashMap::new()),
            spread,
            scripts: Mutex::new(HashMap::new()),
        }
    }

    /// Lists an instrument at `price`, quoted in multiples of `step`.
    pub fn list(&self, symbol: &str, price: Decimal, step: Decimal, frozen: bool) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            symbol.to_string(),
            Entry {
                last: price,
                frozen,
                step,
                time: Utc::now(),
            },
        );
    }

    pub fn quote(&self, symbol: &str) -> Option<Quote> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(symbol).map(|e| self.to_quote(e))
    }

    fn to_quote(&self, entry: &Entry) -> Quote {
        let ask = if self.spread.is_zero() {
            entry.last
        } else {
            round_to_step(entry.last * (Decimal::ONE + self.spread), entry.step)
        };
        Quote {
            bid: entry.last,
            ask,
            last: entry.last,
            time: entry.time,
        }
    }

    /// Sets a price. A set price is frozen unless `frozen` is false.
    pub fn set(&self, symbol: &str, price: Decimal, frozen: bool) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(symbol) {
            Some(entry) => {
                entry.last = price;
                entry.frozen = frozen;
                entry.time = Utc::now();
                true
            }
            None => false,
        }
    }

    /// Freezes or thaws one symbol, or all when `symbol` is `None`.
    pub fn freeze(&self, symbol: Option<&str>, frozen: bool) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for (name, entry) in entries.iter_mut() {
            if symbol.is_none_or(|s| s == name) {
                entry.frozen = frozen;
            }
        }
    }

    pub fn snapshot(&self) -> Vec<(String, Quote, bool)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = entries
            .iter()
            .map(|(symbol, e)| (symbol.clone(), self.to_quote(e), e.frozen))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// One random-walk step of every unfrozen price.
    fn step(&self, rng: &mut StdRng, volatility: Decimal) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = entries.keys().cloned().collect();
        names.sort();
        let now = Utc::now();
        for name in names {
            let draw: i64 = rng.random_range(-10_000..=10_000);
            if let Some(entry) = entries.get_mut(&name) {
                if entry.frozen {
                    continue;
                }
                let change = entry.last * volatility * Decimal::new(draw, 4);
                entry.last = round_to_step(entry.last + change, entry.step);
                entry.time = now;
            }
        }
    }

    /// Runs the random walk until aborted.
    pub async fn walk(self: Arc<Self>, motion: PriceMotion) {
        let mut rng = StdRng::seed_from_u64(motion.seed);
        let mut interval = tokio::time::interval(motion.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            self.step(&mut rng, motion.volatility);
        }
    }

    /// Plays `prices` one after another every `every`, then holds the last one (frozen).
    pub fn script(self: &Arc<Self>, symbol: &str, prices: Vec<Decimal>, every: Duration) -> bool {
        if self.quote(symbol).is_none() {
            return false;
        }
        let book = Arc::clone(self);
        let name = symbol.to_string();
        let task = tokio::spawn(async move {
            for (i, price) in prices.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(every).await;
                }
                book.set(&name, price, true);
            }
        });
        let mut scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = scripts.insert(symbol.to_string(), task.abort_handle()) {
            old.abort();
        }
        true
    }
}

impl Drop for PriceBook {
    fn drop(&mut self) {
        let scripts = self.scripts.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, task) in scripts.drain() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_deterministic_and_skips_frozen() {
        let run = || {
            let book = PriceBook::new(Decimal::ZERO);
            book.list("BTC-USD", Decimal::from(64000), Decimal::new(1, 2), false);
            book.list("ETH-USD", Decimal::from(3400), Decimal::new(1, 2), true);
            let mut rng = StdRng::seed_from_u64(7);
            for _ in 0..50 {
                book.step(&mut rng, Decimal::new(1, 2));
            }
            (
                book.quote("BTC-USD").map(|q| q.last),
                book.quote("ETH-USD").map(|q| q.last),
            )
        };
        let (a, eth) = run();
        let (b, _) = run();
        assert_eq!(a, b);
        assert_ne!(a, Some(Decimal::from(64000)));
        assert_eq!(eth, Some(Decimal::from(3400)));
    }
}

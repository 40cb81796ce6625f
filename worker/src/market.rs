//! Public market data shared by every account on this worker: prices, product rules and market
//! hours, per venue (broker + endpoint).
//!
//! Prices are fetched in batches and reused for `price_cache_ttl` (Kraken's public limit is about
//! one request per second per IP); concurrent jobs needing prices from the same venue wait for one
//! fetch instead of sending their own. A symbol the broker cannot price is remembered as unpriced
//! for the same time, never replaced by a guess (DESIGN §3.3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use nija_brokers::{Broker, ProductRules};
use nija_policy::snapshot::PriceObservation;
use nija_proto::Symbol;

/// How long product rules are reused (they change rarely; a failed look-up is not remembered).
const RULES_TTL: Duration = Duration::from_secs(600);

struct Cached<T> {
    at: Instant,
    value: T,
}

#[derive(Default)]
struct Venue {
    prices: RwLock<HashMap<Symbol, Cached<PriceObservation>>>,
    rules: RwLock<HashMap<Symbol, Cached<ProductRules>>>,
    open: RwLock<HashMap<Symbol, Cached<bool>>>,
    /// Held while a price batch is fetched, so concurrent jobs share it.
    fetching: tokio::sync::Mutex<()>,
}

/// The shared cache; cheap to clone.
#[derive(Clone)]
pub struct MarketCache {
    ttl: Duration,
    venues: Arc<Mutex<HashMap<String, Arc<Venue>>>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl MarketCache {
    pub fn new(price_ttl: Duration) -> MarketCache {
        MarketCache {
            ttl: price_ttl,
            venues: Arc::default(),
        }
    }

    fn venue(&self, key: &str) -> Arc<Venue> {
        let mut venues = self.venues.lock().unwrap_or_else(|p| p.into_inner());
        venues.entry(key.to_string()).or_default().clone()
    }

    fn fresh_prices(
        &self,
        venue: &Venue,
        symbols: &[Symbol],
        out: &mut HashMap<Symbol, PriceObservation>,
    ) -> Vec<Symbol> {
        let prices = read(&venue.prices);
        let mut missing = Vec::new();
        for symbol in symbols {
            match prices.get(symbol) {
                Some(c) if c.at.elapsed() < self.ttl => {
                    out.insert(symbol.clone(), c.value.clone());
                }
                _ => missing.push(symbol.clone()),
            }
        }
        missing
    }

    /// Prices of `symbols` at `venue`, fetched through `broker` when not fresh in the cache.
    /// Every symbol gets an observation: a failed fetch leaves it unpriced with the reason.
    pub async fn prices(
        &self,
        venue_key: &str,
        broker: &dyn Broker,
        symbols: &[Symbol],
        timeout: Duration,
    ) -> HashMap<Symbol, PriceObservation> {
        let venue = self.venue(venue_key);
        let mut out = HashMap::with_capacity(symbols.len());
        if self.fresh_prices(&venue, symbols, &mut out).is_empty() {
            return out;
        }
        let _fetch = venue.fetching.lock().await;
        let missing = self.fresh_prices(&venue, symbols, &mut out);
        if missing.is_empty() {
            return out;
        }
        // One request refreshes every symbol this venue has been asked for, so the accounts that
        // follow (holding other symbols) find theirs fresh too.
        let mut batch: Vec<Symbol> = read(&venue.prices).keys().cloned().collect();
        for symbol in &missing {
            if !read(&venue.prices).contains_key(symbol) {
                batch.push(symbol.clone());
            }
        }
        let mut fetched = tokio::time::timeout(timeout, broker.quotes(&batch)).await;
        if !matches!(fetched, Ok(Ok(_))) && batch.len() > missing.len() {
            // The wider batch failed as a whole: ask again for just what this job needs, so one
            // bad symbol of another account never leaves this one unpriced.
            fetched = tokio::time::timeout(timeout, broker.quotes(&missing)).await;
        }
        let now = Utc::now();
        let at = Instant::now();
        match fetched {
            Ok(Ok(quotes)) => {
                let mut prices = write(&venue.prices);
                for (symbol, quote) in quotes {
                    let observation = match quote {
                        Ok(q) => PriceObservation::Priced {
                            price: q.price,
                            bid: q.bid,
                            ask: q.ask,
                            observed_at: q.time.unwrap_or(now),
                        },
                        Err(err) => PriceObservation::Unpriced {
                            reason: format!("{}: {err}", err.class().as_str()),
                        },
                    };
                    if missing.contains(&symbol) {
                        out.insert(symbol.clone(), observation.clone());
                    }
                    prices.insert(
                        symbol,
                        Cached {
                            at,
                            value: observation,
                        },
                    );
                }
            }
            // A failure of the whole call is not remembered: the next job tries again.
            Ok(Err(err)) => {
                let reason = format!("price_fetch_failed: {err}");
                for symbol in &missing {
                    out.insert(
                        symbol.clone(),
                        PriceObservation::Unpriced {
                            reason: reason.clone(),
                        },
                    );
                }
            }
            Err(_) => {
                for symbol in &missing {
                    out.insert(
                        symbol.clone(),
                        PriceObservation::Unpriced {
                            reason: format!("price_fetch_failed: timed out after {timeout:?}"),
                        },
                    );
                }
            }
        }
        // The broker may leave a requested symbol out of its answer: unpriced, never guessed.
        for symbol in &missing {
            out.entry(symbol.clone())
                .or_insert_with(|| PriceObservation::Unpriced {
                    reason: "price_fetch_failed: the broker returned no quote".into(),
                });
        }
        out
    }

    /// A product's rules, or `None` when the broker cannot give them now.
    pub async fn rules(
        &self,
        venue_key: &str,
        broker: &dyn Broker,
        symbol: &Symbol,
        timeout: Duration,
    ) -> Option<ProductRules> {
        let venue = self.venue(venue_key);
        if let Some(c) = read(&venue.rules).get(symbol)
            && c.at.elapsed() < RULES_TTL
        {
            return Some(c.value.clone());
        }
        match tokio::time::timeout(timeout, broker.product_rules(symbol)).await {
            Ok(Ok(rules)) => {
                write(&venue.rules).insert(
                    symbol.clone(),
                    Cached {
                        at: Instant::now(),
                        value: rules.clone(),
                    },
                );
                Some(rules)
            }
            Ok(Err(err)) => {
                tracing::debug!(symbol = %symbol, error = %err, "product rules unavailable");
                None
            }
            Err(_) => None,
        }
    }

    /// Whether `symbol` may receive a market order now; `false` when the broker cannot say.
    pub async fn market_open(
        &self,
        venue_key: &str,
        broker: &dyn Broker,
        symbol: &Symbol,
        timeout: Duration,
    ) -> bool {
        let venue = self.venue(venue_key);
        if let Some(c) = read(&venue.open).get(symbol)
            && c.at.elapsed() < self.ttl
        {
            return c.value;
        }
        let open = matches!(
            tokio::time::timeout(timeout, broker.market_open(symbol)).await,
            Ok(Ok(true))
        );
        write(&venue.open).insert(
            symbol.clone(),
            Cached {
                at: Instant::now(),
                value: open,
            },
        );
        open
    }
}

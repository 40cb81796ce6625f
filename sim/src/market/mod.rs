//! What is listed, at what price, under which rules: shared by every account and broker.

pub mod instruments;
pub mod prices;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rust_decimal::Decimal;

use crate::broker::Broker;
use instruments::{Catalog, Instrument, Rules};
use prices::{PriceBook, Quote};

/// Instruments, prices, per-broker rules and the Alpaca market clock.
#[derive(Debug)]
pub struct Market {
    pub catalog: Catalog,
    pub prices: Arc<PriceBook>,
    rules: HashMap<(Broker, String), Rules>,
    equity_market_open: AtomicBool,
}

impl Market {
    pub fn new(
        catalog: Catalog,
        prices: Arc<PriceBook>,
        rules: HashMap<(Broker, String), Rules>,
        equity_market_open: bool,
    ) -> Market {
        Market {
            catalog,
            prices,
            rules,
            equity_market_open: AtomicBool::new(equity_market_open),
        }
    }

    pub fn instrument(&self, symbol: &str) -> Option<&Instrument> {
        self.catalog.get(symbol)
    }

    pub fn rules(&self, broker: Broker, symbol: &str) -> Option<&Rules> {
        self.rules.get(&(broker, symbol.to_string()))
    }

    pub fn quote(&self, symbol: &str) -> Option<Quote> {
        self.prices.quote(symbol)
    }

    /// Last price of the USD instrument whose base is `asset` (`Some(1)` for USD itself).
    pub fn usd_price(&self, asset: &str) -> Option<Decimal> {
        if asset == "USD" {
            return Some(Decimal::ONE);
        }
        self.quote(&format!("{asset}-USD")).map(|q| q.last)
    }

    pub fn equity_market_open(&self) -> bool {
        self.equity_market_open.load(Ordering::Relaxed)
    }

    pub fn set_equity_market_open(&self, open: bool) {
        self.equity_market_open.store(open, Ordering::Relaxed);
    }
}

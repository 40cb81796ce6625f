//! The two-way mapping between Kraken's names and nija's canonical ones, learned from `Assets`
//! and `AssetPairs` at connect: `XXBT`/`XBT` → `BTC`, `ZUSD` → `USD`, pair `XXBTZUSD` (altname
//! `XBTUSD`) ↔ `BTC-USD`. Anything not learned is unknown, never guessed.

use std::collections::{BTreeMap, HashMap};

use nija_proto::{Quantity, Symbol, Usd};
use rust_decimal::Decimal;

use super::http::models::{AssetInfo, AssetPair};
use crate::broker::ProductRules;
use crate::error::BrokerError;

/// Kraken's names for assets whose common code differs (ccxt's table, the ones nija meets).
const ALIASES: &[(&str, &str)] = &[("XBT", "BTC"), ("XDG", "DOGE")];

/// A tradable pair as nija needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInfo {
    /// Canonical pair key (`XXBTZUSD`): what requests send and responses are keyed by.
    pub key: String,
    pub altname: String,
    pub symbol: Symbol,
    pub lot_decimals: u32,
    pub ordermin: Option<Decimal>,
    pub costmin: Option<Decimal>,
    pub status: Option<String>,
}

impl PairInfo {
    pub fn rules(&self) -> ProductRules {
        let increment = Decimal::new(1, self.lot_decimals.min(28));
        ProductRules {
            symbol: self.symbol.clone(),
            min_size: Quantity(self.ordermin.unwrap_or(increment)),
            size_increment: Quantity(increment),
            min_notional: self.costmin.map(Usd),
            market_hours_only: false,
            tradable: self.status.as_deref().is_none_or(|s| s == "online"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct KrakenSymbols {
    /// Kraken asset id (`XXBT`) and altname (`XBT`) → canonical code (`BTC`).
    assets: HashMap<String, String>,
    pairs: HashMap<Symbol, PairInfo>,
    /// Pair key and altname → canonical symbol.
    by_name: HashMap<String, Symbol>,
}

/// The canonical code of a Kraken altname.
pub fn canonical_asset(altname: &str) -> String {
    let upper = altname.trim().to_ascii_uppercase();
    ALIASES
        .iter()
        .find(|(kraken, _)| *kraken == upper)
        .map_or(upper, |(_, common)| (*common).to_string())
}

impl KrakenSymbols {
    pub fn new(
        assets: &BTreeMap<String, AssetInfo>,
        pairs: &BTreeMap<String, AssetPair>,
    ) -> KrakenSymbols {
        let mut map = KrakenSymbols::default();
        for (id, info) in assets {
            let code = canonical_asset(&info.altname);
            map.assets.insert(id.clone(), code.clone());
            map.assets.insert(info.altname.clone(), code);
        }
        for (key, pair) in pairs {
            // Dark-pool and other variant books (`XXBTZUSD.d`) share base and quote.
            if key.contains('.') || pair.altname.contains('.') {
                continue;
            }
            let (Some(base), Some(quote)) =
                (map.assets.get(&pair.base), map.assets.get(&pair.quote))
            else {
                tracing::debug!(pair = key, "Kraken pair with an unknown asset skipped");
                continue;
            };
            let Ok(symbol) = Symbol::from_parts(base, quote) else {
                tracing::debug!(pair = key, "Kraken pair without a canonical name skipped");
                continue;
            };
            if map.pairs.contains_key(&symbol) {
                tracing::warn!(pair = key, %symbol, "two Kraken pairs map to one symbol; keeping the first");
                continue;
            }
            map.by_name.insert(key.clone(), symbol.clone());
            map.by_name.insert(pair.altname.clone(), symbol.clone());
            map.pairs.insert(
                symbol.clone(),
                PairInfo {
                    key: key.clone(),
                    altname: pair.altname.clone(),
                    symbol,
                    lot_decimals: pair.lot_decimals,
                    ordermin: pair.ordermin,
                    costmin: pair.costmin,
                    status: pair.status.clone(),
                },
            );
        }
        map
    }

    /// The canonical code of a Kraken asset id or altname.
    pub fn asset(&self, kraken: &str) -> Option<&str> {
        self.assets.get(kraken).map(String::as_str)
    }

    pub fn pair(&self, symbol: &Symbol) -> Result<&PairInfo, BrokerError> {
        self.pairs
            .get(symbol)
            .ok_or_else(|| BrokerError::UnknownSymbol {
                symbol: symbol.to_string(),
            })
    }

    /// The canonical symbol of a pair key or altname.
    pub fn symbol(&self, kraken_pair: &str) -> Option<&Symbol> {
        self.by_name.get(kraken_pair)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

//! The two-way mapping between Alpaca's names and nija's canonical ones. Crypto pairs are learned
//! from the asset list at connect: `BTC/USD` (orders, data) and `BTCUSD` (positions) ↔ `BTC-USD`.
//! Equities are tickers quoted in the account's quote: `BRK.B` ↔ `BRK.B-USD`.

use std::collections::HashMap;

use nija_proto::Symbol;

use super::http::models::Asset;
use crate::error::BrokerError;

/// What Alpaca calls a canonical symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlpacaName {
    /// `pair` is the slash form for orders and data, `position` the form positions use.
    Crypto {
        pair: String,
        position: String,
    },
    Equity {
        ticker: String,
    },
}

impl AlpacaName {
    /// The name orders and market data use.
    pub fn order_symbol(&self) -> &str {
        match self {
            AlpacaName::Crypto { pair, .. } => pair,
            AlpacaName::Equity { ticker } => ticker,
        }
    }

    pub fn is_crypto(&self) -> bool {
        matches!(self, AlpacaName::Crypto { .. })
    }
}

#[derive(Debug, Clone, Default)]
pub struct AlpacaSymbols {
    crypto: HashMap<Symbol, Asset>,
    by_name: HashMap<String, Symbol>,
    quote: String,
}

impl AlpacaSymbols {
    pub fn new(crypto_assets: &[Asset], quote: &str) -> AlpacaSymbols {
        let mut map = AlpacaSymbols {
            quote: quote.to_string(),
            ..AlpacaSymbols::default()
        };
        for asset in crypto_assets {
            let Some((base, quote)) = asset.symbol.split_once('/') else {
                tracing::debug!(
                    symbol = asset.symbol,
                    "Alpaca crypto asset without a slash skipped"
                );
                continue;
            };
            let Ok(symbol) = Symbol::from_parts(base, quote) else {
                continue;
            };
            map.by_name.insert(asset.symbol.clone(), symbol.clone());
            map.by_name.insert(format!("{base}{quote}"), symbol.clone());
            map.crypto.insert(symbol, asset.clone());
        }
        map
    }

    pub fn is_empty(&self) -> bool {
        self.crypto.is_empty()
    }

    /// The crypto asset of a canonical symbol, if it is one.
    pub fn crypto_asset(&self, symbol: &Symbol) -> Option<&Asset> {
        self.crypto.get(symbol)
    }

    pub fn name(&self, symbol: &Symbol) -> Result<AlpacaName, BrokerError> {
        if let Some(asset) = self.crypto.get(symbol) {
            return Ok(AlpacaName::Crypto {
                pair: asset.symbol.clone(),
                position: asset.symbol.replace('/', ""),
            });
        }
        if symbol.quote() == self.quote {
            return Ok(AlpacaName::Equity {
                ticker: symbol.base().to_string(),
            });
        }
        Err(BrokerError::UnknownSymbol {
            symbol: symbol.to_string(),
        })
    }

    /// The canonical symbol of a position or order symbol; crypto must be a learned pair. An
    /// equity whose canonical name is also a crypto pair's (ReneSola `SOL` vs Solana `SOL/USD`)
    /// has no unambiguous name: `None`, never one of the two.
    pub fn symbol(&self, alpaca: &str, asset_class: &str) -> Option<Symbol> {
        match asset_class {
            "crypto" => self.by_name.get(alpaca).cloned(),
            "" if self.by_name.contains_key(alpaca) => self.by_name.get(alpaca).cloned(),
            _ if alpaca.contains('/') => None,
            _ => {
                let symbol = Symbol::from_parts(alpaca, &self.quote).ok()?;
                (!self.crypto.contains_key(&symbol)).then_some(symbol)
            }
        }
    }
}

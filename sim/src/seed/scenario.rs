//! Scenario files (JSON or TOML): the accounts, balances, prices and rules a simulator starts with.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::exchange::account::AccountType;
use crate::market::instruments::AssetClass;

/// Everything a simulator starts with. Generated seeds produce the same structure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of the credentials and the price walk (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Starting prices by canonical symbol; a symbol not in the default universe is listed as crypto.
    #[serde(default)]
    pub prices: BTreeMap<String, Decimal>,
    /// Rule overrides.
    #[serde(default)]
    pub products: Vec<ProductOverride>,
    /// Canonical symbols whose price lookups fail (at every broker).
    #[serde(default)]
    pub price_failures: Vec<String>,
    /// Whether the Alpaca equity market starts open (default true).
    #[serde(default)]
    pub market_open: Option<bool>,
    /// Taker fee rate per broker (0.006 = 0.6 %; default 0).
    #[serde(default)]
    pub fees: BTreeMap<Broker, Decimal>,
    #[serde(default)]
    pub accounts: Vec<ScenarioAccount>,
}

/// Size rules for one symbol, at one broker or at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductOverride {
    pub symbol: String,
    #[serde(default)]
    pub broker: Option<Broker>,
    #[serde(default)]
    pub class: Option<AssetClass>,
    #[serde(default)]
    pub step: Option<Decimal>,
    #[serde(default)]
    pub min_qty: Option<Decimal>,
    #[serde(default)]
    pub min_notional: Option<Decimal>,
    #[serde(default)]
    pub price_step: Option<Decimal>,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioAccount {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AccountType,
    pub broker: Broker,
    /// USD cash.
    #[serde(default)]
    pub cash: Decimal,
    #[serde(default)]
    pub holdings: Vec<ScenarioHolding>,
}

/// A holding: asset (`BTC`, `AAPL`) or symbol (`BTC-USD`), quantity and average entry price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioHolding {
    pub asset: String,
    pub quantity: Decimal,
    #[serde(default)]
    pub avg_entry: Option<Decimal>,
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid JSON: {message}")]
    Json { path: String, message: String },
    #[error("scenario {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("scenario account {0:?}: {1}")]
    Account(String, String),
}

impl Scenario {
    /// Reads a `.json` or `.toml` scenario (by extension; otherwise JSON is tried, then TOML).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let json = || {
            serde_json::from_str(&text).map_err(|e| ScenarioError::Json {
                path: shown.clone(),
                message: e.to_string(),
            })
        };
        let toml = || {
            toml::from_str(&text).map_err(|e| ScenarioError::Toml {
                path: shown.clone(),
                message: e.to_string(),
            })
        };
        if is_toml {
            toml()
        } else {
            json().or_else(|_| toml())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_scenario_parses() {
        let text = r#"
seed = 3
price_failures = ["FOO-USD"]
[prices]
"BTC-USD" = "50000"
"FOO-USD" = 2
[[accounts]]
id = "platform"
type = "platform"
broker = "kraken"
cash = "1000"
[[accounts.holdings]]
asset = "BTC"
quantity = "0.5"
avg_entry = "48000"
"#;
        let scenario: Scenario = toml::from_str(text).unwrap();
        assert_eq!(scenario.accounts[0].holdings[0].quantity.to_string(), "0.5");
        assert_eq!(scenario.prices["FOO-USD"], Decimal::from(2));
    }
}

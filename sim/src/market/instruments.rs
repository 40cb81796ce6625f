//! The instruments the simulator lists, their per-broker names and their trading rules.
//!
//! Kraken names legacy assets with `X`/`Z` prefixes (`XXBT`, `ZUSD`, pair `XXBTZUSD`, altname
//! `XBTUSD`) and newer ones without (`SOL`, `SOLUSD`); Alpaca writes crypto as `BTC/USD` in orders
//! and data but `BTCUSD` in positions. These tables are the single place those names live.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::broker::Broker;

/// Crypto or a US equity (equities trade only at Alpaca, only while the market is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    Crypto,
    UsEquity,
}

/// One listed instrument in canonical `BASE-QUOTE` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub class: AssetClass,
}

impl Instrument {
    pub fn new(base: &str, quote: &str, class: AssetClass) -> Instrument {
        Instrument {
            symbol: format!("{base}-{quote}"),
            base: base.to_string(),
            quote: quote.to_string(),
            class,
        }
    }

    pub fn listed_at(&self, broker: Broker) -> bool {
        self.class == AssetClass::Crypto || broker == Broker::Alpaca
    }
}

/// Size rules of one instrument at one broker, in broker-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Quantity step (Coinbase `base_increment`, Kraken `10^-lot_decimals`, Alpaca `min_trade_increment`).
    pub step: Decimal,
    /// Minimum quantity (Coinbase `base_min_size`, Kraken `ordermin`, Alpaca `min_order_size`).
    pub min_qty: Decimal,
    /// Minimum order value in quote currency (Coinbase `quote_min_size`, Kraken `costmin`, Alpaca's minimum notional).
    pub min_notional: Decimal,
    /// Price step.
    pub price_step: Decimal,
}

/// Default crypto universe: base asset and a starting USD price.
const CRYPTO: &[(&str, &str)] = &[
    ("BTC", "64000"),
    ("ETH", "3400"),
    ("SOL", "150"),
    ("XRP", "0.6"),
    ("DOGE", "0.15"),
    ("ADA", "0.45"),
    ("LTC", "80"),
    ("DOT", "7"),
    ("LINK", "15"),
    ("AVAX", "35"),
    ("ATOM", "9"),
    ("UNI", "8"),
    ("XLM", "0.11"),
    ("BCH", "450"),
    ("AAVE", "95"),
    ("ALGO", "0.18"),
    ("FIL", "5.5"),
    ("NEAR", "5"),
    ("SHIB", "0.000025"),
    ("PEPE", "0.000012"),
];

/// Default equity universe (Alpaca only).
const EQUITIES: &[(&str, &str)] = &[
    ("AAPL", "190"),
    ("MSFT", "420"),
    ("NVDA", "120"),
    ("TSLA", "180"),
    ("AMZN", "185"),
    ("GOOGL", "170"),
    ("META", "480"),
    ("SPY", "530"),
    ("BRK.B", "410"),
    ("AMD", "160"),
];

fn dec(text: &str) -> Decimal {
    // The tables above are literals checked by the `default_universe_parses` test.
    text.parse().unwrap_or(Decimal::ZERO)
}

/// The default instruments with their starting prices.
pub fn default_universe() -> Vec<(Instrument, Decimal)> {
    let crypto = CRYPTO
        .iter()
        .map(|(base, price)| (Instrument::new(base, "USD", AssetClass::Crypto), dec(price)));
    let equities = EQUITIES.iter().map(|(base, price)| {
        (
            Instrument::new(base, "USD", AssetClass::UsEquity),
            dec(price),
        )
    });
    crypto.chain(equities).collect()
}

/// Rounds `value` to two significant digits, upwards.
fn two_significant_up(value: Decimal) -> Decimal {
    if value.is_zero() {
        return value;
    }
    let mut scale = 0u32;
    let mut probe = value;
    while probe < Decimal::TEN && scale < 20 {
        probe *= Decimal::TEN;
        scale += 1;
    }
    let mut rounded =
        value.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::AwayFromZero);
    rounded.rescale(scale);
    rounded.normalize()
}

/// Default rules for an instrument at a broker, derived from its starting price.
pub fn default_rules(broker: Broker, instrument: &Instrument, price: Decimal) -> Rules {
    let price_step = if price >= Decimal::ONE {
        Decimal::new(1, 2)
    } else {
        Decimal::new(1, 8)
    };
    let worth = |usd: i64| {
        if price.is_zero() {
            Decimal::ZERO
        } else {
            two_significant_up(Decimal::from(usd) / price)
        }
    };
    match (broker, instrument.class) {
        (Broker::Coinbase, _) => Rules {
            step: Decimal::new(1, 8),
            min_qty: Decimal::new(1, 8),
            min_notional: Decimal::ONE,
            price_step,
        },
        (Broker::Kraken, _) => Rules {
            step: Decimal::new(1, 8),
            min_qty: worth(5),
            min_notional: Decimal::new(5, 1),
            price_step,
        },
        (Broker::Alpaca, AssetClass::Crypto) => Rules {
            step: Decimal::new(1, 9),
            min_qty: worth(1),
            min_notional: Decimal::ONE,
            price_step,
        },
        (Broker::Alpaca, AssetClass::UsEquity) => Rules {
            step: Decimal::new(1, 9),
            min_qty: Decimal::new(1, 9),
            min_notional: Decimal::ONE,
            price_step: Decimal::new(1, 2),
        },
    }
}

/// Kraken's id and altname for an asset (`BTC` → `XXBT`/`XBT`, `USD` → `ZUSD`/`USD`, `SOL` → `SOL`/`SOL`).
pub fn kraken_asset(asset: &str) -> (String, String) {
    match asset {
        "BTC" => ("XXBT".into(), "XBT".into()),
        "ETH" => ("XETH".into(), "ETH".into()),
        "XRP" => ("XXRP".into(), "XRP".into()),
        "DOGE" => ("XXDG".into(), "XDG".into()),
        "LTC" => ("XLTC".into(), "LTC".into()),
        "XLM" => ("XXLM".into(), "XLM".into()),
        "USD" => ("ZUSD".into(), "USD".into()),
        "EUR" => ("ZEUR".into(), "EUR".into()),
        other => (other.to_string(), other.to_string()),
    }
}

/// The canonical asset behind a Kraken asset id or altname (`XXBT`/`XBT` → `BTC`).
pub fn canonical_from_kraken_asset(name: &str) -> String {
    for asset in ["BTC", "ETH", "XRP", "DOGE", "LTC", "XLM", "USD", "EUR"] {
        let (id, alt) = kraken_asset(asset);
        if name == id || name == alt {
            return asset.to_string();
        }
    }
    name.to_string()
}

/// Kraken's names for a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrakenPair {
    pub key: String,
    pub altname: String,
    pub wsname: String,
    pub base: String,
    pub quote: String,
}

/// Kraken's pair names for a canonical instrument (`BTC-USD` → key `XXBTZUSD`, altname `XBTUSD`).
pub fn kraken_pair(instrument: &Instrument) -> KrakenPair {
    let (base_id, base_alt) = kraken_asset(&instrument.base);
    let (quote_id, quote_alt) = kraken_asset(&instrument.quote);
    let altname = format!("{base_alt}{quote_alt}");
    let legacy = |id: &str| id.len() == 4 && (id.starts_with('X') || id.starts_with('Z'));
    // Legacy pairs join both ids (XXBTZUSD); Dogecoin is the known exception (XDGUSD).
    let key = if legacy(&base_id) && legacy(&quote_id) && instrument.base != "DOGE" {
        format!("{base_id}{quote_id}")
    } else {
        altname.clone()
    };
    KrakenPair {
        key,
        wsname: format!("{base_alt}/{quote_alt}"),
        altname,
        base: base_id,
        quote: quote_id,
    }
}

/// Alpaca's order/data symbol (`BTC/USD`, equities by ticker).
pub fn alpaca_symbol(instrument: &Instrument) -> String {
    match instrument.class {
        AssetClass::Crypto => format!("{}/{}", instrument.base, instrument.quote),
        AssetClass::UsEquity => instrument.base.clone(),
    }
}

/// Alpaca's position symbol (`BTCUSD`, equities by ticker).
pub fn alpaca_position_symbol(instrument: &Instrument) -> String {
    match instrument.class {
        AssetClass::Crypto => format!("{}{}", instrument.base, instrument.quote),
        AssetClass::UsEquity => instrument.base.clone(),
    }
}

/// Lookup of instruments by every name a broker may use for them.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_symbol: BTreeMap<String, Instrument>,
    by_kraken: BTreeMap<String, String>,
    by_alpaca: BTreeMap<String, String>,
}

impl Catalog {
    pub fn new(instruments: impl IntoIterator<Item = Instrument>) -> Catalog {
        let mut catalog = Catalog::default();
        for instrument in instruments {
            catalog.insert(instrument);
        }
        catalog
    }

    pub fn insert(&mut self, instrument: Instrument) {
        if instrument.listed_at(Broker::Kraken) {
            let pair = kraken_pair(&instrument);
            for name in [pair.key, pair.altname, pair.wsname] {
                self.by_kraken.insert(name, instrument.symbol.clone());
            }
        }
        self.by_alpaca
            .insert(alpaca_symbol(&instrument), instrument.symbol.clone());
        self.by_alpaca.insert(
            alpaca_position_symbol(&instrument),
            instrument.symbol.clone(),
        );
        self.by_symbol.insert(instrument.symbol.clone(), instrument);
    }

    pub fn get(&self, symbol: &str) -> Option<&Instrument> {
        self.by_symbol.get(symbol)
    }

    /// The instrument whose base asset is `asset`, quoted in USD.
    pub fn by_base(&self, asset: &str) -> Option<&Instrument> {
        self.by_symbol.get(&format!("{asset}-USD"))
    }

    pub fn all(&self) -> impl Iterator<Item = &Instrument> {
        self.by_symbol.values()
    }

    /// Resolves a Kraken pair key, altname or wsname.
    pub fn from_kraken(&self, name: &str) -> Option<&Instrument> {
        self.by_kraken.get(name).and_then(|s| self.by_symbol.get(s))
    }

    /// Resolves an Alpaca symbol (`BTC/USD`, `BTCUSD`, `AAPL`).
    pub fn from_alpaca(&self, name: &str) -> Option<&Instrument> {
        self.by_alpaca.get(name).and_then(|s| self.by_symbol.get(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_universe_parses() {
        for (instrument, price) in default_universe() {
            assert!(price > Decimal::ZERO, "{}", instrument.symbol);
        }
    }

    #[test]
    fn kraken_names() {
        let btc = Instrument::new("BTC", "USD", AssetClass::Crypto);
        let pair = kraken_pair(&btc);
        assert_eq!(pair.key, "XXBTZUSD");
        assert_eq!(pair.altname, "XBTUSD");
        assert_eq!(pair.wsname, "XBT/USD");
        let sol = kraken_pair(&Instrument::new("SOL", "USD", AssetClass::Crypto));
        assert_eq!(
            (sol.key.as_str(), sol.base.as_str(), sol.quote.as_str()),
            ("SOLUSD", "SOL", "ZUSD")
        );
        let doge = kraken_pair(&Instrument::new("DOGE", "USD", AssetClass::Crypto));
        assert_eq!((doge.key.as_str(), doge.base.as_str()), ("XDGUSD", "XXDG"));
        assert_eq!(canonical_from_kraken_asset("XXBT"), "BTC");
        assert_eq!(canonical_from_kraken_asset("SOL"), "SOL");
    }

    #[test]
    fn minimums_have_two_significant_digits() {
        let btc = Instrument::new("BTC", "USD", AssetClass::Crypto);
        let rules = default_rules(Broker::Kraken, &btc, "64000".parse().unwrap_or_default());
        assert_eq!(rules.min_qty.to_string(), "0.000079");
    }
}

//! Kraken Spot REST: HMAC-SHA512 signed form posts with per-key nonces, asset and pair names
//! learned from `Assets`/`AssetPairs` (`XXBT` → `BTC`, `XXBTZUSD` → `BTC-USD`).

pub mod adapter;
pub mod http;
pub mod parse;
pub mod symbols;

pub use adapter::KrakenBroker;

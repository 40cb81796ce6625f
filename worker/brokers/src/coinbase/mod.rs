//! Coinbase Advanced Trade (v3 brokerage API): ES256 JWT per request, products named
//! `BASE-QUOTE` exactly like nija's canonical symbols.

pub mod adapter;
pub mod http;
pub mod parse;

pub use adapter::CoinbaseBroker;

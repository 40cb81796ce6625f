//! Alpaca Trading API v2 and market data: static key headers, crypto as `BTC/USD` in orders and
//! data but `BTCUSD` in positions, equities by ticker and only while the market is open.

pub mod adapter;
pub mod http;
pub mod parse;
pub mod symbols;

pub use adapter::AlpacaBroker;

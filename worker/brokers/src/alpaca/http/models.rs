//! Alpaca response bodies. The trading API sends money as strings; market data sends numbers
//! (read through their text, see `common::parse`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::common::parse::{de_decimal, de_opt_decimal};

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    #[serde(deserialize_with = "de_decimal")]
    pub cash: Decimal,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub equity: Option<Decimal>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub trading_blocked: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Position {
    pub symbol: String,
    #[serde(default)]
    pub asset_class: String,
    #[serde(deserialize_with = "de_decimal")]
    pub qty: Decimal,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub qty_available: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub avg_entry_price: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Asset {
    pub symbol: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub tradable: bool,
    #[serde(default)]
    pub fractionable: bool,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub min_order_size: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub min_trade_increment: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Clock {
    pub timestamp: DateTime<Utc>,
    pub is_open: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: String,
    #[serde(default)]
    pub client_order_id: Option<String>,
    pub symbol: String,
    #[serde(default)]
    pub asset_class: String,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub filled_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub filled_avg_price: Option<Decimal>,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LatestQuote {
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub ap: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub bp: Option<Decimal>,
    #[serde(default)]
    pub t: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LatestQuotes {
    #[serde(default)]
    pub quotes: BTreeMap<String, LatestQuote>,
}

/// The JSON error body: `{"code": 40110000, "message": "..."}` (code sometimes absent).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<u64>,
    #[serde(default)]
    pub message: String,
}

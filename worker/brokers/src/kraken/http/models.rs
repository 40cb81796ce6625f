//! Kraken response bodies: `{"error": [...], "result": ...}`; amounts are strings, timestamps
//! numbers.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::common::parse::{de_decimal, de_opt_decimal};

#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default = "Option::default")]
    pub result: Option<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssetInfo {
    pub altname: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssetPair {
    pub altname: String,
    #[serde(default)]
    pub wsname: Option<String>,
    pub base: String,
    pub quote: String,
    pub lot_decimals: u32,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub ordermin: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub costmin: Option<Decimal>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BalanceEx {
    #[serde(deserialize_with = "de_decimal")]
    pub balance: Decimal,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub hold_trade: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub credit: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub credit_used: Option<Decimal>,
}

/// Ticker entry: `a`/`b` = [price, whole-lot volume, lot volume], `c` = [last price, volume].
#[derive(Debug, Clone, Deserialize)]
pub struct Ticker {
    #[serde(default)]
    pub a: Vec<String>,
    #[serde(default)]
    pub b: Vec<String>,
    #[serde(default)]
    pub c: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderDescr {
    #[serde(default)]
    pub pair: String,
    #[serde(default, rename = "type")]
    pub side: String,
    #[serde(default)]
    pub ordertype: String,
    #[serde(default)]
    pub order: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    #[serde(default)]
    pub cl_ord_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub descr: OrderDescr,
    #[serde(deserialize_with = "de_decimal")]
    pub vol: Decimal,
    #[serde(deserialize_with = "de_decimal")]
    pub vol_exec: Decimal,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub cost: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AddOrderResult {
    #[serde(default)]
    pub txid: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OpenOrders {
    #[serde(default)]
    pub open: BTreeMap<String, Order>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClosedOrders {
    #[serde(default)]
    pub closed: BTreeMap<String, Order>,
    #[serde(default)]
    pub count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CancelResult {
    #[serde(default)]
    pub count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerTime {
    pub unixtime: i64,
}

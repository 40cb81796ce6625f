//! Coinbase response bodies. Amounts are decimal strings; absent amounts arrive as `""` or
//! `null` and read as `None`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::common::parse::{de_decimal, de_opt_decimal};

#[derive(Debug, Clone, Deserialize)]
pub struct Money {
    #[serde(deserialize_with = "de_decimal")]
    pub value: Decimal,
    #[serde(default)]
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub uuid: String,
    pub currency: String,
    pub available_balance: Money,
    #[serde(default)]
    pub hold: Option<Money>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountsPage {
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub has_next: bool,
    #[serde(default)]
    pub cursor: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceLevel {
    #[serde(deserialize_with = "de_decimal")]
    pub price: Decimal,
    #[serde(deserialize_with = "de_decimal")]
    pub size: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceBook {
    pub product_id: String,
    #[serde(default)]
    pub bids: Vec<PriceLevel>,
    #[serde(default)]
    pub asks: Vec<PriceLevel>,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BestBidAsk {
    #[serde(default)]
    pub pricebooks: Vec<PriceBook>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub product_id: String,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub price: Option<Decimal>,
    #[serde(deserialize_with = "de_decimal")]
    pub base_increment: Decimal,
    #[serde(deserialize_with = "de_decimal")]
    pub base_min_size: Decimal,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub quote_min_size: Option<Decimal>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub trading_disabled: bool,
    #[serde(default)]
    pub is_disabled: bool,
    #[serde(default)]
    pub cancel_only: bool,
    #[serde(default)]
    pub limit_only: bool,
    #[serde(default)]
    pub view_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateOrderSuccess {
    pub order_id: String,
    #[serde(default)]
    pub product_id: String,
    #[serde(default)]
    pub client_order_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateOrderError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_details: String,
    #[serde(default)]
    pub preview_failure_reason: String,
    #[serde(default)]
    pub new_order_failure_reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateOrderResponse {
    pub success: bool,
    #[serde(default)]
    pub success_response: Option<CreateOrderSuccess>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub error_response: Option<CreateOrderError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub product_id: String,
    #[serde(default)]
    pub client_order_id: String,
    pub status: String,
    #[serde(default)]
    pub side: String,
    #[serde(default)]
    pub order_configuration: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub filled_size: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub average_filled_price: Option<Decimal>,
    #[serde(default)]
    pub reject_reason: Option<String>,
    #[serde(default)]
    pub reject_message: Option<String>,
    #[serde(default)]
    pub cancel_message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GetOrder {
    pub order: Order,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrdersPage {
    #[serde(default)]
    pub orders: Vec<Order>,
    #[serde(default)]
    pub has_next: bool,
    #[serde(default)]
    pub cursor: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CancelResult {
    pub success: bool,
    #[serde(default)]
    pub failure_reason: String,
    #[serde(default)]
    pub order_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CancelResults {
    #[serde(default)]
    pub results: Vec<CancelResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerTime {
    pub iso: DateTime<Utc>,
}

/// The JSON error body of a non-2xx response.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_details: String,
}

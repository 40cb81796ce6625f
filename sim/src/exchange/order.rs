//! Orders as the simulator keeps them, independent of any broker's wire shape.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::broker::Broker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Market, or limit at a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "price")]
pub enum OrderKind {
    Market,
    Limit(Decimal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Resting (a limit order away from the market, or an equity order queued while the market is closed).
    Open,
    Filled,
    Canceled,
}

/// Who placed the order: a client over a broker API, or the admin API simulating activity outside nija.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderSource {
    Api,
    External,
}

/// One order and its fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub client_order_id: Option<String>,
    pub account: String,
    pub broker: Broker,
    /// Canonical `BASE-QUOTE`.
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Decimal,
    /// The broker's time-in-force as the client sent it (echoed back).
    pub time_in_force: String,
    pub status: OrderStatus,
    pub filled_qty: Decimal,
    pub avg_price: Option<Decimal>,
    /// Fee in quote currency.
    pub fee: Decimal,
    pub trade_id: Option<String>,
    pub source: OrderSource,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub filled_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
}

impl Order {
    pub fn is_open(&self) -> bool {
        self.status == OrderStatus::Open
    }

    /// Quote value of the fill (before fees).
    pub fn filled_value(&self) -> Decimal {
        self.avg_price
            .map(|p| p * self.filled_qty)
            .unwrap_or_default()
    }
}

/// A new order as a client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Decimal,
    pub client_order_id: Option<String>,
    pub time_in_force: String,
    pub source: OrderSource,
}

/// How a broker treats a client order id it has seen before (checked atomically with placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdRule {
    /// Coinbase: the earlier order is returned and nothing new is created.
    ReturnExisting,
    /// Alpaca: refused whenever the id was used before.
    UniqueAlways,
    /// Kraken: refused only while an order with the id is open.
    UniqueAmongOpen,
}

/// The outcome of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    New(Order),
    Existing(Order),
}

impl Placed {
    pub fn order(&self) -> &Order {
        match self {
            Placed::New(order) | Placed::Existing(order) => order,
        }
    }
}

/// Why an order was refused; each broker renders it in its own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("client order id already used")]
    DuplicateClientId,
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    #[error("no price for {0}")]
    NoPrice(String),
    #[error("quantity must be positive")]
    NonPositive,
    #[error("quantity {quantity} is not a multiple of {step}")]
    Precision { quantity: Decimal, step: Decimal },
    #[error("quantity {quantity} below minimum {min}")]
    BelowMinQty { quantity: Decimal, min: Decimal },
    #[error("order value {value} below minimum {min}")]
    BelowMinNotional { value: Decimal, min: Decimal },
    #[error("insufficient funds: requested {requested}, available {available}")]
    InsufficientFunds {
        requested: Decimal,
        available: Decimal,
        held: Decimal,
        total: Decimal,
    },
}

//! The one trait every broker adapter implements, and the plain values it returns.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nija_proto::{ClientOrderId, Price, Quantity, Symbol, Usd};
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;

/// Which broker an adapter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    Coinbase,
    Kraken,
    Alpaca,
}

impl BrokerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Coinbase => "coinbase",
            BrokerKind::Kraken => "kraken",
            BrokerKind::Alpaca => "alpaca",
        }
    }
}

impl std::fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cash balance (an asset listed in `cash_assets`, canonical name such as `USD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashBalance {
    pub asset: String,
    pub total: Usd,
    pub available: Usd,
}

/// A non-cash holding at the broker, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// `BASE-QUOTE`; the quote is the account's USD-like quote (`USD` by default).
    pub symbol: Symbol,
    /// Everything the account holds of the base asset.
    pub quantity: Quantity,
    /// What can be sold now: balance minus holds and open orders.
    pub available: Quantity,
    /// The broker's average entry price, where it reports one (Alpaca does; Kraken and Coinbase
    /// balances do not).
    pub avg_entry_price: Option<Price>,
}

/// A fresh read of an account's holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdings {
    pub cash: Vec<CashBalance>,
    pub positions: Vec<Holding>,
    /// The broker's own account total in USD where it reports one (Alpaca `equity`).
    pub broker_total: Option<Usd>,
}

/// A current price for one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub symbol: Symbol,
    pub bid: Option<Price>,
    pub ask: Option<Price>,
    /// The price nija values the position at: the last trade, else the bid (a sell fills there).
    pub price: Price,
    /// When the broker says the price was observed; `None` when it does not say.
    pub time: Option<DateTime<Utc>>,
}

/// Trading rules of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRules {
    pub symbol: Symbol,
    /// Smallest order size in base units.
    pub min_size: Quantity,
    /// Size step; quantities are rounded down to a multiple of it.
    pub size_increment: Quantity,
    /// Smallest order value in quote units, where the broker has one.
    pub min_notional: Option<Usd>,
    /// Whether the product is an equity that trades only in market hours (Alpaca stocks).
    pub market_hours_only: bool,
    /// False when the broker has disabled trading, put the market in cancel-only mode, etc.
    pub tradable: bool,
}

impl ProductRules {
    /// The quantity a sell of `available` may carry: floored to the increment, or `None` when
    /// what remains is below the minimum size (or value at `price` below the minimum notional).
    pub fn sellable(&self, available: Quantity, price: Option<Price>) -> Option<Quantity> {
        let qty = available.floor_to(self.size_increment);
        if qty.is_zero() || qty.is_sign_negative() || qty < self.min_size {
            return None;
        }
        if let (Some(min), Some(price)) = (self.min_notional, price)
            && qty * price < min
        {
            return None;
        }
        Some(qty)
    }
}

/// A market sell of `quantity` base units of `symbol`, identified by `client_order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellOrder {
    pub symbol: Symbol,
    pub quantity: Quantity,
    pub client_order_id: ClientOrderId,
}

/// Where an order stands. Terminal: everything but `Open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted and still working (or queued).
    Open,
    Filled,
    /// Terminal with only part of the quantity filled (IOC remainder cancelled, etc.).
    PartiallyFilled,
    /// Cancelled with nothing filled.
    Cancelled,
    Rejected,
    Expired,
}

impl OrderState {
    pub fn is_terminal(self) -> bool {
        !matches!(self, OrderState::Open)
    }
}

/// An order as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatus {
    pub order_id: String,
    pub client_order_id: Option<String>,
    pub symbol: Symbol,
    pub state: OrderState,
    pub quantity: Quantity,
    pub filled_quantity: Quantity,
    pub average_fill_price: Option<Price>,
    /// The broker's reason for a rejection or cancellation, verbatim.
    pub reason: Option<String>,
}

/// One broker session for one account. Implementations hold the account's credentials, the
/// per-key nonce and rate limiter and the symbol mapping learned from the broker; they are cheap to
/// share (`Arc<dyn Broker>`) and safe to call concurrently.
///
/// Every call has a deadline and bounded retries for transient failures; errors are classified
/// ([`BrokerError::class`]) so the worker can decide what is safe.
#[async_trait]
pub trait Broker: Send + Sync {
    fn kind(&self) -> BrokerKind;

    /// Authenticates, learns product metadata and symbol mappings, and checks the clock against
    /// the broker's where it offers one (warns on skew over 1 s). Called once per session.
    async fn connect(&self) -> Result<(), BrokerError>;

    /// The broker's clock, where the API offers one.
    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError>;

    /// A fresh read of cash and positions. `cash_assets` are canonical names (`USD`, `USDC`).
    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError>;

    /// Current prices, batched where the API allows. The outer error is for failures of the whole
    /// call; a symbol the broker cannot price gets its own error in the list (it stays unpriced).
    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError>;

    /// Trading rules for a product.
    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError>;

    /// Whether `symbol` can receive a market order now (false for Alpaca equities while the
    /// market is closed; always true for crypto).
    async fn market_open(&self, symbol: &Symbol) -> Result<bool, BrokerError>;

    /// Places a market sell. If the outcome is unknown (timeout, dropped connection), the
    /// adapter resolves it by looking the client order id up — never by sending it blindly again —
    /// and returns [`BrokerError::OutcomeUnknown`] only when that look-up cannot settle it.
    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError>;

    /// Looks an order up by our client order id; `Ok(None)` when the broker has no such order.
    async fn order_by_client_id(
        &self,
        symbol: &Symbol,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderStatus>, BrokerError>;

    /// Looks an order up by the broker's order id.
    async fn order(&self, symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError>;

    /// The account's open orders.
    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError>;

    /// Cancels an order.
    async fn cancel(&self, symbol: &Symbol, order_id: &str) -> Result<(), BrokerError>;

    /// The last nonce this session used with its API key, for brokers with per-key nonces
    /// (Kraken); the worker stores it with the account lease. `None` for the others.
    fn last_nonce(&self) -> Option<u64> {
        None
    }

    /// Raises the nonce floor to `last_used` (read from the lease) so the next nonce is above
    /// it, whatever this host's clock says. No effect for brokers without nonces.
    fn seed_nonce(&self, last_used: u64) {
        let _ = last_used;
    }
}

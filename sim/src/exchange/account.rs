//! One simulated trading account: its credentials, balances and orders behind its own lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::order::{Order, OrderKind, OrderRequest, OrderSource, OrderStatus, Reject, Side};
use crate::broker::Broker;
use crate::credentials::{Credentials, Verifier};
use crate::market::Market;
use crate::market::instruments::AssetClass;

/// PLATFORM or USER, as in nija's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Platform,
    User,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Platform => "platform",
            AccountType::User => "user",
        }
    }
}

/// An asset balance. Cash assets (USD …) carry no entry price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub quantity: Decimal,
    pub avg_entry: Option<Decimal>,
}

/// Mutable state of an account.
#[derive(Debug, Default)]
pub struct Book {
    /// Canonical asset (`BTC`, `USD`, `AAPL`) → balance; zero balances stay listed.
    pub assets: BTreeMap<String, Holding>,
    pub orders: Vec<Order>,
    by_id: HashMap<String, usize>,
    by_client: HashMap<String, Vec<usize>>,
    /// Indices of open orders (what holds balances), so holds never scan the whole history.
    open: std::collections::BTreeSet<usize>,
    /// Last Kraken nonce accepted for this account's key.
    pub kraken_nonce: u64,
}

/// An order that passed validation: what it trades and at what price it would fill now.
#[derive(Debug, Clone)]
pub struct Checked {
    pub instrument: crate::market::instruments::Instrument,
    pub quote: crate::market::prices::Quote,
    /// Fill price for a market order, the limit for a limit order.
    pub price: Decimal,
}

/// A balance with what open orders hold of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub asset: String,
    pub total: Decimal,
    pub held: Decimal,
    pub available: Decimal,
    pub avg_entry: Option<Decimal>,
}

impl Book {
    pub fn quantity(&self, asset: &str) -> Decimal {
        self.assets
            .get(asset)
            .map(|h| h.quantity)
            .unwrap_or_default()
    }

    /// What open orders hold of `asset`: base quantity of open sells, cost of open buys.
    pub fn held(&self, asset: &str, market: &Market) -> Decimal {
        self.open
            .iter()
            .filter_map(|&i| self.orders.get(i))
            .filter_map(|o| {
                let instrument = market.instrument(&o.symbol)?;
                let remaining = o.quantity - o.filled_qty;
                match o.side {
                    Side::Sell if instrument.base == asset => Some(remaining),
                    Side::Buy if instrument.quote == asset => {
                        let price = match o.kind {
                            OrderKind::Limit(p) => p,
                            OrderKind::Market => market.quote(&o.symbol).map(|q| q.ask)?,
                        };
                        Some(remaining * price)
                    }
                    _ => None,
                }
            })
            .sum()
    }

    pub fn balances(&self, market: &Market) -> Vec<Balance> {
        self.assets
            .iter()
            .map(|(asset, h)| {
                let held = self.held(asset, market);
                Balance {
                    asset: asset.clone(),
                    total: h.quantity,
                    held,
                    available: (h.quantity - held).max(Decimal::ZERO),
                    avg_entry: h.avg_entry,
                }
            })
            .collect()
    }

    pub fn order(&self, id: &str) -> Option<&Order> {
        self.by_id.get(id).and_then(|&i| self.orders.get(i))
    }

    /// Orders with this client order id, oldest first.
    pub fn by_client_id(&self, client_order_id: &str) -> Vec<&Order> {
        self.by_client
            .get(client_order_id)
            .map(|ix| ix.iter().filter_map(|&i| self.orders.get(i)).collect())
            .unwrap_or_default()
    }

    fn credit(&mut self, asset: &str, amount: Decimal) {
        let entry = self.assets.entry(asset.to_string()).or_insert(Holding {
            quantity: Decimal::ZERO,
            avg_entry: None,
        });
        entry.quantity += amount;
    }

    /// Sets a balance outright (admin deposit/withdrawal).
    pub fn set_holding(&mut self, asset: &str, quantity: Decimal, avg_entry: Option<Decimal>) {
        self.assets.insert(
            asset.to_string(),
            Holding {
                quantity,
                avg_entry,
            },
        );
    }

    fn insert(&mut self, order: Order) -> usize {
        let index = self.orders.len();
        self.by_id.insert(order.id.clone(), index);
        if let Some(client) = &order.client_order_id {
            self.by_client
                .entry(client.clone())
                .or_default()
                .push(index);
        }
        if order.is_open() {
            self.open.insert(index);
        }
        self.orders.push(order);
        index
    }

    /// Validates an order against the rules and the available funds without placing it.
    pub fn check(
        &self,
        broker: Broker,
        request: &OrderRequest,
        market: &Market,
        fee_rate: Decimal,
    ) -> Result<Checked, Reject> {
        let instrument = market
            .instrument(&request.symbol)
            .filter(|i| i.listed_at(broker))
            .ok_or_else(|| Reject::UnknownSymbol(request.symbol.clone()))?
            .clone();
        let quote = market
            .quote(&request.symbol)
            .ok_or_else(|| Reject::NoPrice(request.symbol.clone()))?;
        if request.quantity <= Decimal::ZERO {
            return Err(Reject::NonPositive);
        }
        let price = match (request.side, request.kind) {
            (_, OrderKind::Limit(p)) => p,
            (Side::Sell, OrderKind::Market) => quote.bid,
            (Side::Buy, OrderKind::Market) => quote.ask,
        };
        if request.source == OrderSource::Api
            && let Some(rules) = market.rules(broker, &request.symbol)
        {
            {
                if !rules.step.is_zero() && !(request.quantity % rules.step).is_zero() {
                    return Err(Reject::Precision {
                        quantity: request.quantity,
                        step: rules.step,
                    });
                }
                if request.quantity < rules.min_qty {
                    return Err(Reject::BelowMinQty {
                        quantity: request.quantity,
                        min: rules.min_qty,
                    });
                }
                let value = request.quantity * price;
                if value < rules.min_notional {
                    return Err(Reject::BelowMinNotional {
                        value,
                        min: rules.min_notional,
                    });
                }
            }
        }
        let (asset, needed) = match request.side {
            Side::Sell => (instrument.base.as_str(), request.quantity),
            Side::Buy => (
                instrument.quote.as_str(),
                request.quantity * price * (Decimal::ONE + fee_rate),
            ),
        };
        let total = self.quantity(asset);
        let held = self.held(asset, market);
        let available = total - held;
        if needed > available {
            return Err(Reject::InsufficientFunds {
                requested: needed,
                available: available.max(Decimal::ZERO),
                held,
                total,
            });
        }
        Ok(Checked {
            instrument,
            quote,
            price,
        })
    }

    /// Validates, records and (when marketable) fills an order; `partial` fills only that
    /// fraction and cancels the rest (an IOC order meeting thin liquidity). Returns its index.
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        &mut self,
        account: &str,
        broker: Broker,
        order_id: String,
        request: OrderRequest,
        market: &Market,
        fee_rate: Decimal,
        partial: Option<Decimal>,
    ) -> Result<usize, Reject> {
        let Checked {
            instrument, quote, ..
        } = self.check(broker, &request, market, fee_rate)?;
        let now = Utc::now();
        let order = Order {
            id: order_id,
            client_order_id: request.client_order_id,
            account: account.to_string(),
            broker,
            symbol: request.symbol,
            side: request.side,
            kind: request.kind,
            quantity: request.quantity,
            time_in_force: request.time_in_force,
            status: OrderStatus::Open,
            filled_qty: Decimal::ZERO,
            avg_price: None,
            fee: Decimal::ZERO,
            trade_id: None,
            source: request.source,
            created_at: now,
            updated_at: now,
            filled_at: None,
            canceled_at: None,
        };
        let index = self.insert(order);
        let queued = instrument.class == AssetClass::UsEquity && !market.equity_market_open();
        let marketable = match (request.side, request.kind) {
            (_, OrderKind::Market) => true,
            (Side::Sell, OrderKind::Limit(p)) => p <= quote.bid,
            (Side::Buy, OrderKind::Limit(p)) => p >= quote.ask,
        };
        if marketable && !queued {
            let fill_price = if request.side == Side::Sell {
                quote.bid
            } else {
                quote.ask
            };
            self.fill(index, fill_price, market, fee_rate, partial);
        }
        Ok(index)
    }

    /// Fills the rest of an open order at `price` and moves the balances. With `partial`, only
    /// that fraction (rounded down to the size step) fills and the remainder is cancelled.
    pub fn fill(
        &mut self,
        index: usize,
        price: Decimal,
        market: &Market,
        fee_rate: Decimal,
        partial: Option<Decimal>,
    ) {
        let Some(order) = self.orders.get(index) else {
            return;
        };
        let Some(instrument) = market.instrument(&order.symbol).cloned() else {
            return;
        };
        let remaining = order.quantity - order.filled_qty;
        let quantity = match partial {
            Some(fraction) => {
                let step = market
                    .rules(order.broker, &order.symbol)
                    .map(|r| r.step)
                    .filter(|s| !s.is_zero())
                    .unwrap_or(Decimal::new(1, 8));
                ((remaining * fraction) / step).floor() * step
            }
            None => remaining,
        };
        let side = order.side;
        let value = quantity * price;
        let fee = (value * fee_rate).round_dp(8);
        match side {
            Side::Sell => {
                self.credit(&instrument.base, -quantity);
                if let Some(h) = self.assets.get_mut(&instrument.base)
                    && h.quantity.is_zero()
                {
                    h.avg_entry = None;
                }
                self.credit(&instrument.quote, value - fee);
            }
            Side::Buy => {
                self.credit(&instrument.quote, -(value + fee));
                let entry = self
                    .assets
                    .entry(instrument.base.clone())
                    .or_insert(Holding {
                        quantity: Decimal::ZERO,
                        avg_entry: None,
                    });
                let old_cost = entry.quantity * entry.avg_entry.unwrap_or(price);
                entry.quantity += quantity;
                if !entry.quantity.is_zero() {
                    entry.avg_entry = Some(
                        ((old_cost + value) / entry.quantity)
                            .round_dp(10)
                            .normalize(),
                    );
                }
            }
        }
        let now = Utc::now();
        self.open.remove(&index);
        if let Some(order) = self.orders.get_mut(index) {
            order.filled_qty += quantity;
            order.updated_at = now;
            if !quantity.is_zero() {
                order.avg_price = Some(price);
                order.fee = fee;
                order.trade_id = Some(uuid::Uuid::new_v4().to_string());
                order.filled_at = Some(now);
            }
            if order.filled_qty == order.quantity {
                order.status = OrderStatus::Filled;
            } else {
                order.status = OrderStatus::Canceled;
                order.canceled_at = Some(now);
            }
        }
    }

    /// Cancels an open order; returns false when it is unknown or no longer open.
    pub fn cancel(&mut self, id: &str) -> bool {
        let Some(&index) = self.by_id.get(id) else {
            return false;
        };
        let Some(order) = self.orders.get_mut(index) else {
            return false;
        };
        if !order.is_open() {
            return false;
        }
        let now = Utc::now();
        self.open.remove(&index);
        order.status = OrderStatus::Canceled;
        order.canceled_at = Some(now);
        order.updated_at = now;
        true
    }

    /// Indices of the open orders, oldest first.
    pub fn open_orders(&self) -> Vec<usize> {
        self.open.iter().copied().collect()
    }
}

/// Identity and credentials of an account as seeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AccountType,
    pub broker: Broker,
    pub credentials: Credentials,
}

/// One account: fixed identity, revocable credentials, state behind its own lock.
#[derive(Debug)]
pub struct Account {
    pub info: AccountInfo,
    pub verifier: Verifier,
    /// Stable per-account UUID (Coinbase portfolio, Alpaca account id).
    pub uuid: uuid::Uuid,
    revoked: AtomicBool,
    pub book: Mutex<Book>,
}

impl Account {
    pub fn new(info: AccountInfo, verifier: Verifier, book: Book) -> Account {
        let uuid = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("nija-sim/{}", info.id).as_bytes(),
        );
        Account {
            info,
            verifier,
            uuid,
            revoked: AtomicBool::new(false),
            book: Mutex::new(book),
        }
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    pub fn broker(&self) -> Broker {
        self.info.broker
    }

    pub fn revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    pub fn set_revoked(&self, revoked: bool) {
        self.revoked.store(revoked, Ordering::Relaxed);
    }

    /// Runs `f` with the account's state locked (never held across an await).
    pub fn with_book<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut book)
    }

    /// UUID of this account's wallet for `asset` (Coinbase account uuid).
    pub fn wallet_uuid(&self, asset: &str) -> uuid::Uuid {
        uuid::Uuid::new_v5(&self.uuid, asset.as_bytes())
    }
}

//! Test control of the simulator: the same operations in-process ([`Admin`]) and over HTTP
//! ([`routes`], documented in `sim/README.md`).

pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::exchange::account::{AccountInfo, Balance};
use crate::exchange::order::{
    ClientIdRule, Order, OrderKind, OrderRequest, OrderSource, Reject, Side,
};
use crate::exchange::{Exchange, LoggedOrder, new_order_id};
use crate::faults::FaultSpec;
use crate::market::prices::Quote;

/// Why an admin operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    #[error("order refused: {0}")]
    Rejected(#[from] Reject),
}

/// An account's balances as the admin API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalances {
    pub account: String,
    pub broker: crate::broker::Broker,
    pub revoked: bool,
    pub balances: Vec<Balance>,
    pub open_orders: usize,
}

/// A trade made outside nija (at the account's broker, by someone else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalTrade {
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
}

/// In-process control of a running simulator.
#[derive(Debug, Clone)]
pub struct Admin {
    exchange: Arc<Exchange>,
}

impl Admin {
    pub(crate) fn new(exchange: Arc<Exchange>) -> Admin {
        Admin { exchange }
    }

    /// Every order placed since the last reset, with its current fill.
    pub fn order_log(&self) -> Vec<LoggedOrder> {
        self.exchange.order_log()
    }

    pub fn reset_order_log(&self) {
        self.exchange.reset_order_log();
    }

    /// Adds or changes faults for a scope (global, broker or account).
    pub fn set_faults(&self, spec: FaultSpec) {
        tracing::info!(?spec, "faults set");
        self.exchange.faults.set(spec);
    }

    pub fn clear_faults(&self) {
        self.exchange.faults.clear();
    }

    pub fn faults(&self) -> Vec<FaultSpec> {
        self.exchange.faults.list()
    }

    /// Sets a price (frozen at that value when `freeze`).
    pub fn set_price(&self, symbol: &str, price: Decimal, freeze: bool) -> Result<(), AdminError> {
        if self.exchange.market.prices.set(symbol, price, freeze) {
            Ok(())
        } else {
            Err(AdminError::UnknownSymbol(symbol.to_string()))
        }
    }

    /// Freezes (or thaws) one symbol, or every symbol when `None`.
    pub fn freeze_prices(&self, symbol: Option<&str>, frozen: bool) {
        self.exchange.market.prices.freeze(symbol, frozen);
    }

    /// Plays a scripted price path: each price in turn every `every`, then holds the last.
    pub fn script_prices(
        &self,
        symbol: &str,
        prices: Vec<Decimal>,
        every: Duration,
    ) -> Result<(), AdminError> {
        if self.exchange.market.prices.script(symbol, prices, every) {
            Ok(())
        } else {
            Err(AdminError::UnknownSymbol(symbol.to_string()))
        }
    }

    pub fn quote(&self, symbol: &str) -> Option<Quote> {
        self.exchange.market.quote(symbol)
    }

    pub fn prices(&self) -> Vec<(String, Quote, bool)> {
        self.exchange.market.prices.snapshot()
    }

    fn account(&self, id: &str) -> Result<&Arc<crate::exchange::account::Account>, AdminError> {
        self.exchange
            .account(id)
            .ok_or_else(|| AdminError::UnknownAccount(id.to_string()))
    }

    /// A market trade outside nija: it moves balances and appears in the order log as `external`.
    pub fn external_trade(&self, account: &str, trade: ExternalTrade) -> Result<Order, AdminError> {
        let account = self.account(account)?;
        let request = OrderRequest {
            symbol: trade.symbol,
            side: trade.side,
            kind: OrderKind::Market,
            quantity: trade.quantity,
            client_order_id: None,
            time_in_force: "external".to_string(),
            source: OrderSource::External,
        };
        Ok(self
            .exchange
            .place(
                account,
                new_order_id(account.broker()),
                request,
                ClientIdRule::UniqueAlways,
            )?
            .order()
            .clone())
    }

    /// Sets a balance outright (a deposit or withdrawal outside nija).
    pub fn set_holding(
        &self,
        account: &str,
        asset: &str,
        quantity: Decimal,
        avg_entry: Option<Decimal>,
    ) -> Result<(), AdminError> {
        let account = self.account(account)?;
        account.with_book(|b| b.set_holding(asset, quantity, avg_entry));
        Ok(())
    }

    /// Revokes (true) or restores (false) an account's credentials.
    pub fn set_revoked(&self, account: &str, revoked: bool) -> Result<(), AdminError> {
        self.account(account)?.set_revoked(revoked);
        Ok(())
    }

    pub fn balances(&self, account: &str) -> Result<AccountBalances, AdminError> {
        let account = self.account(account)?;
        let (balances, open_orders) = account.with_book(|b| {
            (
                b.balances(&self.exchange.market),
                b.orders.iter().filter(|o| o.is_open()).count(),
            )
        });
        Ok(AccountBalances {
            account: account.id().to_string(),
            broker: account.broker(),
            revoked: account.revoked(),
            balances,
            open_orders,
        })
    }

    /// Every order of an account, oldest first.
    pub fn orders(&self, account: &str) -> Result<Vec<Order>, AdminError> {
        Ok(self.account(account)?.with_book(|b| b.orders.clone()))
    }

    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.exchange.accounts().map(|a| a.info.clone()).collect()
    }

    /// Opens or closes the Alpaca equity market (opening fills queued equity orders).
    pub fn set_market_open(&self, open: bool) {
        self.exchange.set_equity_market_open(open);
    }

    pub fn market_open(&self) -> bool {
        self.exchange.market.equity_market_open()
    }
}

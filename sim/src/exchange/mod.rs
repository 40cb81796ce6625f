//! The simulated exchange: accounts, the market, faults and the order log, shared by every
//! protocol front end and the admin API. No lock is held across an await.

pub mod account;
pub mod order;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use serde::Serialize;

use crate::broker::Broker;
use crate::faults::Faults;
use crate::market::Market;
use account::Account;
use order::{ClientIdRule, Order, OrderKind, OrderRequest, OrderSource, Placed, Reject};

/// The simulator's whole state.
#[derive(Debug)]
pub struct Exchange {
    pub market: Market,
    accounts: BTreeMap<String, Arc<Account>>,
    by_key: HashMap<(Broker, String), Arc<Account>>,
    pub faults: Faults,
    order_log: Mutex<Vec<(Arc<Account>, String)>>,
    fee_rates: HashMap<Broker, Decimal>,
}

/// One line of the order log.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedOrder {
    pub account: String,
    pub broker: Broker,
    #[serde(flatten)]
    pub order: Order,
}

impl Exchange {
    pub fn new(
        market: Market,
        accounts: Vec<Account>,
        fee_rates: HashMap<Broker, Decimal>,
    ) -> Exchange {
        let accounts: BTreeMap<String, Arc<Account>> = accounts
            .into_iter()
            .map(|a| (a.id().to_string(), Arc::new(a)))
            .collect();
        let by_key = accounts
            .values()
            .map(|a| {
                (
                    (a.broker(), a.info.credentials.key_id().to_string()),
                    Arc::clone(a),
                )
            })
            .collect();
        Exchange {
            market,
            accounts,
            by_key,
            faults: Faults::default(),
            order_log: Mutex::new(Vec::new()),
            fee_rates,
        }
    }

    pub fn account(&self, id: &str) -> Option<&Arc<Account>> {
        self.accounts.get(id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.values()
    }

    /// The account whose API key (Coinbase key name, Kraken key, Alpaca key id) is `key`.
    pub fn by_key(&self, broker: Broker, key: &str) -> Option<&Arc<Account>> {
        self.by_key.get(&(broker, key.to_string()))
    }

    pub fn fee_rate(&self, broker: Broker) -> Decimal {
        self.fee_rates.get(&broker).copied().unwrap_or_default()
    }

    /// Places an order for `account` and logs it, applying the broker's client-id rule in the
    /// same critical section (two racing resubmissions never make two orders).
    pub fn place(
        &self,
        account: &Arc<Account>,
        order_id: String,
        request: OrderRequest,
        rule: ClientIdRule,
    ) -> Result<Placed, Reject> {
        let broker = account.broker();
        let fee = self.fee_rate(broker);
        let placed = account.with_book(|book| {
            if let Some(id) = &request.client_order_id {
                let prior = book.by_client_id(id);
                match rule {
                    ClientIdRule::ReturnExisting => {
                        if let Some(order) = prior.first() {
                            return Ok(Placed::Existing((*order).clone()));
                        }
                    }
                    ClientIdRule::UniqueAlways if !prior.is_empty() => {
                        return Err(Reject::DuplicateClientId);
                    }
                    ClientIdRule::UniqueAmongOpen if prior.iter().any(|o| o.is_open()) => {
                        return Err(Reject::DuplicateClientId);
                    }
                    _ => {}
                }
            }
            let partial = (request.source == OrderSource::Api && request.kind == OrderKind::Market)
                .then(|| self.faults.partial_fill(broker, account.id()))
                .flatten();
            let index = book.place(
                account.id(),
                broker,
                order_id,
                request,
                &self.market,
                fee,
                partial,
            )?;
            Ok(Placed::New(book.orders[index].clone()))
        })?;
        let Placed::New(order) = &placed else {
            return Ok(placed);
        };
        tracing::info!(
            account = account.id(),
            broker = %broker,
            symbol = %order.symbol,
            side = order.side.as_str(),
            quantity = %order.quantity,
            order_id = %order.id,
            client_order_id = order.client_order_id.as_deref().unwrap_or(""),
            status = ?order.status,
            price = ?order.avg_price,
            source = ?order.source,
            "order placed"
        );
        self.order_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Arc::clone(account), order.id.clone()));
        Ok(placed)
    }

    /// Every logged order with its current state, oldest first.
    pub fn order_log(&self) -> Vec<LoggedOrder> {
        let refs: Vec<(Arc<Account>, String)> = self
            .order_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        refs.into_iter()
            .filter_map(|(account, id)| {
                let order = account.with_book(|b| b.order(&id).cloned())?;
                Some(LoggedOrder {
                    account: account.id().to_string(),
                    broker: account.broker(),
                    order,
                })
            })
            .collect()
    }

    pub fn reset_order_log(&self) {
        self.order_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Opens or closes the equity market; opening fills the queued equity orders.
    pub fn set_equity_market_open(&self, open: bool) {
        self.market.set_equity_market_open(open);
        if !open {
            return;
        }
        for account in self.accounts.values() {
            let fee = self.fee_rate(account.broker());
            account.with_book(|book| {
                let queued: Vec<(usize, Decimal)> = book
                    .open_orders()
                    .into_iter()
                    .filter_map(|i| {
                        let o = book.orders.get(i)?;
                        let quote = self.market.quote(&o.symbol)?;
                        let price = match (o.side, o.kind) {
                            (order::Side::Sell, order::OrderKind::Market) => quote.bid,
                            (order::Side::Buy, order::OrderKind::Market) => quote.ask,
                            (order::Side::Sell, order::OrderKind::Limit(p)) if p <= quote.bid => {
                                quote.bid
                            }
                            (order::Side::Buy, order::OrderKind::Limit(p)) if p >= quote.ask => {
                                quote.ask
                            }
                            _ => return None,
                        };
                        Some((i, price))
                    })
                    .collect();
                for (index, price) in queued {
                    book.fill(index, price, &self.market, fee, None);
                }
            });
        }
    }
}

/// A fresh order id in the broker's format (Kraken `OXXXXX-XXXXX-XXXXXX`, UUIDs elsewhere).
pub fn new_order_id(broker: Broker) -> String {
    match broker {
        Broker::Kraken => kraken_id('O'),
        Broker::Coinbase | Broker::Alpaca => uuid::Uuid::new_v4().to_string(),
    }
}

/// A Kraken-style id: a letter and 17 upper-case alphanumerics in groups of 5-5-6.
pub fn kraken_id(first: char) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let chars: String = bytes
        .iter()
        .take(16)
        .map(|b| TABLE[usize::from(*b) % TABLE.len()] as char)
        .collect();
    format!(
        "{first}{}-{}-{}",
        &chars[..5],
        &chars[5..10],
        &chars[10..16]
    )
}

//! [`Broker`] for Kraken Spot.
//!
//! Placement: Kraken enforces `cl_ord_id` uniqueness only among open orders, and a market order
//! closes within milliseconds, so an AddOrder is re-sent only when Kraken said it was not taken
//! (invalid nonce, rate limit, no connection). Any other unknown outcome is settled by looking the
//! client order id up in OpenOrders and ClosedOrders.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use nija_proto::{ClientOrderId, Quantity, Symbol};
use rust_decimal::Decimal;

use super::http::client::{KeyState, KrakenHttp, add_order_result, key_state};
use super::http::errors::classify_http;
use super::http::{LIVE_URL, models::Ticker};
use super::parse;
use super::symbols::KrakenSymbols;
use crate::broker::{
    Broker, BrokerKind, Holdings, OrderState, OrderStatus, ProductRules, Quote, SellOrder,
};
use crate::common::clock;
use crate::common::http::{HttpClient, SendError, parse_base_url};
use crate::common::rate_limit::{self, RateLimit};
use crate::common::resolve::resolve;
use crate::credentials::{Credentials, KrakenCredentials};
use crate::error::BrokerError;
use crate::settings::BrokerSettings;

pub struct KrakenBroker {
    http: KrakenHttp,
    key: Arc<KeyState>,
    symbols: RwLock<Arc<KrakenSymbols>>,
    settings: BrokerSettings,
}

impl KrakenBroker {
    pub fn new(
        settings: BrokerSettings,
        credentials: KrakenCredentials,
    ) -> Result<KrakenBroker, BrokerError> {
        let base = parse_base_url(
            BrokerKind::Kraken,
            settings.base_url.as_deref().unwrap_or(LIVE_URL),
        )?;
        let http = HttpClient::new(BrokerKind::Kraken, &settings.timeouts, &settings.extra_ca)?;
        let fingerprint = Credentials::Kraken(credentials.clone()).fingerprint();
        let key = key_state(&fingerprint);
        if let Some(seed) = settings.nonce_seed {
            key.nonce.seed(seed);
        }
        let limiter = rate_limit::shared(
            &fingerprint,
            settings.rate_limit.unwrap_or(RateLimit::KRAKEN),
        );
        Ok(KrakenBroker {
            http: KrakenHttp::new(http, base, credentials, key.clone(), limiter),
            key,
            symbols: RwLock::new(Arc::new(KrakenSymbols::default())),
            settings,
        })
    }

    fn broker(&self) -> String {
        BrokerKind::Kraken.to_string()
    }

    async fn refresh_symbols(&self) -> Result<Arc<KrakenSymbols>, BrokerError> {
        let retry = &self.settings.retry;
        let assets = retry.run("kraken Assets", || self.http.assets()).await?;
        let pairs = retry
            .run("kraken AssetPairs", || self.http.asset_pairs())
            .await?;
        let symbols = Arc::new(KrakenSymbols::new(&assets, &pairs));
        *self.symbols.write().unwrap_or_else(|p| p.into_inner()) = symbols.clone();
        Ok(symbols)
    }

    async fn symbols(&self) -> Result<Arc<KrakenSymbols>, BrokerError> {
        let current = self
            .symbols
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if current.is_empty() {
            return self.refresh_symbols().await;
        }
        Ok(current)
    }

    async fn ticker_batch(
        &self,
        keys: &[&str],
        symbol: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, Ticker>, BrokerError> {
        self.settings
            .retry
            .run("kraken Ticker", || self.http.ticker(keys, symbol))
            .await
    }

    /// Looks for the order in OpenOrders, then ClosedOrders.
    async fn find_by_cl_ord_id(
        &self,
        symbols: &KrakenSymbols,
        symbol: &Symbol,
        cid: &str,
    ) -> Result<Option<OrderStatus>, BrokerError> {
        let retry = &self.settings.retry;
        let open = retry
            .run("kraken OpenOrders", || self.http.open_orders(Some(cid)))
            .await?;
        let closed_orders;
        let mut found = open
            .open
            .iter()
            .find(|(_, o)| o.cl_ord_id.as_deref() == Some(cid));
        if found.is_none() {
            closed_orders = retry
                .run("kraken ClosedOrders", || self.http.closed_orders(cid))
                .await?;
            found = closed_orders
                .closed
                .iter()
                .find(|(_, o)| o.cl_ord_id.as_deref() == Some(cid));
        }
        found
            .map(|(txid, order)| parse::order_status(txid, order, symbols, Some(symbol)))
            .transpose()
    }

    async fn status_after_accept(
        &self,
        order: &SellOrder,
        txid: &str,
    ) -> Result<OrderStatus, BrokerError> {
        match self.order(&order.symbol, txid).await {
            Ok(status) => Ok(status),
            Err(e) => {
                tracing::warn!(account = %self.settings.account, order_id = txid, error = %e, "order accepted but its status could not be read yet");
                Ok(OrderStatus {
                    order_id: txid.to_string(),
                    client_order_id: Some(order.client_order_id.to_string()),
                    symbol: order.symbol.clone(),
                    state: OrderState::Open,
                    quantity: order.quantity,
                    filled_quantity: Quantity::ZERO,
                    average_fill_price: None,
                    reason: None,
                })
            }
        }
    }
}

/// `quantity` written with exactly `lot_decimals` decimals; refuses a quantity that would need
/// rounding (the caller floors to the size increment first).
pub fn format_volume(quantity: Quantity, lot_decimals: u32) -> Option<String> {
    let mut value = quantity.value().normalize();
    if value.scale() > lot_decimals || value <= Decimal::ZERO {
        return None;
    }
    value.rescale(lot_decimals);
    Some(value.to_string())
}

#[async_trait]
impl Broker for KrakenBroker {
    fn kind(&self) -> BrokerKind {
        BrokerKind::Kraken
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        self.server_time().await?;
        self.refresh_symbols().await?;
        self.settings
            .retry
            .run("kraken BalanceEx", || self.http.balance_ex())
            .await?;
        Ok(())
    }

    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError> {
        let sent = Utc::now();
        let time = self
            .settings
            .retry
            .run("kraken Time", || self.http.time())
            .await?;
        let server = Utc
            .timestamp_opt(time.unixtime, 0)
            .single()
            .ok_or_else(|| BrokerError::InvalidResponse {
                broker: self.broker(),
                message: format!("server time {} is out of range", time.unixtime),
            })?;
        let second = Duration::from_secs(1);
        let skew = clock::skew(server, sent, Utc::now(), second);
        clock::warn_on_skew(
            BrokerKind::Kraken,
            skew,
            self.settings.max_clock_skew,
            second,
        );
        Ok(Some(server))
    }

    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError> {
        let balances = self
            .settings
            .retry
            .run("kraken BalanceEx", || self.http.balance_ex())
            .await?;
        let symbols = self.symbols().await?;
        match parse::holdings(&balances, &symbols, cash_assets, &self.settings.quote) {
            Err(BrokerError::UnknownSymbol { .. }) => {
                // A newly listed asset: learn the names again once.
                let symbols = self.refresh_symbols().await?;
                parse::holdings(&balances, &symbols, cash_assets, &self.settings.quote)
            }
            other => other,
        }
    }

    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        let map = self.symbols().await?;
        let mut out: Vec<(Symbol, Result<Quote, BrokerError>)> = Vec::new();
        let mut wanted: Vec<(&Symbol, &str)> = Vec::new();
        for symbol in symbols {
            match map.pair(symbol) {
                Ok(pair) => wanted.push((symbol, &pair.key)),
                Err(e) => out.push((symbol.clone(), Err(e))),
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let keys: Vec<&str> = wanted.iter().map(|(_, k)| *k).collect();
        match self.ticker_batch(&keys, None).await {
            Ok(tickers) => {
                for (symbol, key) in wanted {
                    let quote = tickers.get(key).map_or_else(
                        || {
                            Err(BrokerError::UnknownSymbol {
                                symbol: symbol.to_string(),
                            })
                        },
                        |t| parse::quote(symbol, t),
                    );
                    out.push((symbol.clone(), quote));
                }
            }
            // One bad pair fails Kraken's whole batch: price the others one by one.
            Err(BrokerError::UnknownSymbol { .. }) if wanted.len() > 1 => {
                for (symbol, key) in wanted {
                    let quote = self
                        .ticker_batch(&[key], Some(symbol.as_str()))
                        .await
                        .and_then(|t| {
                            t.get(key).map_or_else(
                                || {
                                    Err(BrokerError::UnknownSymbol {
                                        symbol: symbol.to_string(),
                                    })
                                },
                                |t| parse::quote(symbol, t),
                            )
                        });
                    out.push((symbol.clone(), quote));
                }
            }
            Err(BrokerError::UnknownSymbol { .. }) => {
                for (symbol, _) in wanted {
                    out.push((
                        symbol.clone(),
                        Err(BrokerError::UnknownSymbol {
                            symbol: symbol.to_string(),
                        }),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError> {
        Ok(self.symbols().await?.pair(symbol)?.rules())
    }

    async fn market_open(&self, symbol: &Symbol) -> Result<bool, BrokerError> {
        self.symbols().await?.pair(symbol)?;
        Ok(true)
    }

    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError> {
        let broker = self.broker();
        let symbols = self.symbols().await?;
        let pair = symbols.pair(&order.symbol)?;
        let cid = order.client_order_id.to_string();
        let volume = format_volume(order.quantity, pair.lot_decimals).ok_or_else(|| {
            BrokerError::OrderRejected {
                broker: broker.clone(),
                reason: format!(
                    "quantity {} is not positive or has more than {} decimals (floor it to the size increment)",
                    order.quantity, pair.lot_decimals
                ),
            }
        })?;
        tracing::info!(
            account = %self.settings.account,
            broker = %broker,
            symbol = %order.symbol,
            quantity = %order.quantity,
            pair = %pair.key,
            client_order_id = %cid,
            "placing market sell"
        );
        let mut last_error: Option<BrokerError> = None;
        let mut unknown: Option<String> = None;
        let mut attempt = 0;
        while attempt < self.settings.retry.max_attempts {
            attempt += 1;
            if attempt > 1 {
                let hint = match &last_error {
                    Some(BrokerError::RateLimited { retry_after, .. }) => *retry_after,
                    _ => None,
                };
                match self.settings.retry.backoff(attempt - 1, hint) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => break,
                }
            }
            let resp = match self.http.add_market_sell(&pair.key, &volume, &cid).await {
                Err(SendError::NotSent(message)) => {
                    last_error = Some(BrokerError::Transient {
                        broker: broker.clone(),
                        message,
                    });
                    continue;
                }
                Err(SendError::Lost(message)) => {
                    unknown = Some(message);
                    break;
                }
                Ok(resp) => resp,
            };
            if !resp.is_success() {
                let error = classify_http(&resp);
                match error {
                    BrokerError::RateLimited { .. } => {
                        last_error = Some(error);
                        continue;
                    }
                    BrokerError::Transient { message, .. } => {
                        unknown = Some(message);
                        break;
                    }
                    other => return Err(other),
                }
            }
            match add_order_result(&resp) {
                Ok(result) => {
                    let Some(txid) = result.txid.first() else {
                        unknown = Some("AddOrder answered without a txid".to_string());
                        break;
                    };
                    tracing::info!(
                        account = %self.settings.account,
                        symbol = %order.symbol,
                        quantity = %order.quantity,
                        client_order_id = %cid,
                        order_id = %txid,
                        "market sell accepted"
                    );
                    return self.status_after_accept(order, txid).await;
                }
                // Kraken refused it before placing: safe to send again with a new nonce.
                Err(e @ (BrokerError::InvalidNonce { .. } | BrokerError::RateLimited { .. })) => {
                    tracing::warn!(client_order_id = %cid, error = %e, "AddOrder refused before placement, will retry");
                    last_error = Some(e);
                }
                Err(BrokerError::Transient { message, .. })
                | Err(BrokerError::InvalidResponse { message, .. }) => {
                    unknown = Some(message);
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        account = %self.settings.account,
                        symbol = %order.symbol,
                        quantity = %order.quantity,
                        client_order_id = %cid,
                        error = %e,
                        "market sell refused"
                    );
                    return Err(e);
                }
            }
        }
        match unknown {
            Some(cause) => {
                tracing::warn!(client_order_id = %cid, cause, "AddOrder outcome unknown; looking the client order id up instead of re-sending");
                resolve(
                    self.settings.order_lookup,
                    BrokerKind::Kraken,
                    &self.settings.account,
                    &cid,
                    &cause,
                    || self.find_by_cl_ord_id(&symbols, &order.symbol, &cid),
                )
                .await
            }
            None => Err(last_error.unwrap_or(BrokerError::Transient {
                broker,
                message: "order placement not attempted".to_string(),
            })),
        }
    }

    async fn order_by_client_id(
        &self,
        symbol: &Symbol,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderStatus>, BrokerError> {
        let symbols = self.symbols().await?;
        self.find_by_cl_ord_id(&symbols, symbol, &client_order_id.to_string())
            .await
    }

    async fn order(&self, symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError> {
        let symbols = self.symbols().await?;
        let orders = self
            .settings
            .retry
            .run("kraken QueryOrders", || self.http.query_orders(order_id))
            .await?;
        let order = orders.get(order_id).ok_or_else(|| BrokerError::NotFound {
            broker: self.broker(),
            message: format!("order {order_id}"),
        })?;
        parse::order_status(order_id, order, &symbols, Some(symbol))
    }

    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError> {
        let symbols = self.symbols().await?;
        let open = self
            .settings
            .retry
            .run("kraken OpenOrders", || self.http.open_orders(None))
            .await?;
        open.open
            .iter()
            .map(|(txid, o)| parse::order_status(txid, o, &symbols, None))
            .collect()
    }

    async fn cancel(&self, _symbol: &Symbol, order_id: &str) -> Result<(), BrokerError> {
        let result = self
            .settings
            .retry
            .run("kraken CancelOrder", || self.http.cancel(order_id))
            .await?;
        if result.count == 0 {
            return Err(BrokerError::NotFound {
                broker: self.broker(),
                message: format!("no order {order_id} was cancelled"),
            });
        }
        Ok(())
    }

    fn last_nonce(&self) -> Option<u64> {
        Some(self.key.nonce.last())
    }

    fn seed_nonce(&self, last_used: u64) {
        self.key.nonce.seed(last_used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn volume_is_written_with_lot_decimals_and_never_rounded() {
        assert_eq!(
            format_volume(Quantity(dec!(0.0125)), 8).as_deref(),
            Some("0.01250000")
        );
        assert_eq!(format_volume(Quantity(dec!(3)), 0).as_deref(), Some("3"));
        assert_eq!(format_volume(Quantity(dec!(0.123456789)), 8), None);
        assert_eq!(format_volume(Quantity(dec!(0)), 8), None);
        assert_eq!(format_volume(Quantity(dec!(-1)), 8), None);
    }
}

//! [`Broker`] for Alpaca.
//!
//! Placement: Alpaca refuses a reused `client_order_id` (422, code 40010001), so an unknown
//! outcome is settled by re-posting the same order: either it is placed now, or the refusal proves
//! the first attempt arrived and the order is fetched by client id. Equities are never sent a
//! market order while the market is closed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nija_proto::{ClientOrderId, Quantity, Symbol};

use super::http::client::{AlpacaHttp, market_sell_body};
use super::http::errors::{classify, decode, is_duplicate_client_order_id};
use super::http::models::Order;
use super::http::{LIVE_URL, default_data_url};
use super::parse;
use super::symbols::{AlpacaName, AlpacaSymbols};
use crate::broker::{
    Broker, BrokerKind, Holdings, OrderState, OrderStatus, ProductRules, Quote, SellOrder,
};
use crate::common::clock;
use crate::common::http::{HttpClient, SendError, parse_base_url};
use crate::common::rate_limit::{self, RateLimit};
use crate::common::resolve::resolve;
use crate::credentials::{AlpacaCredentials, Credentials};
use crate::error::BrokerError;
use crate::settings::BrokerSettings;

pub struct AlpacaBroker {
    http: AlpacaHttp,
    symbols: RwLock<Arc<AlpacaSymbols>>,
    settings: BrokerSettings,
}

impl AlpacaBroker {
    pub fn new(
        settings: BrokerSettings,
        credentials: AlpacaCredentials,
    ) -> Result<AlpacaBroker, BrokerError> {
        let base_text = settings
            .base_url
            .clone()
            .unwrap_or_else(|| LIVE_URL.to_string());
        let base = parse_base_url(BrokerKind::Alpaca, &base_text)?;
        let data_text = settings
            .data_url
            .clone()
            .unwrap_or_else(|| default_data_url(&base_text));
        let data = parse_base_url(BrokerKind::Alpaca, &data_text)?;
        let http = HttpClient::new(BrokerKind::Alpaca, &settings.timeouts, &settings.extra_ca)?;
        let fingerprint = Credentials::Alpaca(credentials.clone()).fingerprint();
        let limiter = rate_limit::shared(
            &fingerprint,
            settings.rate_limit.unwrap_or(RateLimit::ALPACA),
        );
        Ok(AlpacaBroker {
            http: AlpacaHttp::new(http, base, data, credentials, limiter),
            symbols: RwLock::new(Arc::new(AlpacaSymbols::default())),
            settings,
        })
    }

    fn broker(&self) -> String {
        BrokerKind::Alpaca.to_string()
    }

    async fn refresh_symbols(&self) -> Result<Arc<AlpacaSymbols>, BrokerError> {
        let assets = self
            .settings
            .retry
            .run("alpaca crypto assets", || self.http.crypto_assets())
            .await?;
        let symbols = Arc::new(AlpacaSymbols::new(&assets, &self.settings.quote));
        *self.symbols.write().unwrap_or_else(|p| p.into_inner()) = symbols.clone();
        Ok(symbols)
    }

    async fn symbols(&self) -> Result<Arc<AlpacaSymbols>, BrokerError> {
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

    async fn fetch_by_client_id(
        &self,
        symbols: &AlpacaSymbols,
        symbol: &Symbol,
        cid: &str,
    ) -> Result<Option<OrderStatus>, BrokerError> {
        let found = self
            .settings
            .retry
            .run("alpaca order by client id", || {
                self.http.order_by_client_id(cid)
            })
            .await;
        match found {
            Ok(order) => parse::order_status(&order, symbols, Some(symbol)).map(Some),
            Err(BrokerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Prices `names` in one data call; a symbol missing from the answer gets its own error.
    async fn quote_batch(
        &self,
        crypto: bool,
        names: &[(Symbol, String)],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
        let result = self
            .settings
            .retry
            .run("alpaca latest quotes", || async {
                if crypto {
                    self.http.crypto_quotes(&list).await
                } else {
                    self.http.stock_quotes(&list).await
                }
            })
            .await;
        let quotes = match result {
            Ok(quotes) => quotes,
            // An invalid symbol fails the whole batch (400/422): price one by one.
            Err(BrokerError::OrderRejected { .. } | BrokerError::NotFound { .. })
                if names.len() > 1 =>
            {
                let mut out = Vec::with_capacity(names.len());
                for one in names {
                    out.extend(
                        Box::pin(self.quote_batch(crypto, std::slice::from_ref(one))).await?,
                    );
                }
                return Ok(out);
            }
            Err(BrokerError::OrderRejected { .. } | BrokerError::NotFound { .. }) => {
                return Ok(names
                    .iter()
                    .map(|(symbol, _)| {
                        (
                            symbol.clone(),
                            Err(BrokerError::UnknownSymbol {
                                symbol: symbol.to_string(),
                            }),
                        )
                    })
                    .collect());
            }
            Err(e) => return Err(e),
        };
        Ok(names
            .iter()
            .map(|(symbol, name)| {
                let quote = quotes.quotes.get(name).map_or_else(
                    || {
                        Err(BrokerError::UnknownSymbol {
                            symbol: symbol.to_string(),
                        })
                    },
                    |q| parse::quote(symbol, q),
                );
                (symbol.clone(), quote)
            })
            .collect())
    }

    async fn status_after_accept(
        &self,
        symbols: &AlpacaSymbols,
        order: &SellOrder,
        placed: &Order,
    ) -> Result<OrderStatus, BrokerError> {
        parse::order_status(placed, symbols, Some(&order.symbol)).or_else(|e| {
            tracing::warn!(order_id = placed.id, error = %e, "order accepted but its answer could not be normalised");
            Ok(OrderStatus {
                order_id: placed.id.clone(),
                client_order_id: Some(order.client_order_id.to_string()),
                symbol: order.symbol.clone(),
                state: OrderState::Open,
                quantity: order.quantity,
                filled_quantity: Quantity::ZERO,
                average_fill_price: None,
                reason: None,
            })
        })
    }
}

#[async_trait]
impl Broker for AlpacaBroker {
    fn kind(&self) -> BrokerKind {
        BrokerKind::Alpaca
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        let account = self
            .settings
            .retry
            .run("alpaca account", || self.http.account())
            .await?;
        if account.trading_blocked {
            tracing::warn!(account = %self.settings.account, status = account.status, "Alpaca reports trading blocked on this account");
        }
        self.refresh_symbols().await?;
        self.server_time().await?;
        Ok(())
    }

    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError> {
        let sent = Utc::now();
        let clock = self
            .settings
            .retry
            .run("alpaca clock", || self.http.clock())
            .await?;
        let skew = clock::skew(clock.timestamp, sent, Utc::now(), Duration::ZERO);
        clock::warn_on_skew(
            BrokerKind::Alpaca,
            skew,
            self.settings.max_clock_skew,
            Duration::ZERO,
        );
        Ok(Some(clock.timestamp))
    }

    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError> {
        let retry = &self.settings.retry;
        let account = retry.run("alpaca account", || self.http.account()).await?;
        let positions = retry
            .run("alpaca positions", || self.http.positions())
            .await?;
        let symbols = self.symbols().await?;
        match parse::holdings(&account, &positions, &symbols, cash_assets) {
            Err(BrokerError::UnknownSymbol { .. }) => {
                // A newly listed pair: learn the names again once.
                let symbols = self.refresh_symbols().await?;
                parse::holdings(&account, &positions, &symbols, cash_assets)
            }
            other => other,
        }
    }

    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        let map = self.symbols().await?;
        let mut out = Vec::new();
        let mut crypto = Vec::new();
        let mut equities = Vec::new();
        for symbol in symbols {
            match map.name(symbol) {
                Ok(name @ AlpacaName::Crypto { .. }) => {
                    crypto.push((symbol.clone(), name.order_symbol().to_string()))
                }
                Ok(name) => equities.push((symbol.clone(), name.order_symbol().to_string())),
                Err(e) => out.push((symbol.clone(), Err(e))),
            }
        }
        out.extend(self.quote_batch(true, &crypto).await?);
        out.extend(self.quote_batch(false, &equities).await?);
        Ok(out)
    }

    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError> {
        let map = self.symbols().await?;
        if let Some(asset) = map.crypto_asset(symbol) {
            return Ok(parse::crypto_rules(symbol, asset));
        }
        let AlpacaName::Equity { ticker } = map.name(symbol)? else {
            return Err(BrokerError::UnknownSymbol {
                symbol: symbol.to_string(),
            });
        };
        let asset = self
            .settings
            .retry
            .run("alpaca asset", || self.http.asset(&ticker))
            .await
            .map_err(|e| match e {
                BrokerError::UnknownSymbol { .. } => BrokerError::UnknownSymbol {
                    symbol: symbol.to_string(),
                },
                other => other,
            })?;
        Ok(parse::equity_rules(symbol, &asset))
    }

    async fn market_open(&self, symbol: &Symbol) -> Result<bool, BrokerError> {
        if self.symbols().await?.name(symbol)?.is_crypto() {
            return Ok(true);
        }
        let clock = self
            .settings
            .retry
            .run("alpaca clock", || self.http.clock())
            .await?;
        Ok(clock.is_open)
    }

    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError> {
        let broker = self.broker();
        let symbols = self.symbols().await?;
        let name = symbols.name(&order.symbol)?;
        let cid = order.client_order_id.to_string();
        if order.quantity.value() <= rust_decimal::Decimal::ZERO {
            return Err(BrokerError::OrderRejected {
                broker,
                reason: format!("quantity {} is not positive", order.quantity),
            });
        }
        if !name.is_crypto() && !self.market_open(&order.symbol).await? {
            tracing::info!(
                account = %self.settings.account,
                symbol = %order.symbol,
                quantity = %order.quantity,
                client_order_id = %cid,
                "market closed: market sell not sent"
            );
            return Err(BrokerError::MarketClosed {
                broker,
                symbol: order.symbol.to_string(),
            });
        }
        let body = market_sell_body(
            name.order_symbol(),
            &order.quantity.to_string(),
            name.is_crypto(),
            &cid,
        );
        tracing::info!(
            account = %self.settings.account,
            broker = %broker,
            symbol = %order.symbol,
            quantity = %order.quantity,
            client_order_id = %cid,
            "placing market sell"
        );
        let mut maybe_placed: Option<String> = None;
        let mut last_error: Option<BrokerError> = None;
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
            match self.http.submit_order(&body).await {
                Err(SendError::NotSent(message)) => {
                    last_error = Some(BrokerError::Transient {
                        broker: broker.clone(),
                        message,
                    });
                }
                Err(SendError::Lost(message)) => {
                    tracing::warn!(client_order_id = %cid, message, "order placement outcome unknown, re-posting the same client order id");
                    maybe_placed = Some(message);
                }
                Ok(resp) if resp.is_success() => match decode::<Order>(&resp) {
                    Ok(placed) => {
                        tracing::info!(
                            account = %self.settings.account,
                            symbol = %order.symbol,
                            quantity = %order.quantity,
                            client_order_id = %cid,
                            order_id = placed.id,
                            "market sell accepted"
                        );
                        return self.status_after_accept(&symbols, order, &placed).await;
                    }
                    Err(e) => {
                        maybe_placed = Some(e.to_string());
                        break;
                    }
                },
                Ok(resp) if is_duplicate_client_order_id(&resp) => {
                    tracing::info!(client_order_id = %cid, "client order id already used: the order exists, fetching it");
                    return match self
                        .fetch_by_client_id(&symbols, &order.symbol, &cid)
                        .await?
                    {
                        Some(status) => Ok(status),
                        None => {
                            resolve(
                                self.settings.order_lookup,
                                BrokerKind::Alpaca,
                                &self.settings.account,
                                &cid,
                                "the broker says the client order id is taken",
                                || self.fetch_by_client_id(&symbols, &order.symbol, &cid),
                            )
                            .await
                        }
                    };
                }
                Ok(resp) => match classify(&resp) {
                    BrokerError::Transient { message, .. } => maybe_placed = Some(message),
                    e @ BrokerError::RateLimited { .. } => last_error = Some(e),
                    e => {
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
                },
            }
        }
        match maybe_placed {
            Some(cause) => {
                resolve(
                    self.settings.order_lookup,
                    BrokerKind::Alpaca,
                    &self.settings.account,
                    &cid,
                    &cause,
                    || self.fetch_by_client_id(&symbols, &order.symbol, &cid),
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
        self.fetch_by_client_id(&symbols, symbol, &client_order_id.to_string())
            .await
    }

    async fn order(&self, symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError> {
        let symbols = self.symbols().await?;
        let order = self
            .settings
            .retry
            .run("alpaca order", || self.http.order(order_id))
            .await?;
        parse::order_status(&order, &symbols, Some(symbol))
    }

    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError> {
        let symbols = self.symbols().await?;
        let orders = self
            .settings
            .retry
            .run("alpaca open orders", || self.http.open_orders())
            .await?;
        orders
            .iter()
            .map(|o| parse::order_status(o, &symbols, None))
            .collect()
    }

    async fn cancel(&self, _symbol: &Symbol, order_id: &str) -> Result<(), BrokerError> {
        self.settings
            .retry
            .run("alpaca cancel", || self.http.cancel(order_id))
            .await
    }
}

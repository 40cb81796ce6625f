//! [`Broker`] for Coinbase Advanced Trade.
//!
//! Placement: Coinbase treats a re-sent `client_order_id` as the same order, so an unknown outcome
//! (timeout, dropped connection, 5xx) is settled by re-posting the same body; if that cannot get
//! an answer either, the order is looked up by client id in the order list.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nija_proto::{ClientOrderId, Symbol};

use super::http::client::{CoinbaseHttp, PAGE_LIMIT, market_sell_body};
use super::http::errors::{
    classify, classify_create_failure, decode, is_duplicate_client_order_id,
};
use super::http::models::{Account, CreateOrderResponse};
use super::http::{LIVE_URL, auth::JwtSigner};
use super::parse;
use crate::broker::{
    Broker, BrokerKind, Holdings, OrderState, OrderStatus, ProductRules, Quote, SellOrder,
};
use crate::common::clock;
use crate::common::http::{HttpClient, SendError, parse_base_url};
use crate::common::rate_limit::{self, RateLimit};
use crate::common::resolve::resolve;
use crate::credentials::{CoinbaseCredentials, Credentials};
use crate::error::BrokerError;
use crate::settings::BrokerSettings;

/// How many pages of the order list a client-id look-up reads.
const LOOKUP_PAGES: usize = 4;

pub struct CoinbaseBroker {
    http: CoinbaseHttp,
    settings: BrokerSettings,
}

impl CoinbaseBroker {
    pub fn new(
        settings: BrokerSettings,
        credentials: CoinbaseCredentials,
    ) -> Result<CoinbaseBroker, BrokerError> {
        let base = parse_base_url(
            BrokerKind::Coinbase,
            settings.base_url.as_deref().unwrap_or(LIVE_URL),
        )?;
        let http = HttpClient::new(BrokerKind::Coinbase, &settings.timeouts, &settings.extra_ca)?;
        let signer = JwtSigner::new(&credentials);
        let fingerprint = Credentials::Coinbase(credentials).fingerprint();
        let limiter = rate_limit::shared(
            &fingerprint,
            settings.rate_limit.unwrap_or(RateLimit::COINBASE),
        );
        Ok(CoinbaseBroker {
            http: CoinbaseHttp::new(http, base, signer, limiter),
            settings,
        })
    }

    fn broker(&self) -> String {
        BrokerKind::Coinbase.to_string()
    }

    async fn all_accounts(&self) -> Result<Vec<Account>, BrokerError> {
        let mut accounts = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .settings
                .retry
                .run("coinbase accounts", || self.http.accounts_page(&cursor))
                .await?;
            accounts.extend(page.accounts);
            if !page.has_next || page.cursor.is_empty() {
                return Ok(accounts);
            }
            cursor = page.cursor;
        }
    }

    /// Lists orders matching `query` (all pages up to `max_pages`).
    async fn list_orders(
        &self,
        query: &[(&str, &str)],
        max_pages: usize,
        mut stop: impl FnMut(&OrderStatus) -> bool,
    ) -> Result<Vec<OrderStatus>, BrokerError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..max_pages {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", PAGE_LIMIT));
            if !cursor.is_empty() {
                q.push(("cursor", &cursor));
            }
            let page = self
                .settings
                .retry
                .run("coinbase list orders", || self.http.orders_page(&q))
                .await?;
            for order in &page.orders {
                let status = parse::order_status(order)?;
                let done = stop(&status);
                out.push(status);
                if done {
                    return Ok(out);
                }
            }
            if !page.has_next || page.cursor.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        Ok(out)
    }

    async fn status_after_accept(
        &self,
        order: &SellOrder,
        order_id: &str,
    ) -> Result<OrderStatus, BrokerError> {
        match self.order(&order.symbol, order_id).await {
            Ok(status) => Ok(status),
            Err(e) => {
                tracing::warn!(
                    account = %self.settings.account,
                    order_id,
                    error = %e,
                    "order accepted but its status could not be read yet"
                );
                Ok(OrderStatus {
                    order_id: order_id.to_string(),
                    client_order_id: Some(order.client_order_id.to_string()),
                    symbol: order.symbol.clone(),
                    state: OrderState::Open,
                    quantity: order.quantity,
                    filled_quantity: nija_proto::Quantity::ZERO,
                    average_fill_price: None,
                    reason: None,
                })
            }
        }
    }
}

/// A 400/404 to a request naming products: the request, not the broker, is at fault.
fn refused_request(e: &BrokerError) -> bool {
    matches!(
        e,
        BrokerError::NotFound { .. }
            | BrokerError::UnknownSymbol { .. }
            | BrokerError::InvalidResponse { .. }
    )
}

#[async_trait]
impl Broker for CoinbaseBroker {
    fn kind(&self) -> BrokerKind {
        BrokerKind::Coinbase
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        self.settings
            .retry
            .run("coinbase connect", || self.http.accounts_page(""))
            .await?;
        self.server_time().await?;
        Ok(())
    }

    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError> {
        let sent = Utc::now();
        let time = self
            .settings
            .retry
            .run("coinbase time", || self.http.time())
            .await?;
        let skew = clock::skew(time.iso, sent, Utc::now(), Duration::ZERO);
        clock::warn_on_skew(
            BrokerKind::Coinbase,
            skew,
            self.settings.max_clock_skew,
            Duration::ZERO,
        );
        Ok(Some(time.iso))
    }

    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError> {
        let accounts = self.all_accounts().await?;
        parse::holdings(&accounts, cash_assets, &self.settings.quote)
    }

    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        if symbols.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let books = match self
            .settings
            .retry
            .run("coinbase best_bid_ask", || self.http.best_bid_ask(&ids))
            .await
        {
            Ok(books) => books,
            // A product Coinbase does not know can fail the whole batch: price one by one.
            Err(e) if symbols.len() > 1 && refused_request(&e) => {
                let mut out = Vec::with_capacity(symbols.len());
                for symbol in symbols {
                    let one = Box::pin(self.quotes(std::slice::from_ref(symbol))).await?;
                    out.extend(one);
                }
                return Ok(out);
            }
            Err(e) if refused_request(&e) => {
                return Ok(vec![(
                    symbols[0].clone(),
                    Err(BrokerError::UnknownSymbol {
                        symbol: symbols[0].to_string(),
                    }),
                )]);
            }
            Err(e) => return Err(e),
        };
        Ok(symbols
            .iter()
            .map(|symbol| {
                let quote = books
                    .pricebooks
                    .iter()
                    .find(|b| b.product_id == symbol.as_str())
                    .map_or_else(
                        || {
                            Err(BrokerError::UnknownSymbol {
                                symbol: symbol.to_string(),
                            })
                        },
                        parse::quote,
                    );
                (symbol.clone(), quote)
            })
            .collect())
    }

    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError> {
        let product = self
            .settings
            .retry
            .run("coinbase product", || self.http.product(symbol.as_str()))
            .await?;
        parse::rules(&product)
    }

    async fn market_open(&self, _symbol: &Symbol) -> Result<bool, BrokerError> {
        Ok(true)
    }

    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError> {
        let broker = self.broker();
        let cid = order.client_order_id.to_string();
        if order.quantity.value() <= rust_decimal::Decimal::ZERO {
            return Err(BrokerError::OrderRejected {
                broker,
                reason: format!("quantity {} is not positive", order.quantity),
            });
        }
        let body = market_sell_body(&cid, order.symbol.as_str(), &order.quantity.to_string());
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
            match self.http.create_order(&body).await {
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
                Ok(resp) if resp.is_success() => {
                    // A 2xx we cannot read may still have created the order: ask again.
                    let created: CreateOrderResponse = match decode(&resp) {
                        Ok(created) => created,
                        Err(e) => {
                            maybe_placed = Some(e.to_string());
                            continue;
                        }
                    };
                    if created.success {
                        let Some(order_id) = created
                            .success_response
                            .map(|s| s.order_id)
                            .or(created.order_id)
                            .filter(|id| !id.is_empty())
                        else {
                            maybe_placed = Some("order accepted without an order id".to_string());
                            continue;
                        };
                        tracing::info!(
                            account = %self.settings.account,
                            symbol = %order.symbol,
                            quantity = %order.quantity,
                            client_order_id = %cid,
                            order_id,
                            "market sell accepted"
                        );
                        return self.status_after_accept(order, &order_id).await;
                    }
                    let failure = created.error_response.unwrap_or_default();
                    if is_duplicate_client_order_id(&failure)
                        && let Some(status) = self
                            .order_by_client_id(&order.symbol, &order.client_order_id)
                            .await?
                    {
                        return Ok(status);
                    }
                    let error = classify_create_failure(&failure);
                    tracing::warn!(
                        account = %self.settings.account,
                        symbol = %order.symbol,
                        quantity = %order.quantity,
                        client_order_id = %cid,
                        error = %error,
                        "market sell refused"
                    );
                    return Err(error);
                }
                Ok(resp) => {
                    let error = classify(&resp);
                    match error {
                        BrokerError::Transient { ref message, .. } => {
                            maybe_placed = Some(message.clone());
                            last_error = Some(error);
                        }
                        BrokerError::RateLimited { .. } => last_error = Some(error),
                        BrokerError::InvalidResponse { message, .. } => {
                            return Err(BrokerError::OrderRejected {
                                broker,
                                reason: message,
                            });
                        }
                        other => return Err(other),
                    }
                }
            }
        }
        match maybe_placed {
            Some(cause) => {
                resolve(
                    self.settings.order_lookup,
                    BrokerKind::Coinbase,
                    &self.settings.account,
                    &cid,
                    &cause,
                    || self.order_by_client_id(&order.symbol, &order.client_order_id),
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
        let cid = client_order_id.to_string();
        let found = self
            .list_orders(&[("product_ids", symbol.as_str())], LOOKUP_PAGES, |o| {
                o.client_order_id.as_deref() == Some(cid.as_str())
            })
            .await?;
        Ok(found
            .into_iter()
            .find(|o| o.client_order_id.as_deref() == Some(cid.as_str())))
    }

    async fn order(&self, _symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError> {
        let got = self
            .settings
            .retry
            .run("coinbase order", || self.http.order(order_id))
            .await?;
        parse::order_status(&got.order)
    }

    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError> {
        self.list_orders(&[("order_status", "OPEN")], usize::MAX, |_| false)
            .await
    }

    async fn cancel(&self, _symbol: &Symbol, order_id: &str) -> Result<(), BrokerError> {
        let ids = [order_id];
        let results = self
            .settings
            .retry
            .run("coinbase cancel", || self.http.cancel(&ids))
            .await?;
        let result = results
            .results
            .iter()
            .find(|r| r.order_id == order_id)
            .ok_or_else(|| BrokerError::InvalidResponse {
                broker: self.broker(),
                message: format!("cancel response does not mention order {order_id}"),
            })?;
        if result.success {
            return Ok(());
        }
        if result.failure_reason == "UNKNOWN_CANCEL_ORDER" {
            return Err(BrokerError::NotFound {
                broker: self.broker(),
                message: format!("order {order_id}: {}", result.failure_reason),
            });
        }
        Err(BrokerError::OrderRejected {
            broker: self.broker(),
            reason: format!("cancel of {order_id} refused: {}", result.failure_reason),
        })
    }
}

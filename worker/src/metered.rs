//! Every broker call counted in one place: a [`Broker`] that wraps a session's adapter and records
//! each operation's duration in `nija_broker_requests_total` / `nija_broker_request_seconds` and
//! each failure, by its [`nija_brokers::ErrorClass`], in `nija_broker_errors_total`. An operation
//! is one trait call: retries inside the adapter are counted apart (`nija_broker_retries_total`),
//! so an error here is one the worker saw, after the adapter's own retries.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nija_brokers::{
    Broker, BrokerError, BrokerKind, Holdings, OrderStatus, ProductRules, Quote, SellOrder,
};
use nija_proto::{ClientOrderId, Symbol};
use nija_telemetry::BrokerMetrics;

pub struct MeteredBroker {
    inner: Arc<dyn Broker>,
    metrics: BrokerMetrics,
}

impl MeteredBroker {
    pub fn wrap(inner: Arc<dyn Broker>, metrics: BrokerMetrics) -> Arc<dyn Broker> {
        Arc::new(MeteredBroker { inner, metrics })
    }

    fn record<T>(
        &self,
        operation: &str,
        started: Instant,
        result: Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let broker = self.inner.kind().as_str();
        self.metrics.request(broker, operation, started.elapsed());
        if let Err(err) = &result {
            self.metrics.error(broker, err.class().as_str());
        }
        result
    }
}

#[async_trait]
impl Broker for MeteredBroker {
    fn kind(&self) -> BrokerKind {
        self.inner.kind()
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        let started = Instant::now();
        let result = self.inner.connect().await;
        self.record("connect", started, result)
    }

    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError> {
        let started = Instant::now();
        let result = self.inner.server_time().await;
        self.record("server_time", started, result)
    }

    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError> {
        let started = Instant::now();
        let result = self.inner.holdings(cash_assets).await;
        self.record("holdings", started, result)
    }

    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        let started = Instant::now();
        let result = self.inner.quotes(symbols).await;
        self.record("quotes", started, result)
    }

    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError> {
        let started = Instant::now();
        let result = self.inner.product_rules(symbol).await;
        self.record("product_rules", started, result)
    }

    async fn market_open(&self, symbol: &Symbol) -> Result<bool, BrokerError> {
        let started = Instant::now();
        let result = self.inner.market_open(symbol).await;
        self.record("market_open", started, result)
    }

    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError> {
        let started = Instant::now();
        let result = self.inner.market_sell(order).await;
        self.record("market_sell", started, result)
    }

    async fn order_by_client_id(
        &self,
        symbol: &Symbol,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderStatus>, BrokerError> {
        let started = Instant::now();
        let result = self.inner.order_by_client_id(symbol, client_order_id).await;
        self.record("order_by_client_id", started, result)
    }

    async fn order(&self, symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError> {
        let started = Instant::now();
        let result = self.inner.order(symbol, order_id).await;
        self.record("order", started, result)
    }

    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError> {
        let started = Instant::now();
        let result = self.inner.open_orders().await;
        self.record("open_orders", started, result)
    }

    async fn cancel(&self, symbol: &Symbol, order_id: &str) -> Result<(), BrokerError> {
        let started = Instant::now();
        let result = self.inner.cancel(symbol, order_id).await;
        self.record("cancel", started, result)
    }

    fn last_nonce(&self) -> Option<u64> {
        self.inner.last_nonce()
    }

    fn seed_nonce(&self, last_used: u64) {
        self.inner.seed_nonce(last_used);
    }
}

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

    /// Runs one operation of the adapter and records it.
    async fn timed<T>(
        &self,
        operation: &str,
        call: impl Future<Output = Result<T, BrokerError>>,
    ) -> Result<T, BrokerError> {
        let started = Instant::now();
        let result = call.await;
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
        self.timed("connect", self.inner.connect()).await
    }

    async fn server_time(&self) -> Result<Option<DateTime<Utc>>, BrokerError> {
        self.timed("server_time", self.inner.server_time()).await
    }

    async fn holdings(&self, cash_assets: &[String]) -> Result<Holdings, BrokerError> {
        self.timed("holdings", self.inner.holdings(cash_assets))
            .await
    }

    async fn quotes(
        &self,
        symbols: &[Symbol],
    ) -> Result<Vec<(Symbol, Result<Quote, BrokerError>)>, BrokerError> {
        self.timed("quotes", self.inner.quotes(symbols)).await
    }

    async fn product_rules(&self, symbol: &Symbol) -> Result<ProductRules, BrokerError> {
        self.timed("product_rules", self.inner.product_rules(symbol))
            .await
    }

    async fn market_open(&self, symbol: &Symbol) -> Result<bool, BrokerError> {
        self.timed("market_open", self.inner.market_open(symbol))
            .await
    }

    async fn market_sell(&self, order: &SellOrder) -> Result<OrderStatus, BrokerError> {
        self.timed("market_sell", self.inner.market_sell(order))
            .await
    }

    async fn order_by_client_id(
        &self,
        symbol: &Symbol,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderStatus>, BrokerError> {
        self.timed(
            "order_by_client_id",
            self.inner.order_by_client_id(symbol, client_order_id),
        )
        .await
    }

    async fn order(&self, symbol: &Symbol, order_id: &str) -> Result<OrderStatus, BrokerError> {
        self.timed("order", self.inner.order(symbol, order_id))
            .await
    }

    async fn open_orders(&self) -> Result<Vec<OrderStatus>, BrokerError> {
        self.timed("open_orders", self.inner.open_orders()).await
    }

    async fn cancel(&self, symbol: &Symbol, order_id: &str) -> Result<(), BrokerError> {
        self.timed("cancel", self.inner.cancel(symbol, order_id))
            .await
    }

    fn last_nonce(&self) -> Option<u64> {
        self.inner.last_nonce()
    }

    fn seed_nonce(&self, last_used: u64) {
        self.inner.seed_nonce(last_used);
    }
}

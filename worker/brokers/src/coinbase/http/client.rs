//! Coinbase endpoints, one request each. Reads return typed bodies; order creation returns the
//! raw outcome because the adapter must tell "refused" from "unknown".

use std::sync::Arc;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::API_PREFIX;
use super::auth::{JwtSigner, jwt_uri};
use super::errors::decode;
use super::models::{
    AccountsPage, BestBidAsk, CancelResults, GetOrder, OrdersPage, Product, ServerTime,
};
use crate::broker::BrokerKind;
use crate::common::http::{HttpClient, RawResponse, SendError, join};
use crate::common::rate_limit::RateLimiter;
use crate::error::BrokerError;

/// Page size of list calls.
pub const PAGE_LIMIT: &str = "250";

pub struct CoinbaseHttp {
    http: HttpClient,
    base: Url,
    signer: JwtSigner,
    limiter: Arc<RateLimiter>,
}

impl CoinbaseHttp {
    pub fn new(
        http: HttpClient,
        base: Url,
        signer: JwtSigner,
        limiter: Arc<RateLimiter>,
    ) -> CoinbaseHttp {
        CoinbaseHttp {
            http,
            base,
            signer,
            limiter,
        }
    }

    /// The signed request, ready to send (public so tests can inspect what goes on the wire).
    pub fn build(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Request, BrokerError> {
        let url = join(&self.base, &format!("{API_PREFIX}{path}"));
        let token = self.signer.token(&jwt_uri(&method, &url));
        let mut builder = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder.body(body.to_string());
        }
        builder.build().map_err(|e| BrokerError::Config {
            broker: BrokerKind::Coinbase.to_string(),
            message: format!("cannot build a request for {path}: {e}"),
        })
    }

    /// One rate-limited request.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, SendError> {
        let request = self
            .build(method, path, query, body)
            .map_err(|e| SendError::NotSent(e.to_string()))?;
        let waited = self.limiter.acquire(1.0).await;
        crate::common::observe::rate_limited(crate::broker::BrokerKind::Coinbase, waited);
        self.http.send(request).await
    }

    async fn read<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, BrokerError> {
        let resp = self
            .call(method, path, query, body)
            .await
            .map_err(|e| e.into_transient(BrokerKind::Coinbase))?;
        if resp.status == 429 {
            self.limiter.pause(resp.retry_after).await;
        }
        decode(&resp)
    }

    pub async fn accounts_page(&self, cursor: &str) -> Result<AccountsPage, BrokerError> {
        let mut query = vec![("limit", PAGE_LIMIT)];
        if !cursor.is_empty() {
            query.push(("cursor", cursor));
        }
        self.read(Method::GET, "/accounts", &query, None).await
    }

    pub async fn best_bid_ask(&self, product_ids: &[&str]) -> Result<BestBidAsk, BrokerError> {
        let query: Vec<(&str, &str)> = product_ids.iter().map(|p| ("product_ids", *p)).collect();
        self.read(Method::GET, "/best_bid_ask", &query, None).await
    }

    /// A product's rules; a product Coinbase does not list (400/404) is an unknown symbol.
    pub async fn product(&self, product_id: &str) -> Result<Product, BrokerError> {
        let resp = self
            .call(Method::GET, &format!("/products/{product_id}"), &[], None)
            .await
            .map_err(|e| e.into_transient(BrokerKind::Coinbase))?;
        if matches!(resp.status, 400 | 404) {
            return Err(BrokerError::UnknownSymbol {
                symbol: product_id.to_string(),
            });
        }
        decode(&resp)
    }

    pub async fn order(&self, order_id: &str) -> Result<GetOrder, BrokerError> {
        self.read(
            Method::GET,
            &format!("/orders/historical/{order_id}"),
            &[],
            None,
        )
        .await
    }

    pub async fn orders_page(&self, query: &[(&str, &str)]) -> Result<OrdersPage, BrokerError> {
        self.read(Method::GET, "/orders/historical/batch", query, None)
            .await
    }

    pub async fn cancel(&self, order_ids: &[&str]) -> Result<CancelResults, BrokerError> {
        let body = serde_json::json!({ "order_ids": order_ids });
        self.read(Method::POST, "/orders/batch_cancel", &[], Some(&body))
            .await
    }

    pub async fn time(&self) -> Result<ServerTime, BrokerError> {
        self.read(Method::GET, "/time", &[], None).await
    }

    /// `POST /orders`; the caller interprets the outcome.
    pub async fn create_order(&self, body: &serde_json::Value) -> Result<RawResponse, SendError> {
        self.call(Method::POST, "/orders", &[], Some(body)).await
    }
}

/// The body of a market sell of `base_size` (a decimal string).
pub fn market_sell_body(
    client_order_id: &str,
    product_id: &str,
    base_size: &str,
) -> serde_json::Value {
    serde_json::json!({
        "client_order_id": client_order_id,
        "product_id": product_id,
        "side": "SELL",
        "order_configuration": { "market_market_ioc": { "base_size": base_size } },
    })
}

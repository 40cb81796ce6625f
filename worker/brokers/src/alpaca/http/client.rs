//! Alpaca endpoints, one request each.

use std::sync::Arc;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::errors::decode;
use super::models::{Account, Asset, Clock, LatestQuotes, Order, Position};
use super::{KEY_ID_HEADER, SECRET_KEY_HEADER};
use crate::broker::BrokerKind;
use crate::common::http::{HttpClient, RawResponse, SendError, join};
use crate::common::rate_limit::RateLimiter;
use crate::credentials::AlpacaCredentials;
use crate::error::BrokerError;

/// Stock quote feed of the free plan.
pub const STOCK_FEED: &str = "iex";

pub struct AlpacaHttp {
    http: HttpClient,
    base: Url,
    data: Url,
    credentials: AlpacaCredentials,
    limiter: Arc<RateLimiter>,
}

impl AlpacaHttp {
    pub fn new(
        http: HttpClient,
        base: Url,
        data: Url,
        credentials: AlpacaCredentials,
        limiter: Arc<RateLimiter>,
    ) -> AlpacaHttp {
        AlpacaHttp {
            http,
            base,
            data,
            credentials,
            limiter,
        }
    }

    /// The authenticated request (public so tests can inspect the headers).
    pub fn build(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Request, SendError> {
        let mut builder = self
            .http
            .request(method, url)
            .header(KEY_ID_HEADER, &self.credentials.key_id)
            .header(SECRET_KEY_HEADER, self.credentials.secret_key.expose());
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        builder
            .build()
            .map_err(|e| SendError::NotSent(format!("cannot build a request: {e}")))
    }

    pub fn trading_url(&self, path: &str) -> Url {
        join(&self.base, path)
    }

    pub fn data_url(&self, path: &str) -> Url {
        join(&self.data, path)
    }

    pub async fn call(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, SendError> {
        let request = self.build(method, url, query, body)?;
        let waited = self.limiter.acquire(1.0).await;
        crate::common::observe::rate_limited(crate::broker::BrokerKind::Alpaca, waited);
        let resp = self.http.send(request).await?;
        if resp.status == 429 {
            self.limiter.pause(resp.retry_after).await;
        }
        Ok(resp)
    }

    async fn read<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, &str)],
    ) -> Result<T, BrokerError> {
        let resp = self
            .call(Method::GET, url, query, None)
            .await
            .map_err(|e| e.into_transient(BrokerKind::Alpaca))?;
        decode(&resp)
    }

    pub async fn account(&self) -> Result<Account, BrokerError> {
        self.read(self.trading_url("/v2/account"), &[]).await
    }

    pub async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.read(self.trading_url("/v2/positions"), &[]).await
    }

    pub async fn crypto_assets(&self) -> Result<Vec<Asset>, BrokerError> {
        self.read(self.trading_url("/v2/assets"), &[("asset_class", "crypto")])
            .await
    }

    /// An asset; one Alpaca does not list (404/422) is an unknown symbol.
    pub async fn asset(&self, symbol: &str) -> Result<Asset, BrokerError> {
        let resp = self
            .call(
                Method::GET,
                self.trading_url(&format!("/v2/assets/{symbol}")),
                &[],
                None,
            )
            .await
            .map_err(|e| e.into_transient(BrokerKind::Alpaca))?;
        if matches!(resp.status, 404 | 422) {
            return Err(BrokerError::UnknownSymbol {
                symbol: symbol.to_string(),
            });
        }
        decode(&resp)
    }

    pub async fn clock(&self) -> Result<Clock, BrokerError> {
        self.read(self.trading_url("/v2/clock"), &[]).await
    }

    pub async fn order(&self, order_id: &str) -> Result<Order, BrokerError> {
        self.read(self.trading_url(&format!("/v2/orders/{order_id}")), &[])
            .await
    }

    pub async fn order_by_client_id(&self, client_order_id: &str) -> Result<Order, BrokerError> {
        self.read(
            self.trading_url("/v2/orders:by_client_order_id"),
            &[("client_order_id", client_order_id)],
        )
        .await
    }

    pub async fn open_orders(&self) -> Result<Vec<Order>, BrokerError> {
        self.read(
            self.trading_url("/v2/orders"),
            &[("status", "open"), ("limit", "500"), ("direction", "asc")],
        )
        .await
    }

    pub async fn stock_quotes(&self, tickers: &[&str]) -> Result<LatestQuotes, BrokerError> {
        let joined = tickers.join(",");
        self.read(
            self.data_url("/v2/stocks/quotes/latest"),
            &[("symbols", &joined), ("feed", STOCK_FEED)],
        )
        .await
    }

    pub async fn crypto_quotes(&self, pairs: &[&str]) -> Result<LatestQuotes, BrokerError> {
        let joined = pairs.join(",");
        self.read(
            self.data_url("/v1beta3/crypto/us/latest/quotes"),
            &[("symbols", &joined)],
        )
        .await
    }

    /// `DELETE /v2/orders/{id}`: 204 when accepted.
    pub async fn cancel(&self, order_id: &str) -> Result<(), BrokerError> {
        let resp = self
            .call(
                Method::DELETE,
                self.trading_url(&format!("/v2/orders/{order_id}")),
                &[],
                None,
            )
            .await
            .map_err(|e| e.into_transient(BrokerKind::Alpaca))?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(super::errors::classify(&resp))
        }
    }

    /// `POST /v2/orders`; the caller interprets the outcome.
    pub async fn submit_order(&self, body: &serde_json::Value) -> Result<RawResponse, SendError> {
        self.call(
            Method::POST,
            self.trading_url("/v2/orders"),
            &[],
            Some(body),
        )
        .await
    }
}

/// The body of a market sell: quantity as a decimal string; crypto is `gtc`, equities `day`.
pub fn market_sell_body(
    symbol: &str,
    qty: &str,
    crypto: bool,
    client_order_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "symbol": symbol,
        "qty": qty,
        "side": "sell",
        "type": "market",
        "time_in_force": if crypto { "gtc" } else { "day" },
        "client_order_id": client_order_id,
    })
}

//! Kraken endpoints. Private calls take the key's nonce and send under a per-key lock, so nonces
//! reach Kraken in the order they were issued (an overtaken smaller nonce is rejected).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::auth::{api_sign, form_encode};
use super::errors::decode;
use super::models::{
    AddOrderResult, AssetInfo, AssetPair, BalanceEx, CancelResult, ClosedOrders, OpenOrders, Order,
    ServerTime, Ticker,
};
use crate::broker::BrokerKind;
use crate::common::http::{HttpClient, RawResponse, SendError, join};
use crate::common::nonce::NonceSource;
use crate::common::rate_limit::RateLimiter;
use crate::credentials::KrakenCredentials;
use crate::error::BrokerError;

/// Nonce authority and send lock of one API key, shared by every session of the key in the
/// process.
#[derive(Debug, Default)]
pub struct KeyState {
    pub nonce: NonceSource,
    send: tokio::sync::Mutex<()>,
}

/// The process-wide state of key `fingerprint`.
pub fn key_state(fingerprint: &str) -> Arc<KeyState> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<KeyState>>>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = registry.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(fingerprint.to_string()).or_default().clone()
}

/// Counter cost of a private method (Kraken: history calls cost 2; order placement and
/// cancellation use the separate trading limiter).
pub fn call_cost(method: &str) -> f64 {
    match method {
        "AddOrder" | "CancelOrder" => 0.0,
        "ClosedOrders" | "QueryTrades" | "TradesHistory" | "Ledgers" | "QueryLedgers" => 2.0,
        _ => 1.0,
    }
}

pub struct KrakenHttp {
    http: HttpClient,
    base: Url,
    credentials: KrakenCredentials,
    key: Arc<KeyState>,
    limiter: Arc<RateLimiter>,
}

impl KrakenHttp {
    pub fn new(
        http: HttpClient,
        base: Url,
        credentials: KrakenCredentials,
        key: Arc<KeyState>,
        limiter: Arc<RateLimiter>,
    ) -> KrakenHttp {
        KrakenHttp {
            http,
            base,
            credentials,
            key,
            limiter,
        }
    }

    pub fn key(&self) -> &KeyState {
        &self.key
    }

    /// The signed private request with an explicit nonce (public so tests can check the wire).
    pub fn build_private(
        &self,
        method: &str,
        nonce: u64,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Request, SendError> {
        let path = format!("/0/private/{method}");
        let nonce = nonce.to_string();
        let mut all: Vec<(&str, &str)> = vec![("nonce", &nonce)];
        all.extend_from_slice(params);
        let body = form_encode(&all);
        let sign = api_sign(self.credentials.secret.expose(), &path, &nonce, &body);
        self.http
            .request(Method::POST, join(&self.base, &path))
            .header("API-Key", &self.credentials.api_key)
            .header("API-Sign", sign)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .build()
            .map_err(|e| SendError::NotSent(format!("cannot build {path}: {e}")))
    }

    /// One private call: rate limit, nonce, sign, send (under the key's send lock).
    pub async fn private_raw(
        &self,
        method: &str,
        params: &[(&str, &str)],
    ) -> Result<RawResponse, SendError> {
        let waited = self.limiter.acquire(call_cost(method)).await;
        crate::common::observe::rate_limited(crate::broker::BrokerKind::Kraken, waited);
        let _turn = self.key.send.lock().await;
        let request = self.build_private(method, self.key.nonce.next(), params)?;
        self.http.send(request).await
    }

    async fn private<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, &str)],
    ) -> Result<T, BrokerError> {
        let resp = self
            .private_raw(method, params)
            .await
            .map_err(|e| e.into_transient(BrokerKind::Kraken))?;
        let result = decode(&resp, None);
        if let Err(BrokerError::RateLimited { retry_after, .. }) = &result {
            self.limiter.pause(*retry_after).await;
        }
        result
    }

    async fn public<T: DeserializeOwned>(
        &self,
        method: &str,
        query: &[(&str, &str)],
        symbol: Option<&str>,
    ) -> Result<T, BrokerError> {
        let mut builder = self.http.request(
            Method::GET,
            join(&self.base, &format!("/0/public/{method}")),
        );
        if !query.is_empty() {
            builder = builder.query(query);
        }
        let request = builder.build().map_err(|e| BrokerError::Config {
            broker: BrokerKind::Kraken.to_string(),
            message: format!("cannot build {method}: {e}"),
        })?;
        let resp = self
            .http
            .send(request)
            .await
            .map_err(|e| e.into_transient(BrokerKind::Kraken))?;
        decode(&resp, symbol)
    }

    pub async fn time(&self) -> Result<ServerTime, BrokerError> {
        self.public("Time", &[], None).await
    }

    pub async fn assets(&self) -> Result<BTreeMap<String, AssetInfo>, BrokerError> {
        self.public("Assets", &[], None).await
    }

    pub async fn asset_pairs(&self) -> Result<BTreeMap<String, AssetPair>, BrokerError> {
        self.public("AssetPairs", &[], None).await
    }

    /// Tickers of the given pair keys (comma-joined); results keyed by canonical pair key.
    pub async fn ticker(
        &self,
        pairs: &[&str],
        symbol: Option<&str>,
    ) -> Result<BTreeMap<String, Ticker>, BrokerError> {
        let joined = pairs.join(",");
        self.public("Ticker", &[("pair", &joined)], symbol).await
    }

    pub async fn balance_ex(&self) -> Result<BTreeMap<String, BalanceEx>, BrokerError> {
        self.private("BalanceEx", &[]).await
    }

    pub async fn query_orders(&self, txid: &str) -> Result<BTreeMap<String, Order>, BrokerError> {
        self.private("QueryOrders", &[("txid", txid), ("trades", "true")])
            .await
    }

    pub async fn open_orders(&self, cl_ord_id: Option<&str>) -> Result<OpenOrders, BrokerError> {
        match cl_ord_id {
            Some(id) => self.private("OpenOrders", &[("cl_ord_id", id)]).await,
            None => self.private("OpenOrders", &[]).await,
        }
    }

    pub async fn closed_orders(&self, cl_ord_id: &str) -> Result<ClosedOrders, BrokerError> {
        self.private("ClosedOrders", &[("cl_ord_id", cl_ord_id)])
            .await
    }

    pub async fn cancel(&self, txid: &str) -> Result<CancelResult, BrokerError> {
        self.private("CancelOrder", &[("txid", txid)]).await
    }

    /// `AddOrder` market sell; the caller interprets the outcome.
    pub async fn add_market_sell(
        &self,
        pair: &str,
        volume: &str,
        cl_ord_id: &str,
    ) -> Result<RawResponse, SendError> {
        self.private_raw("AddOrder", &market_sell_params(pair, volume, cl_ord_id))
            .await
    }
}

/// The AddOrder parameters of a market sell, in the order they are sent.
pub fn market_sell_params<'a>(
    pair: &'a str,
    volume: &'a str,
    cl_ord_id: &'a str,
) -> [(&'static str, &'a str); 5] {
    [
        ("ordertype", "market"),
        ("type", "sell"),
        ("volume", volume),
        ("pair", pair),
        ("cl_ord_id", cl_ord_id),
    ]
}

/// Reads an AddOrder response.
pub fn add_order_result(resp: &RawResponse) -> Result<AddOrderResult, BrokerError> {
    decode(resp, None)
}

//! Helpers shared by the three protocol front ends.

use std::time::Duration;

use axum::http::request::Parts;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

use crate::broker::Broker;
use crate::exchange::Exchange;
use crate::faults::Injected;
use crate::net::listener::OriginalPath;

/// Query parameters in order, repeated keys kept (`product_ids=A&product_ids=B`).
pub fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

/// All values of `key`; comma-separated values are split too.
pub fn query_all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
}

pub fn query_one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The paths a signature may cover: as sent (with a base-URL prefix) and as routed.
pub fn signed_paths(parts: &Parts) -> Vec<String> {
    let routed = parts.uri.path().to_string();
    match parts.extensions.get::<OriginalPath>() {
        Some(OriginalPath(original)) if *original != routed => vec![original.clone(), routed],
        _ => vec![routed],
    }
}

/// The host the client addressed (Host header, or the URI authority under HTTP/2).
pub fn host(parts: &Parts) -> String {
    parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Applies configured latency, then returns a fault to answer with, if one is due.
pub async fn gate(exchange: &Exchange, broker: Broker, account: Option<&str>) -> Option<Injected> {
    let delay = exchange.faults.latency(broker, account);
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
    exchange.faults.injected(broker, account)
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A decimal as the brokers print it: no exponent, no trailing zeros.
pub fn dec(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A decimal with exactly `places` decimals (Kraken's fixed-width style).
pub fn fixed(value: Decimal, places: u32) -> String {
    let mut v = value.round_dp(places);
    v.rescale(places);
    v.to_string()
}

/// A JSON number for market-data fields (Alpaca quotes are numbers, not strings).
pub fn number(value: Decimal) -> serde_json::Value {
    serde_json::from_str(&value.normalize().to_string()).unwrap_or(serde_json::Value::Null)
}

/// Parses a decimal given as a JSON string or number.
pub fn json_decimal(value: &serde_json::Value) -> Option<Decimal> {
    match value {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n
            .to_string()
            .parse()
            .ok()
            .or_else(|| Decimal::from_scientific(&n.to_string()).ok()),
        _ => None,
    }
}

//! Coinbase failures as [`BrokerError`]s: HTTP status first (401 is often plain text), then the
//! in-band `success:false` of order creation.

use serde::de::DeserializeOwned;

use super::models::{ApiError, CreateOrderError};
use crate::common::http::{RawResponse, snippet};
use crate::error::BrokerError;

const BROKER: &str = "coinbase";

fn describe(resp: &RawResponse) -> String {
    match serde_json::from_str::<ApiError>(&resp.body) {
        Ok(e) if !e.error.is_empty() || !e.message.is_empty() => {
            let detail = if e.message.is_empty() {
                &e.error_details
            } else {
                &e.message
            };
            format!("HTTP {} {}: {}", resp.status, e.error, snippet(detail))
        }
        _ => format!("HTTP {}: {}", resp.status, resp.snippet()),
    }
}

/// Classifies a non-2xx response.
pub fn classify(resp: &RawResponse) -> BrokerError {
    let message = describe(resp);
    let broker = BROKER.to_string();
    match resp.status {
        401 => BrokerError::Authentication { broker, message },
        403 => BrokerError::Permission { broker, message },
        404 => BrokerError::NotFound { broker, message },
        429 => BrokerError::RateLimited {
            broker,
            message,
            retry_after: resp.retry_after,
        },
        500..=599 => BrokerError::Transient { broker, message },
        _ => BrokerError::InvalidResponse {
            broker,
            message: format!("request refused: {message}"),
        },
    }
}

/// A 2xx body as `T`, or the classified failure.
pub fn decode<T: DeserializeOwned>(resp: &RawResponse) -> Result<T, BrokerError> {
    if !resp.is_success() {
        return Err(classify(resp));
    }
    serde_json::from_str(&resp.body).map_err(|e| BrokerError::InvalidResponse {
        broker: BROKER.to_string(),
        message: format!("cannot read the response body: {e}"),
    })
}

/// Whether an in-band creation failure says the client order id was already used (the first
/// attempt arrived).
pub fn is_duplicate_client_order_id(error: &CreateOrderError) -> bool {
    [
        &error.error,
        &error.message,
        &error.new_order_failure_reason,
        &error.preview_failure_reason,
    ]
    .iter()
    .any(|f| f.to_ascii_uppercase().contains("DUPLICATE"))
}

/// Classifies an in-band order creation failure (`success:false`).
pub fn classify_create_failure(error: &CreateOrderError) -> BrokerError {
    let broker = BROKER.to_string();
    let known = |s: &String| !s.is_empty() && !s.starts_with("UNKNOWN_");
    let code = [
        &error.new_order_failure_reason,
        &error.error,
        &error.preview_failure_reason,
    ]
    .into_iter()
    .find(|s| known(s))
    .cloned()
    .unwrap_or_else(|| "UNKNOWN_FAILURE_REASON".to_string());
    let reason = if error.message.is_empty() {
        code.clone()
    } else {
        format!("{code}: {}", snippet(&error.message))
    };
    if code.contains("INSUFFICIENT_FUND") {
        BrokerError::InsufficientFunds {
            broker,
            message: reason,
        }
    } else {
        BrokerError::OrderRejected { broker, reason }
    }
}

//! Alpaca failures as [`BrokerError`]s, by HTTP status and Alpaca's 8-digit code.

use serde::de::DeserializeOwned;

use super::models::ApiError;
use crate::common::http::{RawResponse, snippet};
use crate::error::BrokerError;

const BROKER: &str = "alpaca";

/// Code of "client_order_id must be unique" (HTTP 422).
pub const DUPLICATE_CLIENT_ORDER_ID: u64 = 40010001;

fn api_error(resp: &RawResponse) -> ApiError {
    serde_json::from_str(&resp.body).unwrap_or_else(|_| ApiError {
        code: None,
        message: resp.snippet(),
    })
}

/// Whether a response says our client order id was already used (the first attempt arrived).
pub fn is_duplicate_client_order_id(resp: &RawResponse) -> bool {
    let e = api_error(resp);
    matches!(resp.status, 400 | 422)
        && e.code == Some(DUPLICATE_CLIENT_ORDER_ID)
        && e.message.contains("client_order_id")
}

/// Classifies a non-2xx response.
pub fn classify(resp: &RawResponse) -> BrokerError {
    let e = api_error(resp);
    let message = match e.code {
        Some(code) => format!("HTTP {} code {code}: {}", resp.status, snippet(&e.message)),
        None => format!("HTTP {}: {}", resp.status, snippet(&e.message)),
    };
    let broker = BROKER.to_string();
    match resp.status {
        401 => BrokerError::Authentication { broker, message },
        403 if e.message.to_ascii_lowercase().contains("insufficient") => {
            BrokerError::InsufficientFunds { broker, message }
        }
        403 if e.code.is_some() => BrokerError::OrderRejected {
            broker,
            reason: message,
        },
        403 => BrokerError::Permission { broker, message },
        404 => BrokerError::NotFound { broker, message },
        429 => BrokerError::RateLimited {
            broker,
            message,
            retry_after: resp.retry_after,
        },
        500..=599 => BrokerError::Transient { broker, message },
        400 | 422 => BrokerError::OrderRejected {
            broker,
            reason: message,
        },
        _ => BrokerError::InvalidResponse { broker, message },
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

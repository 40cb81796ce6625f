//! Kraken failures as [`BrokerError`]s. Kraken answers HTTP 200 with `error: ["EClass:Message"]`
//! for almost everything; strings starting with `W` are warnings. Infrastructure failures come as
//! 5xx.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::models::Envelope;
use crate::common::http::RawResponse;
use crate::error::BrokerError;

const BROKER: &str = "kraken";

/// Classifies Kraken's error strings; `None` when there are only warnings. `symbol` names the
/// symbol the call was about, for `UnknownSymbol`.
pub fn classify_errors(errors: &[String], symbol: Option<&str>) -> Option<BrokerError> {
    let errors: Vec<&str> = errors
        .iter()
        .map(|e| e.trim())
        .filter(|e| e.starts_with('E'))
        .collect();
    let first = *errors.first()?;
    let message = errors.join("; ");
    let broker = BROKER.to_string();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    let starts = |prefix: &str| errors.iter().any(|e| e.starts_with(prefix));
    Some(if has(":Invalid nonce") {
        BrokerError::InvalidNonce { broker, message }
    } else if has(":Rate limit exceeded") || has("Throttled") || has(":Too many requests") {
        BrokerError::RateLimited {
            broker,
            retry_after: throttled_until(first),
            message,
        }
    } else if starts("EAPI:Invalid key")
        || starts("EAPI:Invalid signature")
        || starts("EGeneral:Temporary lockout")
    {
        BrokerError::Authentication { broker, message }
    } else if starts("EGeneral:Permission denied") || starts("EAPI:Feature disabled") {
        BrokerError::Permission { broker, message }
    } else if has("Insufficient funds") {
        BrokerError::InsufficientFunds { broker, message }
    } else if starts("EQuery:Unknown asset pair")
        || starts("EQuery:Invalid asset pair")
        || starts("EQuery:Unknown asset")
    {
        BrokerError::UnknownSymbol {
            symbol: symbol.map_or(message, str::to_string),
        }
    } else if starts("EOrder:Unknown order") || starts("EOrder:Invalid order") {
        BrokerError::NotFound { broker, message }
    } else if starts("EService:Unavailable")
        || starts("EService:Busy")
        || starts("EService:Deadline elapsed")
        || starts("EGeneral:Internal error")
        || starts("EDatabase:Internal error")
    {
        BrokerError::Transient { broker, message }
    } else if starts("EOrder:")
        || starts("EService:Market in")
        || starts("EGeneral:Invalid arguments")
        || starts("ETrade:")
    {
        BrokerError::OrderRejected {
            broker,
            reason: message,
        }
    } else {
        BrokerError::InvalidResponse { broker, message }
    })
}

/// `EService: Throttled: <unix ts>` names when to come back.
fn throttled_until(error: &str) -> Option<Duration> {
    let ts: u64 = error.rsplit(':').next()?.trim().parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(ts.saturating_sub(now)))
}

/// Classifies a non-2xx HTTP status.
pub fn classify_http(resp: &RawResponse) -> BrokerError {
    let broker = BROKER.to_string();
    let message = format!("HTTP {}: {}", resp.status, resp.snippet());
    match resp.status {
        401 => BrokerError::Authentication { broker, message },
        403 => BrokerError::Permission { broker, message },
        429 => BrokerError::RateLimited {
            broker,
            message,
            retry_after: resp.retry_after,
        },
        500..=599 => BrokerError::Transient { broker, message },
        _ => BrokerError::InvalidResponse { broker, message },
    }
}

/// The `result` of a response, or the classified failure.
pub fn decode<T: DeserializeOwned>(
    resp: &RawResponse,
    symbol: Option<&str>,
) -> Result<T, BrokerError> {
    if !resp.is_success() {
        return Err(classify_http(resp));
    }
    let envelope: Envelope<T> =
        serde_json::from_str(&resp.body).map_err(|e| BrokerError::InvalidResponse {
            broker: BROKER.to_string(),
            message: format!("cannot read the response body: {e}"),
        })?;
    if let Some(error) = classify_errors(&envelope.error, symbol) {
        return Err(error);
    }
    envelope.result.ok_or_else(|| BrokerError::InvalidResponse {
        broker: BROKER.to_string(),
        message: "response has neither errors nor a result".to_string(),
    })
}

//! One error type for every broker, with a class the worker acts on.

use std::time::Duration;

use thiserror::Error;

/// Why a broker call failed, classified. Messages never carry credentials.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("unknown symbol {symbol}: the broker has no product for it (check the symbol mapping)")]
    UnknownSymbol { symbol: String },
    #[error(
        "authentication failed at {broker}: {message} (check the account's API key and secret)"
    )]
    Authentication { broker: String, message: String },
    #[error(
        "permission denied at {broker}: {message} (the API key lacks a scope, e.g. trade or view)"
    )]
    Permission { broker: String, message: String },
    #[error("rate limited by {broker}: {message}")]
    RateLimited {
        broker: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("invalid nonce at {broker}: {message} (another process may be using the same API key)")]
    InvalidNonce { broker: String, message: String },
    #[error("insufficient funds at {broker}: {message}")]
    InsufficientFunds { broker: String, message: String },
    #[error("order rejected by {broker}: {reason}")]
    OrderRejected { broker: String, reason: String },
    #[error("order not found at {broker}: {message}")]
    NotFound { broker: String, message: String },
    #[error(
        "transient failure at {broker}: {message} (retried; the broker or the network is unwell)"
    )]
    Transient { broker: String, message: String },
    #[error(
        "order outcome unknown at {broker} for client order id {client_order_id}: {message} \
         (the order may or may not exist; it was not re-sent)"
    )]
    OutcomeUnknown {
        broker: String,
        client_order_id: String,
        message: String,
    },
    #[error("unexpected response from {broker}: {message}")]
    InvalidResponse { broker: String, message: String },
    #[error("market closed for {symbol} at {broker}: no market order is sent until it opens")]
    MarketClosed { broker: String, symbol: String },
    #[error("invalid configuration for {broker}: {message}")]
    Config { broker: String, message: String },
}

impl BrokerError {
    /// The broker the error came from (`None` for an unknown symbol, which is ours).
    pub fn broker(&self) -> Option<&str> {
        match self {
            BrokerError::UnknownSymbol { .. } => None,
            BrokerError::Authentication { broker, .. }
            | BrokerError::Permission { broker, .. }
            | BrokerError::RateLimited { broker, .. }
            | BrokerError::InvalidNonce { broker, .. }
            | BrokerError::InsufficientFunds { broker, .. }
            | BrokerError::OrderRejected { broker, .. }
            | BrokerError::NotFound { broker, .. }
            | BrokerError::Transient { broker, .. }
            | BrokerError::OutcomeUnknown { broker, .. }
            | BrokerError::InvalidResponse { broker, .. }
            | BrokerError::MarketClosed { broker, .. }
            | BrokerError::Config { broker, .. } => Some(broker),
        }
    }
}

/// The class of a [`BrokerError`], for metrics labels and decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    UnknownSymbol,
    Authentication,
    Permission,
    RateLimited,
    InvalidNonce,
    InsufficientFunds,
    OrderRejected,
    NotFound,
    Transient,
    OutcomeUnknown,
    InvalidResponse,
    MarketClosed,
    Config,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::UnknownSymbol => "unknown_symbol",
            ErrorClass::Authentication => "authentication",
            ErrorClass::Permission => "permission",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::InvalidNonce => "invalid_nonce",
            ErrorClass::InsufficientFunds => "insufficient_funds",
            ErrorClass::OrderRejected => "order_rejected",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Transient => "transient",
            ErrorClass::OutcomeUnknown => "outcome_unknown",
            ErrorClass::InvalidResponse => "invalid_response",
            ErrorClass::MarketClosed => "market_closed",
            ErrorClass::Config => "config",
        }
    }
}

impl BrokerError {
    pub fn class(&self) -> ErrorClass {
        match self {
            BrokerError::UnknownSymbol { .. } => ErrorClass::UnknownSymbol,
            BrokerError::Authentication { .. } => ErrorClass::Authentication,
            BrokerError::Permission { .. } => ErrorClass::Permission,
            BrokerError::RateLimited { .. } => ErrorClass::RateLimited,
            BrokerError::InvalidNonce { .. } => ErrorClass::InvalidNonce,
            BrokerError::InsufficientFunds { .. } => ErrorClass::InsufficientFunds,
            BrokerError::OrderRejected { .. } => ErrorClass::OrderRejected,
            BrokerError::NotFound { .. } => ErrorClass::NotFound,
            BrokerError::Transient { .. } => ErrorClass::Transient,
            BrokerError::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
            BrokerError::InvalidResponse { .. } => ErrorClass::InvalidResponse,
            BrokerError::MarketClosed { .. } => ErrorClass::MarketClosed,
            BrokerError::Config { .. } => ErrorClass::Config,
        }
    }

    /// Safe to retry the same read (never an order placement: see `Broker::market_sell`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Transient | ErrorClass::RateLimited | ErrorClass::InvalidNonce
        )
    }

    /// Counts towards quarantining the account (DESIGN R9).
    pub fn is_credential_failure(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Authentication | ErrorClass::Permission
        )
    }
}

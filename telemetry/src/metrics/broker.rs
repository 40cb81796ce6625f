//! Broker call figures, shared by every adapter a worker drives.
//!
//! Labels: `broker` (`coinbase`, `kraken`, `alpaca`), `operation` (a fixed set of calls named by
//! the worker), `class` (the `ErrorClass` of `nija-brokers`), `reason` ([`WaitReason`]).

use std::time::Duration;

use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::BROKER_SECONDS;
use crate::error::TelemetryError;

/// Why a broker session waited before a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The post-connect cooldown of a new session.
    Cooldown,
    /// The broker's rate limit (client-side limiter or a `retry_after`).
    RateLimit,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Cooldown => "cooldown",
            WaitReason::RateLimit => "rate_limit",
        }
    }
}

#[derive(Clone)]
pub struct BrokerMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    request_seconds: HistogramVec,
    retries: IntCounterVec,
    waits: IntCounterVec,
    wait_seconds: CounterVec,
    orders: IntCounterVec,
    order_seconds: HistogramVec,
}

impl BrokerMetrics {
    pub fn register(registry: &Registry) -> Result<BrokerMetrics, TelemetryError> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, TelemetryError>(c)
        };
        let histogram = |name: &str, help: &str| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BROKER_SECONDS.to_vec()),
                &["broker"],
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, TelemetryError>(h)
        };
        let wait_seconds = CounterVec::new(
            Opts::new(
                "nija_broker_wait_seconds_total",
                "Seconds spent waiting before broker calls, by reason.",
            ),
            &["broker", "reason"],
        )?;
        registry.register(Box::new(wait_seconds.clone()))?;
        Ok(BrokerMetrics {
            requests: counter(
                "nija_broker_requests_total",
                "Broker API calls, by operation.",
                &["broker", "operation"],
            )?,
            errors: counter(
                "nija_broker_errors_total",
                "Failed broker API calls, by error class.",
                &["broker", "class"],
            )?,
            request_seconds: histogram(
                "nija_broker_request_duration_seconds",
                "Duration of broker API calls.",
            )?,
            retries: counter(
                "nija_broker_retries_total",
                "Broker calls retried after a retryable error.",
                &["broker"],
            )?,
            waits: counter(
                "nija_broker_waits_total",
                "Waits before broker calls (cooldown, rate limit).",
                &["broker", "reason"],
            )?,
            wait_seconds,
            orders: counter(
                "nija_orders_total",
                "Orders sent to a broker, by outcome: placed, already_placed (found by client \
                 order id), rejected, unknown (outcome unknown).",
                &["broker", "outcome"],
            )?,
            order_seconds: histogram(
                "nija_order_placement_seconds",
                "From sending an order to the broker's acknowledgement.",
            )?,
        })
    }

    /// One API call (`operation` from a fixed set: `balances`, `positions`, `ticker`,
    /// `place_order`, `order_status`, ...), successful or not.
    pub fn request(&self, broker: &str, operation: &str, took: Duration) {
        self.requests.with_label_values(&[broker, operation]).inc();
        self.request_seconds
            .with_label_values(&[broker])
            .observe(took.as_secs_f64());
    }

    /// A failed call; `class` is `ErrorClass::as_str()`.
    pub fn error(&self, broker: &str, class: &str) {
        self.errors.with_label_values(&[broker, class]).inc();
    }

    pub fn retry(&self, broker: &str) {
        self.retries.with_label_values(&[broker]).inc();
    }

    pub fn waited(&self, broker: &str, reason: WaitReason, waited: Duration) {
        self.waits
            .with_label_values(&[broker, reason.as_str()])
            .inc();
        self.wait_seconds
            .with_label_values(&[broker, reason.as_str()])
            .inc_by(waited.as_secs_f64());
    }

    /// An order acknowledged by the broker (`outcome`: `placed` or `already_placed`).
    pub fn order_placed(&self, broker: &str, already_placed: bool, took: Duration) {
        let outcome = if already_placed {
            "already_placed"
        } else {
            "placed"
        };
        self.orders.with_label_values(&[broker, outcome]).inc();
        self.order_seconds
            .with_label_values(&[broker])
            .observe(took.as_secs_f64());
    }

    /// An order the broker rejected (`unknown = false`) or whose outcome is unknown.
    pub fn order_failed(&self, broker: &str, unknown: bool) {
        let outcome = if unknown { "unknown" } else { "rejected" };
        self.orders.with_label_values(&[broker, outcome]).inc();
    }
}

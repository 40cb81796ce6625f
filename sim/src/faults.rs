//! Injectable faults: latency, 5xx, rate limits, Kraken nonce errors, lost order responses and
//! failing price lookups, globally, per broker or per account.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::broker::Broker;

/// How a lost order response looks to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostResponse {
    /// The connection is closed without any response.
    #[default]
    Drop,
    /// HTTP 504 Gateway Timeout.
    GatewayTimeout,
}

/// A fault setting. Omitted fields leave the current value of that scope unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Restrict to one broker (omit for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<Broker>,
    /// Restrict to one account (omit for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Added latency on every request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The next N requests fail with a 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_errors: Option<u32>,
    /// The next N requests are rate limited (429 with Retry-After; Kraken: `EAPI:Rate limit exceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<u32>,
    /// Retry-After seconds sent with rate limits (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// The next N Kraken private calls fail with `EAPI:Invalid nonce` (nothing executes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_errors: Option<u32>,
    /// The next N order placements execute but the response is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_responses: Option<u32>,
    /// How a lost response looks (default: dropped connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_response_mode: Option<LostResponse>,
    /// The next N market orders fill only `partial_fill_fraction` of their size; the rest is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_fills: Option<u32>,
    /// Fraction filled by a partial fill (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_fill_fraction: Option<rust_decimal::Decimal>,
    /// Canonical symbols (`BTC-USD`) whose price lookups fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_failures: Option<BTreeSet<String>>,
}

type ScopeKey = (Option<Broker>, Option<String>);

/// A fault outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    ServerError,
    RateLimited { retry_after_s: u64 },
}

/// All configured faults.
#[derive(Debug, Default)]
pub struct Faults {
    any: AtomicBool,
    scopes: Mutex<HashMap<ScopeKey, FaultSpec>>,
}

fn scope_matches(key: &ScopeKey, broker: Broker, account: Option<&str>) -> bool {
    key.0.is_none_or(|b| b == broker) && key.1.as_deref().is_none_or(|a| Some(a) == account)
}

/// Most specific first: account, broker, global.
fn specificity(key: &ScopeKey) -> u8 {
    match key {
        (_, Some(_)) => 0,
        (Some(_), None) => 1,
        (None, None) => 2,
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ScopeKey, FaultSpec>> {
        self.scopes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Merges `spec` into its scope.
    pub fn set(&self, spec: FaultSpec) {
        let key = (spec.broker, spec.account.clone());
        let mut scopes = self.lock();
        let entry = scopes.entry(key).or_default();
        entry.broker = spec.broker;
        entry.account = spec.account;
        macro_rules! merge {
            ($($field:ident),*) => { $( if spec.$field.is_some() { entry.$field = spec.$field; } )* };
        }
        merge!(
            latency_ms,
            server_errors,
            rate_limits,
            retry_after_s,
            nonce_errors,
            lost_responses,
            lost_response_mode,
            partial_fills,
            partial_fill_fraction,
            price_failures
        );
        self.any.store(true, Ordering::Release);
    }

    pub fn clear(&self) {
        self.lock().clear();
        self.any.store(false, Ordering::Release);
    }

    pub fn list(&self) -> Vec<FaultSpec> {
        let mut all: Vec<FaultSpec> = self.lock().values().cloned().collect();
        all.sort_by_key(|s| (s.broker, s.account.clone()));
        all
    }

    fn active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Added latency for a request (the largest of the matching scopes).
    pub fn latency(&self, broker: Broker, account: Option<&str>) -> Duration {
        if !self.active() {
            return Duration::ZERO;
        }
        let scopes = self.lock();
        let ms = scopes
            .iter()
            .filter(|(k, _)| scope_matches(k, broker, account))
            .filter_map(|(_, s)| s.latency_ms)
            .max()
            .unwrap_or(0);
        Duration::from_millis(ms)
    }

    /// Takes one unit from the most specific matching counter selected by `field`.
    fn take(
        &self,
        broker: Broker,
        account: Option<&str>,
        field: impl Fn(&mut FaultSpec) -> &mut Option<u32>,
    ) -> Option<FaultSpec> {
        if !self.active() {
            return None;
        }
        let mut scopes = self.lock();
        let mut keys: Vec<ScopeKey> = scopes
            .keys()
            .filter(|k| scope_matches(k, broker, account))
            .cloned()
            .collect();
        keys.sort_by_key(specificity);
        for key in keys {
            if let Some(spec) = scopes.get_mut(&key) {
                let counter = field(spec);
                if let Some(n) = counter.filter(|n| *n > 0) {
                    *counter = Some(n - 1);
                    return Some(spec.clone());
                }
            }
        }
        None
    }

    /// A 5xx or rate limit to answer instead of serving the request, if one is due.
    pub fn injected(&self, broker: Broker, account: Option<&str>) -> Option<Injected> {
        if self
            .take(broker, account, |s| &mut s.server_errors)
            .is_some()
        {
            return Some(Injected::ServerError);
        }
        self.take(broker, account, |s| &mut s.rate_limits)
            .map(|spec| Injected::RateLimited {
                retry_after_s: spec.retry_after_s.unwrap_or(1),
            })
    }

    /// Whether this Kraken private call must fail with `EAPI:Invalid nonce`.
    pub fn nonce_error(&self, account: &str) -> bool {
        self.take(Broker::Kraken, Some(account), |s| &mut s.nonce_errors)
            .is_some()
    }

    /// Whether this order placement's response must be lost, and how.
    pub fn lost_response(&self, broker: Broker, account: &str) -> Option<LostResponse> {
        self.take(broker, Some(account), |s| &mut s.lost_responses)
            .map(|spec| spec.lost_response_mode.unwrap_or_default())
    }

    /// The fraction to fill if this market order must fill partially.
    pub fn partial_fill(&self, broker: Broker, account: &str) -> Option<rust_decimal::Decimal> {
        self.take(broker, Some(account), |s| &mut s.partial_fills)
            .map(|spec| {
                spec.partial_fill_fraction
                    .unwrap_or(rust_decimal::Decimal::new(5, 1))
            })
    }

    /// Whether a price lookup of `symbol` at `broker` must fail.
    pub fn price_fails(&self, broker: Broker, symbol: &str) -> bool {
        if !self.active() {
            return false;
        }
        self.lock().iter().any(|(k, s)| {
            k.0.is_none_or(|b| b == broker)
                && s.price_failures
                    .as_ref()
                    .is_some_and(|set| set.contains(symbol))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_counter_is_used_first() {
        let faults = Faults::default();
        faults.set(FaultSpec {
            server_errors: Some(1),
            ..FaultSpec::default()
        });
        faults.set(FaultSpec {
            account: Some("a".into()),
            rate_limits: Some(1),
            retry_after_s: Some(3),
            ..FaultSpec::default()
        });
        assert_eq!(
            faults.injected(Broker::Kraken, Some("b")),
            Some(Injected::ServerError)
        );
        assert_eq!(faults.injected(Broker::Kraken, Some("b")), None);
        assert_eq!(
            faults.injected(Broker::Kraken, Some("a")),
            Some(Injected::RateLimited { retry_after_s: 3 })
        );
        assert_eq!(faults.injected(Broker::Kraken, Some("a")), None);
    }
}

//! Hooks through which the process counts what the adapters do on their own: retried calls and
//! waits for the rate limit. The broker crate knows no metrics; the worker installs an observer
//! once at start-up ([`set_observer`]) and forwards to its metrics.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::broker::BrokerKind;

/// Told about retries and rate-limit waits, by broker.
pub trait BrokerObserver: Send + Sync {
    /// A failed call is being retried (`broker` as errors name it, e.g. `kraken`).
    fn retried(&self, broker: &str);
    /// A call waited `waited` for the rate limit (the client-side limiter or a Retry-After).
    fn rate_limited(&self, broker: BrokerKind, waited: Duration);
}

static OBSERVER: RwLock<Option<Arc<dyn BrokerObserver>>> = RwLock::new(None);

/// Installs the process's observer (replacing any earlier one).
pub fn set_observer(observer: Arc<dyn BrokerObserver>) {
    *OBSERVER.write().unwrap_or_else(PoisonError::into_inner) = Some(observer);
}

fn observer() -> Option<Arc<dyn BrokerObserver>> {
    OBSERVER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

pub(crate) fn retried(broker: &str) {
    if let Some(o) = observer() {
        o.retried(broker);
    }
}

pub(crate) fn rate_limited(broker: BrokerKind, waited: Duration) {
    if !waited.is_zero()
        && let Some(o) = observer()
    {
        o.rate_limited(broker, waited);
    }
}

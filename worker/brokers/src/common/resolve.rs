//! Settling an order placement whose outcome is unknown (timeout, dropped connection, 5xx) by
//! looking our client order id up, allowing the broker a few seconds to show the order. Never by
//! sending the order again (Kraken accepts a reused `cl_ord_id` once the first order closed).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::{BrokerKind, OrderStatus};
use crate::error::BrokerError;

/// How long and how often to look for an order whose placement outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupSettings {
    /// How long an order may take to become visible to a look-up.
    pub window: Duration,
    /// Pause between look-ups.
    pub interval: Duration,
}

impl Default for LookupSettings {
    fn default() -> Self {
        LookupSettings {
            window: Duration::from_secs(5),
            interval: Duration::from_millis(500),
        }
    }
}

/// Polls `lookup` until it finds the order or `settings.window` has passed; then
/// [`BrokerError::OutcomeUnknown`] with what was learned.
pub async fn resolve<F, Fut>(
    settings: LookupSettings,
    broker: BrokerKind,
    account: &str,
    client_order_id: &str,
    cause: &str,
    mut lookup: F,
) -> Result<OrderStatus, BrokerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<OrderStatus>, BrokerError>>,
{
    let deadline = Instant::now() + settings.window;
    let mut last_error: Option<BrokerError>;
    let mut lookups = 0u32;
    loop {
        lookups += 1;
        match lookup().await {
            Ok(Some(status)) => {
                tracing::info!(
                    account,
                    broker = %broker,
                    client_order_id,
                    order_id = %status.order_id,
                    state = ?status.state,
                    lookups,
                    "order placement outcome resolved by client order id"
                );
                return Ok(status);
            }
            Ok(None) => last_error = None,
            Err(e) if e.is_credential_failure() => return Err(e),
            Err(e) => last_error = Some(e),
        }
        if Instant::now() + settings.interval > deadline {
            break;
        }
        tokio::time::sleep(settings.interval).await;
    }
    let message = match last_error {
        Some(e) => format!("{cause}; looking the order up failed: {e}"),
        None => format!(
            "{cause}; no order with this client id was visible after {} ms ({lookups} look-ups)",
            settings.window.as_millis()
        ),
    };
    tracing::error!(
        account,
        broker = %broker,
        client_order_id,
        message,
        "order placement outcome unknown"
    );
    Err(BrokerError::OutcomeUnknown {
        broker: broker.to_string(),
        client_order_id: client_order_id.to_string(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use nija_proto::{Quantity, Symbol};

    use super::*;
    use crate::broker::OrderState;
    use crate::error::ErrorClass;

    fn found() -> OrderStatus {
        OrderStatus {
            order_id: "O1".into(),
            client_order_id: Some("c".into()),
            symbol: Symbol::new("BTC-USD").unwrap(),
            state: OrderState::Filled,
            quantity: Quantity::ZERO,
            filled_quantity: Quantity::ZERO,
            average_fill_price: None,
            reason: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_order_to_become_visible() {
        let calls = AtomicU32::new(0);
        let status = resolve(
            LookupSettings::default(),
            BrokerKind::Kraken,
            "a",
            "c",
            "lost",
            || async { Ok((calls.fetch_add(1, Ordering::SeqCst) >= 3).then(found)) },
        )
        .await
        .unwrap();
        assert_eq!(status.order_id, "O1");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_that_never_shows_is_outcome_unknown_not_absent() {
        let calls = AtomicU32::new(0);
        let e = resolve(
            LookupSettings::default(),
            BrokerKind::Kraken,
            "a",
            "c-1",
            "timed out",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.class(), ErrorClass::OutcomeUnknown);
        assert!(
            e.to_string().contains("c-1") && e.to_string().contains("timed out"),
            "{e}"
        );
        assert!(
            calls.load(Ordering::SeqCst) > 1,
            "looked more than once within the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn credential_failures_end_the_search_at_once() {
        let calls = AtomicU32::new(0);
        let e = resolve(
            LookupSettings::default(),
            BrokerKind::Alpaca,
            "a",
            "c",
            "lost",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(BrokerError::Authentication {
                    broker: "alpaca".into(),
                    message: "401".into(),
                })
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Authentication);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

//! The Kraken adapter against the simulator over real HTTP.

#![allow(clippy::unwrap_used)]

mod support;

use nija_brokers::BrokerKind;
use nija_sim::LostResponse;
use support::cases;

const KIND: BrokerKind = BrokerKind::Kraken;

#[tokio::test]
async fn holdings_quotes_and_rules() {
    cases::holdings_quotes_rules(KIND).await;
}

#[tokio::test]
async fn sell_then_status_and_lookup_by_client_id() {
    cases::sell_status_lookup(KIND).await;
}

#[tokio::test]
async fn revoked_credentials_are_an_authentication_failure() {
    cases::auth_failure(KIND).await;
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_broker_says() {
    cases::rate_limit_retry(KIND).await;
}

#[tokio::test]
async fn server_error_bursts_are_retried_then_reported() {
    cases::server_error_burst(KIND).await;
}

#[tokio::test]
async fn a_server_error_on_placement_places_at_most_once() {
    cases::server_error_on_placement(KIND).await;
}

#[tokio::test]
async fn a_failing_price_leaves_only_that_symbol_unpriced() {
    cases::price_failure_is_per_symbol(KIND).await;
}

#[tokio::test]
async fn a_slow_broker_hits_the_deadline() {
    cases::slow_broker_hits_the_deadline(KIND).await;
}

#[tokio::test]
async fn open_orders_hold_quantity_and_cancel() {
    cases::open_orders_holds_and_cancel(KIND).await;
}

#[tokio::test]
async fn refusals_are_classified_and_nothing_executes() {
    cases::refusals_are_classified(KIND).await;
}

#[tokio::test]
async fn dropped_order_response_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::Drop).await;
}

#[tokio::test]
async fn gateway_timeout_on_an_executed_order_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::GatewayTimeout).await;
}

mod nonces {
    use nija_brokers::{ErrorClass, SellOrder};
    use nija_proto::Quantity;
    use nija_sim::FaultSpec;

    use super::KIND;
    use super::support::*;

    #[tokio::test]
    async fn an_invalid_nonce_is_retried_with_a_higher_one_and_never_doubles_an_order() {
        let sim = start_sim(KIND, &[("BTC", "0.5")]).await;
        let broker = connected(&sim, KIND).await;
        sim.admin().set_faults(FaultSpec {
            account: Some("acct".into()),
            nonce_errors: Some(2),
            ..FaultSpec::default()
        });
        broker.holdings(&[]).await.unwrap();

        sim.admin().set_faults(FaultSpec {
            account: Some("acct".into()),
            nonce_errors: Some(1),
            ..FaultSpec::default()
        });
        let status = broker
            .market_sell(&SellOrder {
                symbol: sym("BTC-USD"),
                quantity: Quantity(dec("0.1")),
                client_order_id: cid(11),
            })
            .await
            .unwrap();
        assert_eq!(logged(&sim).len(), 1);
        assert_eq!(logged(&sim)[0].order.id, status.order_id);

        sim.admin().set_faults(FaultSpec {
            account: Some("acct".into()),
            nonce_errors: Some(100),
            ..FaultSpec::default()
        });
        let e = broker.holdings(&[]).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::InvalidNonce, "{e}");
        sim.admin().clear_faults();
        sim.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_private_calls_on_one_key_reach_kraken_in_nonce_order() {
        let sim = start_sim(KIND, &[("BTC", "0.5")]).await;
        let mut s = settings(&sim, KIND);
        // No retries: an overtaken nonce would fail the call outright.
        s.retry.max_attempts = 1;
        let broker = nija_brokers::build_broker(s, credentials(&sim, KIND)).unwrap();
        broker.connect().await.unwrap();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..24 {
            let broker = broker.clone();
            calls.spawn(async move { broker.holdings(&[]).await });
        }
        while let Some(result) = calls.join_next().await {
            result.unwrap().unwrap();
        }
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_nonce_seeded_from_the_lease_keeps_nonces_above_it() {
        let sim = start_sim(KIND, &[("BTC", "0.5")]).await;
        let broker = connected(&sim, KIND).await;
        let before = broker.last_nonce().unwrap();
        assert!(before > 0, "connect used nonces");
        // A previous owner whose clock ran ten minutes ahead stored this nonce with the lease.
        let stored = before + 600_000_000;
        broker.seed_nonce(stored);
        broker.holdings(&[]).await.unwrap();
        let after = broker.last_nonce().unwrap();
        assert!(after > stored, "{after} > {stored}");
        // Seeding lower never lowers it.
        broker.seed_nonce(before);
        assert_eq!(broker.last_nonce(), Some(after));
        sim.shutdown().await;
    }
}

//! The Alpaca adapter against the simulator over real HTTP.

#![allow(clippy::unwrap_used)]

mod support;

use nija_brokers::BrokerKind;
use nija_sim::LostResponse;
use support::cases;

const KIND: BrokerKind = BrokerKind::Alpaca;

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
async fn re_posts_spent_the_order_is_found_by_client_id() {
    cases::repost_exhausted_then_lookup(KIND).await;
}

#[tokio::test]
async fn dropped_order_response_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::Drop).await;
}

#[tokio::test]
async fn gateway_timeout_on_an_executed_order_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::GatewayTimeout).await;
}

mod market_hours {
    use nija_brokers::{ErrorClass, OrderState, SellOrder};
    use nija_proto::Quantity;

    use super::KIND;
    use super::support::*;

    #[tokio::test]
    async fn equities_get_no_market_order_while_the_market_is_closed() {
        let sim = start_sim(KIND, &[("AAPL", "10"), ("BRK.B", "2"), ("BTC", "0.5")]).await;
        let broker = connected(&sim, KIND).await;
        let h = broker.holdings(&[]).await.unwrap();
        assert!(h.positions.iter().any(|p| p.symbol == sym("BRK.B-USD")));
        assert!(h.broker_total.is_some());
        let quotes = broker
            .quotes(&[sym("AAPL-USD"), sym("BRK.B-USD")])
            .await
            .unwrap();
        assert!(quotes.iter().all(|(_, q)| q.is_ok()), "{quotes:?}");
        let rules = broker.product_rules(&sym("AAPL-USD")).await.unwrap();
        assert!(rules.market_hours_only);

        sim.admin().set_market_open(false);
        assert!(!broker.market_open(&sym("AAPL-USD")).await.unwrap());
        assert!(broker.market_open(&sym("BTC-USD")).await.unwrap());
        let aapl = SellOrder {
            symbol: sym("AAPL-USD"),
            quantity: Quantity(dec("1")),
            client_order_id: cid(21),
        };
        let e = broker.market_sell(&aapl).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::MarketClosed, "{e}");
        assert!(logged(&sim).is_empty(), "nothing was sent");
        // Crypto trades around the clock.
        let btc = broker
            .market_sell(&SellOrder {
                symbol: sym("BTC-USD"),
                quantity: Quantity(dec("0.1")),
                client_order_id: cid(22),
            })
            .await
            .unwrap();
        assert_eq!(btc.symbol, sym("BTC-USD"));

        sim.admin().set_market_open(true);
        let placed = broker.market_sell(&aapl).await.unwrap();
        let status = broker.order(&aapl.symbol, &placed.order_id).await.unwrap();
        assert_eq!(status.state, OrderState::Filled);
        assert_eq!(logged(&sim).len(), 2);
        sim.shutdown().await;
    }
}

//! The Coinbase adapter against the simulator over real HTTP.

#![allow(clippy::unwrap_used)]

mod support;

use nija_brokers::BrokerKind;
use nija_sim::LostResponse;
use support::cases;

const KIND: BrokerKind = BrokerKind::Coinbase;

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

mod tls {
    use nija_brokers::{ErrorClass, build_broker};

    use super::KIND;
    use super::support::*;

    /// A CA certificate no server here uses, as PEM.
    fn unrelated_ca() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[tokio::test]
    async fn https_with_the_simulator_ca_among_several_extra_cas() {
        let sim = start_sim(KIND, &[("BTC", "0.5")]).await;
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.pem");
        std::fs::write(&other, unrelated_ca()).unwrap();
        // A bundle whose second certificate is the simulator's CA.
        let bundle = dir.path().join("bundle.pem");
        let sim_ca = std::fs::read_to_string(sim.ca_cert_path()).unwrap();
        std::fs::write(&bundle, format!("{}{sim_ca}", unrelated_ca())).unwrap();

        let mut s = settings(&sim, KIND);
        s.base_url = Some(sim.https_base_url(sim_broker(KIND)));
        s.extra_ca = vec![other.clone(), bundle];
        let broker = build_broker(s.clone(), credentials(&sim, KIND)).unwrap();
        broker.connect().await.unwrap();
        let h = broker.holdings(&[]).await.unwrap();
        assert!(h.positions.iter().any(|p| p.symbol == sym("BTC-USD")));

        // Without the simulator's CA the certificate is not trusted and nothing is sent.
        s.extra_ca = vec![other];
        s.retry.max_attempts = 1;
        let untrusted = build_broker(s.clone(), credentials(&sim, KIND)).unwrap();
        let e = untrusted.connect().await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Transient, "{e}");

        // A file among them that holds no certificate is refused when the session is built.
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        s.extra_ca.push(empty);
        let e = build_broker(s, credentials(&sim, KIND)).err().unwrap();
        assert_eq!(e.class(), ErrorClass::Config, "{e}");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        sim.shutdown().await;
    }
}

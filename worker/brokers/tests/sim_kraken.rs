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
async fn dropped_order_response_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::Drop).await;
}

#[tokio::test]
async fn gateway_timeout_on_an_executed_order_never_sells_twice() {
    cases::lost_response_never_sells_twice(KIND, LostResponse::GatewayTimeout).await;
}

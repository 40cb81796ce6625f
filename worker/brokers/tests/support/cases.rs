//! Behaviour every adapter must show against the simulator over real HTTP, written once and run
//! per broker by `tests/sim_<broker>.rs`.

use nija_brokers::{BrokerKind, ErrorClass, OrderState, SellOrder, build_broker};
use nija_proto::Quantity;
use nija_sim::{FaultSpec, LostResponse};

use super::*;

/// Holdings (cash, positions with available quantity), batched quotes with a per-symbol error
/// for an unknown symbol, product rules, server time.
pub async fn holdings_quotes_rules(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5"), ("ETH", "2")]).await;
    let broker = connected(&sim, kind).await;
    assert_eq!(broker.kind(), kind);

    let h = broker.holdings(&["USD".to_string()]).await.unwrap();
    let usd = h.cash.iter().find(|c| c.asset == "USD").expect("USD cash");
    assert_eq!(usd.total.value(), dec("1000"));
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .expect("BTC");
    assert_eq!(btc.quantity.value(), dec("0.5"));
    assert_eq!(btc.available.value(), dec("0.5"));
    assert!(h.positions.iter().any(|p| p.symbol == sym("ETH-USD")));
    assert!(h.positions.iter().all(|p| p.symbol.quote() == "USD"));

    let quotes = broker
        .quotes(&[sym("BTC-USD"), sym("NOPE-USD"), sym("ETH-USD")])
        .await
        .unwrap();
    assert_eq!(quotes.len(), 3);
    for (symbol, quote) in &quotes {
        match symbol.as_str() {
            "NOPE-USD" => assert_eq!(
                quote.as_ref().unwrap_err().class(),
                ErrorClass::UnknownSymbol,
                "{quote:?}"
            ),
            _ => {
                let q = quote.as_ref().unwrap();
                assert_eq!(&q.symbol, symbol);
                assert!(q.price.value() > dec("0"));
                assert!(q.bid.is_some());
            }
        }
    }

    let rules = broker.product_rules(&sym("BTC-USD")).await.unwrap();
    assert_eq!(rules.symbol, sym("BTC-USD"));
    assert!(rules.size_increment.value() > dec("0"));
    assert!(rules.tradable);
    assert!(!rules.market_hours_only);
    let e = broker.product_rules(&sym("NOPE-EUR")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::UnknownSymbol, "{e}");

    assert!(broker.server_time().await.unwrap().is_some());
    assert!(broker.market_open(&sym("BTC-USD")).await.unwrap());
    sim.shutdown().await;
}

/// A market sell fills, reads back by id and by client id, and moves the balance.
pub async fn sell_status_lookup(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    let order = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("0.1")),
        client_order_id: cid(1),
    };
    let status = broker.market_sell(&order).await.unwrap();
    assert_eq!(status.symbol, sym("BTC-USD"));
    assert_eq!(
        status.client_order_id.as_deref(),
        Some(cid(1).to_string().as_str())
    );

    let by_id = broker.order(&order.symbol, &status.order_id).await.unwrap();
    assert_eq!(by_id.state, OrderState::Filled);
    assert_eq!(by_id.filled_quantity.value(), dec("0.1"));
    assert!(by_id.average_fill_price.is_some());

    let found = broker
        .order_by_client_id(&order.symbol, &order.client_order_id)
        .await
        .unwrap()
        .expect("found by client id");
    assert_eq!(found.order_id, status.order_id);
    assert!(
        broker
            .order_by_client_id(&order.symbol, &cid(99))
            .await
            .unwrap()
            .is_none()
    );
    assert!(broker.open_orders().await.unwrap().is_empty());
    let e = broker
        .order(&order.symbol, "00000000-0000-4000-8000-00000000dead")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound, "{e}");

    let h = broker.holdings(&["USD".to_string()]).await.unwrap();
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.quantity.value(), dec("0.4"));
    assert_eq!(logged(&sim).len(), 1);

    let unknown = SellOrder {
        symbol: sym("NOPE-USD"),
        quantity: Quantity(dec("1")),
        client_order_id: cid(2),
    };
    let e = broker.market_sell(&unknown).await.unwrap_err();
    assert!(
        matches!(
            e.class(),
            ErrorClass::UnknownSymbol | ErrorClass::OrderRejected
        ),
        "{e}"
    );
    assert_eq!(logged(&sim).len(), 1);
    sim.shutdown().await;
}

/// Revoked credentials fail with the authentication class (counts towards quarantine).
pub async fn auth_failure(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    sim.admin().set_revoked("acct", true).unwrap();
    let broker = build_broker(settings(&sim, kind), credentials(&sim, kind)).unwrap();
    let e = broker.connect().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Authentication, "{e}");
    assert!(e.is_credential_failure());
    sim.shutdown().await;
}

/// 429s with Retry-After are waited out and retried.
pub async fn rate_limit_retry(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        rate_limits: Some(2),
        retry_after_s: Some(1),
        ..FaultSpec::default()
    });
    let h = broker.holdings(&["USD".to_string()]).await.unwrap();
    assert!(h.positions.iter().any(|p| p.symbol == sym("BTC-USD")));
    sim.shutdown().await;
}

/// A burst of 5xx on reads is retried with backoff; a longer one surfaces as transient.
pub async fn server_error_burst(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        server_errors: Some(3),
        ..FaultSpec::default()
    });
    let h = broker.holdings(&["USD".to_string()]).await.unwrap();
    assert!(h.positions.iter().any(|p| p.symbol == sym("BTC-USD")));

    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        server_errors: Some(50),
        ..FaultSpec::default()
    });
    let e = broker.holdings(&["USD".to_string()]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    sim.admin().clear_faults();
    sim.shutdown().await;
}

/// The order executes but its response is lost: the adapter settles the outcome without a second
/// order reaching the exchange.
pub async fn lost_response_never_sells_twice(kind: BrokerKind, mode: LostResponse) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        account: Some("acct".into()),
        lost_responses: Some(1),
        lost_response_mode: Some(mode),
        ..FaultSpec::default()
    });
    let order = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("0.2")),
        client_order_id: cid(3),
    };
    let status = broker.market_sell(&order).await.unwrap();
    assert_eq!(
        status.client_order_id.as_deref(),
        Some(cid(3).to_string().as_str())
    );
    let log = logged(&sim);
    assert_eq!(
        log.len(),
        1,
        "exactly one order reached the exchange: {log:?}"
    );
    assert_eq!(log[0].order.id, status.order_id);
    let h = broker.holdings(&[]).await.unwrap();
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.quantity.value(), dec("0.3"), "sold once");

    // Running the same intent again (a redelivered job) resolves to the same order.
    let again = broker
        .order_by_client_id(&order.symbol, &order.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.order_id, status.order_id);
    assert_eq!(logged(&sim).len(), 1);
    sim.shutdown().await;
}

/// A 5xx on the placement itself (nothing executed): brokers that guarantee idempotency
/// (Coinbase, Alpaca) re-post and place exactly once; Kraken never re-sends, reports the outcome
/// unknown, and the next attempt — after the client id look-up finds nothing — places once.
pub async fn server_error_on_placement(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        server_errors: Some(1),
        ..FaultSpec::default()
    });
    let order = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("0.1")),
        client_order_id: cid(31),
    };
    match kind {
        BrokerKind::Kraken => {
            let e = broker.market_sell(&order).await.unwrap_err();
            assert_eq!(e.class(), ErrorClass::OutcomeUnknown, "{e}");
            assert!(e.to_string().contains(&cid(31).to_string()));
            assert!(logged(&sim).is_empty());
            // What the worker does next (R1): resolve the id, and only then place.
            let found = broker
                .order_by_client_id(&order.symbol, &order.client_order_id)
                .await
                .unwrap();
            assert!(found.is_none());
            broker.market_sell(&order).await.unwrap();
        }
        _ => {
            broker.market_sell(&order).await.unwrap();
        }
    }
    assert_eq!(logged(&sim).len(), 1);
    sim.shutdown().await;
}

/// A symbol whose price lookup fails stays unpriced on its own; the batch still prices the rest.
pub async fn price_failure_is_per_symbol(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5"), ("ETH", "2")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        price_failures: Some(["ETH-USD".to_string()].into()),
        ..FaultSpec::default()
    });
    let quotes = broker
        .quotes(&[sym("BTC-USD"), sym("ETH-USD")])
        .await
        .unwrap();
    let get = |s: &str| &quotes.iter().find(|(q, _)| q.as_str() == s).unwrap().1;
    assert!(get("BTC-USD").is_ok(), "{quotes:?}");
    assert!(get("ETH-USD").is_err(), "{quotes:?}");
    sim.shutdown().await;
}

/// A broker slower than the deadline fails the call within the bounded retries instead of
/// hanging it (DESIGN §7.7).
pub async fn slow_broker_hits_the_deadline(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let mut s = settings(&sim, kind);
    s.timeouts.request = std::time::Duration::from_millis(200);
    s.retry.max_attempts = 2;
    let broker = build_broker(s, credentials(&sim, kind)).unwrap();
    broker.connect().await.unwrap();
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        latency_ms: Some(1_000),
        ..FaultSpec::default()
    });
    let e = broker.holdings(&[]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    sim.admin().clear_faults();
    sim.shutdown().await;
}

/// A resting order shows in open orders, holds its quantity out of `available`, cancels, and the
/// hold is released.
pub async fn open_orders_holds_and_cancel(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    let id = place_resting_sell(&sim, kind, "0.2").await;

    let open = broker.open_orders().await.unwrap();
    let resting = open
        .iter()
        .find(|o| o.order_id == id)
        .expect("listed as open");
    assert_eq!(resting.state, OrderState::Open);
    assert_eq!(resting.symbol, sym("BTC-USD"));
    assert_eq!(resting.quantity.value(), dec("0.2"));
    assert_eq!(resting.filled_quantity.value(), dec("0"));

    let h = broker.holdings(&[]).await.unwrap();
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.quantity.value(), dec("0.5"));
    assert_eq!(
        btc.available.value(),
        dec("0.3"),
        "the open order's quantity is held"
    );

    broker.cancel(&sym("BTC-USD"), &id).await.unwrap();
    let after = broker.order(&sym("BTC-USD"), &id).await.unwrap();
    assert_eq!(after.state, OrderState::Cancelled);
    assert!(
        broker
            .open_orders()
            .await
            .unwrap()
            .iter()
            .all(|o| o.order_id != id)
    );
    let h = broker.holdings(&[]).await.unwrap();
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.available.value(), dec("0.5"));

    let e = broker.cancel(&sym("BTC-USD"), &id).await.unwrap_err();
    assert!(
        matches!(e.class(), ErrorClass::NotFound | ErrorClass::OrderRejected),
        "{e}"
    );
    sim.shutdown().await;
}

/// Refusals come back classified and nothing executes: selling more than is held is
/// insufficient funds; an unknown client id look-up is `None`.
pub async fn refusals_are_classified(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    let too_much = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("5")),
        client_order_id: cid(41),
    };
    let e = broker.market_sell(&too_much).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::InsufficientFunds, "{e}");
    let zero = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("0")),
        client_order_id: cid(42),
    };
    let e = broker.market_sell(&zero).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::OrderRejected, "{e}");
    assert!(logged(&sim).iter().all(|o| o.order.filled_qty.is_zero()));
    let h = broker.holdings(&[]).await.unwrap();
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.quantity.value(), dec("0.5"));
    sim.shutdown().await;
}

/// Brokers that are re-posted to (Coinbase, Alpaca): 5xx on every re-post but the last, which
/// executes and loses its answer. With the re-posts spent, the adapter finds the order by client
/// id instead of giving up or sending it again.
pub async fn repost_exhausted_then_lookup(kind: BrokerKind) {
    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let broker = connected(&sim, kind).await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(sim_broker(kind)),
        account: Some("acct".into()),
        server_errors: Some(3),
        lost_responses: Some(1),
        ..FaultSpec::default()
    });
    let order = SellOrder {
        symbol: sym("BTC-USD"),
        quantity: Quantity(dec("0.1")),
        client_order_id: cid(51),
    };
    let status = broker.market_sell(&order).await.unwrap();
    let log = logged(&sim);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].order.id, status.order_id);
    sim.shutdown().await;
}

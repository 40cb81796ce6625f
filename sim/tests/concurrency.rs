//! Racing requests: resubmitted client order ids never make two orders, concurrent sells add up.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Alpaca, Coinbase};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_resubmissions_make_one_order() {
    let sim = common::start().await;
    let cb = Arc::new(Coinbase::new(&sim, "cb"));
    let order = json!({"client_order_id": "race-1", "product_id": "BTC-USD", "side": "SELL",
                       "order_configuration": {"market_market_ioc": {"base_size": "0.01"}}});
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (cb, order) = (Arc::clone(&cb), order.clone());
            tokio::spawn(async move { cb.post("/api/v3/brokerage/orders", order).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!((status, &body["success"]), (200, &json!(true)), "{body}");
        ids.insert(
            body["success_response"]["order_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(ids.len(), 1);

    let al = Arc::new(Alpaca::new(&sim, "al"));
    let sell = json!({"symbol": "BTC/USD", "qty": "0.01", "side": "sell", "type": "market",
                      "time_in_force": "gtc", "client_order_id": "race-2"});
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (al, sell) = (Arc::clone(&al), sell.clone());
            tokio::spawn(async move { al.post("/v2/orders", sell).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 23);
    assert_eq!(sim.admin().order_log().len(), 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sells_move_balances_exactly() {
    let sim = common::start().await;
    let cb = Arc::new(Coinbase::new(&sim, "cb"));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let cb = Arc::clone(&cb);
            tokio::spawn(async move {
                let order = json!({"client_order_id": format!("many-{i}"), "product_id": "BTC-USD", "side": "SELL",
                                   "order_configuration": {"market_market_ioc": {"base_size": "0.001"}}});
                cb.post("/api/v3/brokerage/orders", order).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().1["success"], true);
    }
    let balances = sim.admin().balances("cb").unwrap().balances;
    let total = |asset: &str| {
        balances
            .iter()
            .find(|b| b.asset == asset)
            .unwrap()
            .total
            .normalize()
            .to_string()
    };
    assert_eq!(total("BTC"), "0.45");
    assert_eq!(total("USD"), "4200");
    assert_eq!(sim.admin().order_log().len(), 50);
    sim.shutdown().await;
}

//! Alpaca trading and market data over real HTTP: positions, orders, client ids, clock, auth.

#![allow(clippy::unwrap_used)]

mod common;

use common::Alpaca;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn account_positions_assets_and_quotes() {
    let sim = common::start().await;
    let al = Alpaca::new(&sim, "al");
    let (status, account) = al.get("/v2/account").await;
    assert_eq!(status, 200);
    assert_eq!(account["cash"], "1000");
    assert_eq!(account["equity"], "34900");

    let (_, positions) = al.get("/v2/positions").await;
    let symbols: Vec<_> = positions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["AAPL", "BTCUSD"]);
    let (_, btc) = al.get("/v2/positions/BTCUSD").await;
    assert_eq!(
        (
            btc["qty"].as_str(),
            btc["qty_available"].as_str(),
            btc["avg_entry_price"].as_str()
        ),
        (Some("0.5"), Some("0.5"), Some("60000"))
    );
    assert_eq!(al.get("/v2/positions/BTC/USD").await.0, 404);

    let (_, asset) = al.get("/v2/assets/BTC/USD").await;
    assert_eq!(asset["symbol"], "BTC/USD");
    assert_eq!(asset["class"], "crypto");
    assert_eq!(asset["min_order_size"], "0.000016");
    assert_eq!(asset["min_trade_increment"], "0.000000001");

    let (_, quotes) = al
        .get("/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD")
        .await;
    assert_eq!(quotes["quotes"]["BTC/USD"]["bp"], json!(64000));
    let (status, _) = al
        .get("/v1beta3/crypto/us/latest/quotes?symbols=BTCUSD")
        .await;
    assert_eq!(status, 400);
    let (_, stocks) = al
        .get("/v2/stocks/quotes/latest?symbols=AAPL,MSFT&feed=iex")
        .await;
    assert_eq!(stocks["quotes"]["AAPL"]["ap"], json!(190));
    assert!(stocks["quotes"]["MSFT"].is_object());
    sim.shutdown().await;
}

#[tokio::test]
async fn crypto_sell_and_client_order_ids() {
    let sim = common::start().await;
    let al = Alpaca::new(&sim, "al");
    let sell = json!({"symbol": "BTC/USD", "qty": "0.2", "side": "sell", "type": "market", "time_in_force": "gtc", "client_order_id": "s-1"});
    let (status, order) = al.post("/v2/orders", sell.clone()).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "filled");
    assert_eq!(order["symbol"], "BTC/USD");
    assert_eq!(order["filled_avg_price"], "64000");
    let id = order["id"].as_str().unwrap().to_string();

    let (status, duplicate) = al.post("/v2/orders", sell).await;
    assert_eq!(status, 422);
    assert_eq!(
        duplicate,
        json!({"code": 40010001, "message": "client_order_id must be unique"})
    );
    assert_eq!(sim.admin().order_log().len(), 1);

    let (_, by_client) = al
        .get("/v2/orders:by_client_order_id?client_order_id=s-1")
        .await;
    assert_eq!(by_client["id"], id.as_str());
    let (_, by_id) = al.get(&format!("/v2/orders/{id}")).await;
    assert_eq!(by_id["client_order_id"], "s-1");
    assert_eq!(
        al.get("/v2/orders:by_client_order_id?client_order_id=none")
            .await
            .0,
        404
    );

    let (_, fills) = al.get("/v2/account/activities/FILL?direction=asc").await;
    assert_eq!(fills[0]["order_id"], id.as_str());
    let (_, btc) = al.get("/v2/positions/BTCUSD").await;
    assert_eq!(btc["qty"], "0.3");

    let day = json!({"symbol": "BTC/USD", "qty": "0.1", "side": "sell", "type": "market", "time_in_force": "day"});
    let (status, refused) = al.post("/v2/orders", day).await;
    assert_eq!(
        (status, refused["message"].as_str()),
        (422, Some("invalid crypto time_in_force"))
    );
    let too_much = json!({"symbol": "BTC/USD", "qty": 1, "side": "sell", "type": "market", "time_in_force": "gtc"});
    let (status, refused) = al.post("/v2/orders", too_much).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused["message"],
        "insufficient qty available for order (requested: 1, available: 0.3)"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn equity_orders_wait_for_the_market() {
    let sim = common::start().await;
    let al = Alpaca::new(&sim, "al");
    sim.admin().set_market_open(false);
    let (_, clock) = al.get("/v2/clock").await;
    assert_eq!(clock["is_open"], false);
    let sell = json!({"symbol": "AAPL", "qty": "4", "side": "sell", "type": "market", "time_in_force": "day", "client_order_id": "eq-1"});
    let (_, order) = al.post("/v2/orders", sell).await;
    assert_eq!(order["status"], "accepted");
    let (_, aapl) = al.get("/v2/positions/AAPL").await;
    assert_eq!(
        (aapl["qty"].as_str(), aapl["qty_available"].as_str()),
        (Some("10"), Some("6"))
    );
    let (_, open) = al.get("/v2/orders?status=open").await;
    assert_eq!(open.as_array().unwrap().len(), 1);

    sim.admin().set_market_open(true);
    let (_, filled) = al
        .get("/v2/orders:by_client_order_id?client_order_id=eq-1")
        .await;
    assert_eq!(filled["status"], "filled");
    let (_, aapl) = al.get("/v2/positions/AAPL").await;
    assert_eq!(aapl["qty"], "6");
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_and_auth() {
    let sim = common::start().await;
    let mut al = Alpaca::new(&sim, "al");
    let limit = json!({"symbol": "AAPL", "qty": "1", "side": "sell", "type": "limit", "limit_price": "500", "time_in_force": "gtc"});
    let (_, order) = al.post("/v2/orders", limit).await;
    let id = order["id"].as_str().unwrap().to_string();
    assert_eq!(order["status"], "new");
    assert_eq!(
        al.send(Method::DELETE, &format!("/v2/orders/{id}"), None)
            .await
            .0,
        204
    );
    let (status, again) = al
        .send(Method::DELETE, &format!("/v2/orders/{id}"), None)
        .await;
    assert_eq!(
        (status, again["message"].as_str()),
        (422, Some("order is not cancelable"))
    );

    al.secret = "wrong".into();
    let (status, body) = al.get("/v2/account").await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 40110000, "message": "request is not authorized"})
    );
    let al = Alpaca::new(&sim, "al");
    sim.admin().set_revoked("al", true).unwrap();
    assert_eq!(al.get("/v2/account").await.0, 401);
    sim.admin().set_revoked("al", false).unwrap();
    assert_eq!(al.get("/v2/account").await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn closing_a_position_sells_it() {
    let sim = common::start().await;
    let al = Alpaca::new(&sim, "al");
    let (status, order) = al
        .send(Method::DELETE, "/v2/positions/BTCUSD?percentage=50", None)
        .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(
        (order["side"].as_str(), order["qty"].as_str()),
        (Some("sell"), Some("0.25"))
    );
    let (_, btc) = al.get("/v2/positions/BTCUSD").await;
    assert_eq!(btc["qty"], "0.25");
    let (status, _) = al.send(Method::DELETE, "/v2/positions/BTCUSD", None).await;
    assert_eq!(status, 200);
    assert_eq!(al.get("/v2/positions/BTCUSD").await.0, 404);
    sim.shutdown().await;
}

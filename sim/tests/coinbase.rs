//! Coinbase Advanced Trade over real HTTP(S): happy path, idempotent client order ids, auth.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Coinbase, coinbase_jwt, now};
use nija_sim::Broker;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn accounts_prices_and_a_market_sell() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");

    let (status, accounts) = cb.get("/api/v3/brokerage/accounts?limit=250").await;
    assert_eq!(status, 200, "{accounts}");
    let list = accounts["accounts"].as_array().unwrap();
    let btc = list.iter().find(|a| a["currency"] == "BTC").unwrap();
    assert_eq!(btc["available_balance"]["value"], "0.5");
    assert_eq!(btc["hold"]["value"], "0");
    assert_eq!(accounts["has_next"], false);

    let (_, book) = cb
        .get("/api/v3/brokerage/best_bid_ask?product_ids=BTC-USD&product_ids=ETH-USD")
        .await;
    let books = book["pricebooks"].as_array().unwrap();
    assert_eq!(books.len(), 2);
    assert_eq!(books[0]["bids"][0]["price"], "64000");

    let (_, product) = cb.get("/api/v3/brokerage/products/BTC-USD").await;
    assert_eq!(product["base_increment"], "0.00000001");
    assert_eq!(product["quote_min_size"], "1");

    let order = json!({
        "client_order_id": "c-1",
        "product_id": "BTC-USD",
        "side": "SELL",
        "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}
    });
    let (status, placed) = cb.post("/api/v3/brokerage/orders", order.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(placed["success"], true, "{placed}");
    let id = placed["success_response"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Re-posting the same client order id returns the same order and creates none.
    let (_, again) = cb.post("/api/v3/brokerage/orders", order).await;
    assert_eq!(again["success_response"]["order_id"], id.as_str());
    assert_eq!(sim.admin().order_log().len(), 1);

    let (_, got) = cb
        .get(&format!("/api/v3/brokerage/orders/historical/{id}"))
        .await;
    assert_eq!(got["order"]["status"], "FILLED");
    assert_eq!(got["order"]["filled_size"], "0.1");
    assert_eq!(got["order"]["average_filled_price"], "64000");
    assert_eq!(got["order"]["client_order_id"], "c-1");

    let (_, fills) = cb
        .get(&format!(
            "/api/v3/brokerage/orders/historical/fills?order_ids={id}"
        ))
        .await;
    assert_eq!(fills["fills"][0]["size"], "0.1");

    let balances = sim.admin().balances("cb").unwrap();
    let usd = balances.balances.iter().find(|b| b.asset == "USD").unwrap();
    assert_eq!(usd.total.to_string(), "7400.0");
    let btc = balances.balances.iter().find(|b| b.asset == "BTC").unwrap();
    assert_eq!(btc.total.normalize().to_string(), "0.4");

    let log = sim.admin().order_log();
    assert_eq!(log[0].account, "cb");
    assert_eq!(log[0].order.client_order_id.as_deref(), Some("c-1"));
    sim.shutdown().await;
}

#[tokio::test]
async fn order_rejections_are_in_band() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let sell = |id: &str, size: &str| {
        json!({"client_order_id": id, "product_id": "BTC-USD", "side": "SELL",
               "order_configuration": {"market_market_ioc": {"base_size": size}}})
    };
    let (status, too_much) = cb.post("/api/v3/brokerage/orders", sell("a", "5")).await;
    assert_eq!(status, 200);
    assert_eq!(too_much["success"], false);
    assert_eq!(too_much["error_response"]["error"], "INSUFFICIENT_FUND");
    let (_, precision) = cb
        .post("/api/v3/brokerage/orders", sell("b", "0.000000001"))
        .await;
    assert_eq!(
        precision["error_response"]["preview_failure_reason"],
        "PREVIEW_INVALID_SIZE_PRECISION"
    );
    let (_, tiny) = cb
        .post("/api/v3/brokerage/orders", sell("c", "0.00001"))
        .await;
    assert_eq!(
        tiny["error_response"]["preview_failure_reason"],
        "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL"
    );
    assert!(sim.admin().order_log().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn limit_orders_hold_funds_until_cancelled() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let (_, placed) = cb
        .post(
            "/api/v3/brokerage/orders",
            json!({"client_order_id": "l-1", "product_id": "ETH-USD", "side": "SELL",
                   "order_configuration": {"limit_limit_gtc": {"base_size": "1.5", "limit_price": "9000"}}}),
        )
        .await;
    let id = placed["success_response"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, open) = cb
        .get("/api/v3/brokerage/orders/historical/batch?order_status=OPEN")
        .await;
    assert_eq!(open["orders"].as_array().unwrap().len(), 1);
    let (_, accounts) = cb.get("/api/v3/brokerage/accounts").await;
    let eth = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "ETH")
        .unwrap()
        .clone();
    assert_eq!(eth["available_balance"]["value"], "0.5");
    assert_eq!(eth["hold"]["value"], "1.5");

    let (_, cancelled) = cb
        .post(
            "/api/v3/brokerage/orders/batch_cancel",
            json!({"order_ids": [id, "nope"]}),
        )
        .await;
    assert_eq!(cancelled["results"][0]["success"], true);
    assert_eq!(
        cancelled["results"][1]["failure_reason"],
        "UNKNOWN_CANCEL_ORDER"
    );
    let (_, got) = cb
        .get(&format!("/api/v3/brokerage/orders/historical/{id}"))
        .await;
    assert_eq!(got["order"]["status"], "CANCELLED");
    sim.shutdown().await;
}

#[tokio::test]
async fn accounts_paginate_with_a_cursor() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = cb
            .get(&format!(
                "/api/v3/brokerage/accounts?limit=2&cursor={cursor}"
            ))
            .await;
        for account in page["accounts"].as_array().unwrap() {
            seen.push(account["currency"].as_str().unwrap().to_string());
        }
        if page["has_next"] == false {
            assert_eq!(page["cursor"], "");
            break;
        }
        cursor = page["cursor"].as_str().unwrap().to_string();
    }
    assert_eq!(seen, ["BTC", "DOT", "ETH", "SOL", "USD"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_authentication_is_plain_unauthorized() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let url = format!("{}/api/v3/brokerage/accounts", cb.base);
    let host = cb.host();
    let uri = format!("GET {host}/api/v3/brokerage/accounts");
    let foreign = nija_sim::Credentials::generate(77, Broker::Coinbase, "cb").unwrap();
    let cases = [
        ("no token", None),
        (
            "expired",
            Some(coinbase_jwt(&cb.creds, &uri, now() - 300, now() - 180)),
        ),
        (
            "too long-lived",
            Some(coinbase_jwt(&cb.creds, &uri, now(), now() + 3600)),
        ),
        (
            "query in uri",
            Some(coinbase_jwt(
                &cb.creds,
                &format!("{uri}?limit=1"),
                now(),
                now() + 120,
            )),
        ),
        (
            "wrong method",
            Some(coinbase_jwt(
                &cb.creds,
                &uri.replacen("GET", "POST", 1),
                now(),
                now() + 120,
            )),
        ),
        (
            "unknown key",
            Some(coinbase_jwt(&foreign, &uri, now(), now() + 120)),
        ),
    ];
    for (name, token) in cases {
        let mut request = cb.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{name}");
        assert_eq!(response.text().await.unwrap(), "Unauthorized", "{name}");
    }
    // A signature by another key under this key's name.
    let good = coinbase_jwt(&cb.creds, &uri, now(), now() + 120);
    let forged = coinbase_jwt(&foreign, &uri, now(), now() + 120);
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[2] = forged.rsplit('.').next().unwrap();
    let response = cb
        .client
        .get(&url)
        .bearer_auth(parts.join("."))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    sim.admin().set_revoked("cb", true).unwrap();
    assert_eq!(cb.get("/api/v3/brokerage/accounts").await.0, 401);
    sim.admin().set_revoked("cb", false).unwrap();
    assert_eq!(cb.get("/api/v3/brokerage/accounts").await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn https_on_the_same_port_and_a_base_url_prefix() {
    let sim = common::start().await;
    let mut cb = Coinbase::new(&sim, "cb");
    cb.client = common::https(&sim);
    cb.base = sim.https_base_url(Broker::Coinbase);
    let (status, time) = cb.get("/api/v3/brokerage/time").await;
    assert_eq!(status, 200);
    assert!(
        time["epochSeconds"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    let (status, accounts) = cb.get("/api/v3/brokerage/accounts").await;
    assert_eq!(status, 200, "{accounts}");

    // The host may be signed without its port (as for a real host on 443).
    let token = coinbase_jwt(
        &cb.creds,
        "GET 127.0.0.1/api/v3/brokerage/accounts",
        now(),
        now() + 120,
    );
    let url = format!("{}/api/v3/brokerage/accounts", cb.base);
    assert_eq!(
        cb.client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // localhost works too (the certificate names both), and a path prefix is accepted.
    cb.base = format!("https://localhost:{}/gateway", sim.port(Broker::Coinbase));
    let response = cb
        .request(Method::GET, "/api/v3/brokerage/accounts")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn failing_price_lookups() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let (status, _) = cb.get("/api/v3/brokerage/products/DOT-USD").await;
    assert_eq!(status, 404);
    let (_, book) = cb
        .get("/api/v3/brokerage/best_bid_ask?product_ids=DOT-USD&product_ids=BTC-USD")
        .await;
    let ids: Vec<_> = book["pricebooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["product_id"].clone())
        .collect();
    assert_eq!(ids, [json!("BTC-USD")]);
    sim.shutdown().await;
}

#[tokio::test]
async fn preview_and_portfolio_breakdown() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    let preview = |size: &str| {
        json!({"product_id": "BTC-USD", "side": "SELL",
               "order_configuration": {"market_market_ioc": {"base_size": size}}})
    };
    let (_, ok) = cb
        .post("/api/v3/brokerage/orders/preview", preview("0.1"))
        .await;
    assert_eq!(ok["errs"], json!([]));
    assert_eq!(ok["quote_size"], "6400");
    assert_eq!(ok["best_bid"], "64000");
    let (_, short) = cb
        .post("/api/v3/brokerage/orders/preview", preview("9"))
        .await;
    assert_eq!(short["errs"], json!(["PREVIEW_INSUFFICIENT_FUND"]));
    assert!(sim.admin().order_log().is_empty());

    let (_, portfolios) = cb.get("/api/v3/brokerage/portfolios").await;
    let uuid = portfolios["portfolios"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, breakdown) = cb
        .get(&format!("/api/v3/brokerage/portfolios/{uuid}"))
        .await;
    let balances = &breakdown["breakdown"]["portfolio_balances"];
    // 1000 USD + 0.5 BTC × 64000 + 2 ETH × 3000 + 10 SOL × 150 + 100 DOT × 7
    assert_eq!(balances["total_balance"]["value"], "41200");
    assert_eq!(balances["total_cash_equivalent_balance"]["value"], "1000");
    let btc = breakdown["breakdown"]["spot_positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["asset"] == "BTC")
        .unwrap()
        .clone();
    assert_eq!(btc["total_balance_fiat"], json!(32000));
    assert_eq!(btc["cost_basis"]["value"], "30000");
    sim.shutdown().await;
}

//! Kraken Spot REST over real HTTP: names, balances, orders by cl_ord_id, nonces, auth.

#![allow(clippy::unwrap_used)]

mod common;

use common::Kraken;
use serde_json::json;

#[tokio::test]
async fn public_endpoints_use_kraken_names() {
    let sim = common::start().await;
    let kr = Kraken::new(&sim, "kr");
    let time = kr.public("Time", "").await;
    assert!(time["result"]["unixtime"].as_i64().unwrap() > 0);

    let pairs = kr.public("AssetPairs", "pair=XBTUSD,SOLUSD,ETHUSD").await;
    let btc = &pairs["result"]["XXBTZUSD"];
    assert_eq!(btc["altname"], "XBTUSD");
    assert_eq!(btc["wsname"], "XBT/USD");
    assert_eq!(
        (btc["base"].as_str(), btc["quote"].as_str()),
        (Some("XXBT"), Some("ZUSD"))
    );
    assert_eq!(btc["lot_decimals"], 8);
    assert_eq!(btc["ordermin"], "0.000079");
    assert_eq!(pairs["result"]["SOLUSD"]["base"], "SOL");
    let eth = &pairs["result"]["XETHZUSD"];
    assert_eq!(
        (
            eth["ordermin"].as_str(),
            eth["costmin"].as_str(),
            eth["lot_decimals"].as_i64()
        ),
        (Some("0.01"), Some("5"), Some(4))
    );

    let ticker = kr.public("Ticker", "pair=XBTUSD").await;
    assert_eq!(ticker["result"]["XXBTZUSD"]["b"][0], "64000.00000");
    let depth = kr.public("Depth", "pair=XBTUSD&count=1").await;
    assert_eq!(depth["result"]["XXBTZUSD"]["bids"][0][0], "64000.00000");
    let unknown = kr.public("Ticker", "pair=FOOUSD").await;
    assert_eq!(unknown["error"], json!(["EQuery:Unknown asset pair"]));
    let failing = kr.public("Ticker", "pair=XBTUSD,DOTUSD").await;
    assert_eq!(failing["error"], json!(["EQuery:Unknown asset pair"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn balances_orders_and_client_ids() {
    let sim = common::start().await;
    let mut kr = Kraken::new(&sim, "kr");
    let balance = kr.private("Balance", &[]).await;
    assert_eq!(balance["result"]["XXBT"], "0.5000000000");
    assert_eq!(balance["result"]["ZUSD"], "1000.0000");
    assert_eq!(balance["result"]["SOL"], "10.0000000000");

    let cid = "6d1b345e-2821-40e2-ad83-4ecb18a06876";
    let validate = kr
        .private(
            "AddOrder",
            &[
                ("ordertype", "market"),
                ("type", "sell"),
                ("volume", "0.1"),
                ("pair", "XXBTZUSD"),
                ("cl_ord_id", cid),
                ("validate", "true"),
            ],
        )
        .await;
    assert_eq!(
        validate["result"]["descr"]["order"],
        "sell 0.10000000 XBTUSD @ market"
    );
    assert!(validate["result"].get("txid").is_none());
    assert!(sim.admin().order_log().is_empty());

    let sell = [
        ("ordertype", "market"),
        ("type", "sell"),
        ("volume", "0.1"),
        ("pair", "XBTUSD"),
        ("cl_ord_id", cid),
    ];
    let placed = kr.private("AddOrder", &sell).await;
    assert_eq!(placed["error"], json!([]), "{placed}");
    let txid = placed["result"]["txid"][0].as_str().unwrap().to_string();
    assert!(txid.starts_with('O') && txid.len() == 19, "{txid}");

    let query = kr
        .private("QueryOrders", &[("txid", &txid), ("trades", "true")])
        .await;
    let order = &query["result"][&txid];
    assert_eq!(order["status"], "closed");
    assert_eq!(order["vol_exec"], "0.10000000");
    assert_eq!(order["cost"], "6400.00000");
    assert_eq!(order["cl_ord_id"], cid);
    let trade = order["trades"][0].as_str().unwrap().to_string();
    let trades = kr.private("QueryTrades", &[("txid", &trade)]).await;
    assert_eq!(trades["result"][&trade]["ordertxid"], txid.as_str());

    let closed = kr.private("ClosedOrders", &[("cl_ord_id", cid)]).await;
    assert_eq!(closed["result"]["count"], 1);
    // Kraken only enforces uniqueness among open orders: the same cl_ord_id sells again.
    let second = kr.private("AddOrder", &sell).await;
    assert_eq!(second["error"], json!([]));
    let closed = kr.private("ClosedOrders", &[("cl_ord_id", cid)]).await;
    assert_eq!(closed["result"]["count"], 2);
    assert_eq!(sim.admin().order_log().len(), 2);

    let ex = kr.private("BalanceEx", &[]).await;
    assert_eq!(ex["result"]["XXBT"]["balance"], "0.3000000000");
    assert_eq!(ex["result"]["ZUSD"]["balance"], "13800.0000");
    sim.shutdown().await;
}

#[tokio::test]
async fn open_orders_hold_and_cancel() {
    let sim = common::start().await;
    let mut kr = Kraken::new(&sim, "kr");
    let limit = [
        ("ordertype", "limit"),
        ("type", "sell"),
        ("volume", "1"),
        ("price", "9000"),
        ("pair", "ETHUSD"),
        ("cl_ord_id", "limit-1"),
    ];
    let placed = kr.private("AddOrder", &limit).await;
    let txid = placed["result"]["txid"][0].as_str().unwrap().to_string();
    let duplicate = kr.private("AddOrder", &limit).await;
    assert_eq!(duplicate["error"], json!(["EOrder:Duplicate cl_ord_id"]));
    let open = kr.private("OpenOrders", &[("cl_ord_id", "limit-1")]).await;
    assert_eq!(open["result"]["open"][&txid]["status"], "open");
    let ex = kr.private("BalanceEx", &[]).await;
    assert_eq!(ex["result"]["XETH"]["hold_trade"], "1.0000000000");
    let cancel = kr.private("CancelOrder", &[("cl_ord_id", "limit-1")]).await;
    assert_eq!(cancel["result"]["count"], 1);
    let unknown = kr
        .private("CancelOrder", &[("txid", "OXXXXX-XXXXX-XXXXXX")])
        .await;
    assert_eq!(unknown["error"], json!(["EOrder:Unknown order"]));
    let open = kr.private("OpenOrders", &[]).await;
    assert_eq!(open["result"]["open"], json!({}));
    sim.shutdown().await;
}

#[tokio::test]
async fn order_rules_are_enforced() {
    let sim = common::start().await;
    let mut kr = Kraken::new(&sim, "kr");
    let sell = |volume: &'static str| {
        [
            ("ordertype", "market"),
            ("type", "sell"),
            ("volume", volume),
            ("pair", "ETHUSD"),
        ]
    };
    assert_eq!(
        kr.private("AddOrder", &sell("0.005")).await["error"],
        json!(["EOrder:Order minimum not met"])
    );
    assert_eq!(
        kr.private("AddOrder", &sell("0.123456")).await["error"],
        json!(["EGeneral:Invalid arguments:volume"])
    );
    assert_eq!(
        kr.private("AddOrder", &sell("3")).await["error"],
        json!(["EOrder:Insufficient funds"])
    );
    let bad = [
        ("ordertype", "market"),
        ("type", "sell"),
        ("volume", "1"),
        ("pair", "ETHUSD"),
        ("cl_ord_id", "this-is-longer-than-18"),
    ];
    assert_eq!(
        kr.private("AddOrder", &bad).await["error"],
        json!(["EGeneral:Invalid arguments:cl_ord_id"])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn nonces_and_keys_are_checked() {
    let sim = common::start().await;
    let mut kr = Kraken::new(&sim, "kr");
    assert_eq!(
        kr.private_with_nonce("Balance", &[], 100).await["error"],
        json!([])
    );
    assert_eq!(
        kr.private_with_nonce("Balance", &[], 100).await["error"],
        json!(["EAPI:Invalid nonce"])
    );
    assert_eq!(
        kr.private_with_nonce("Balance", &[], 99).await["error"],
        json!(["EAPI:Invalid nonce"])
    );
    assert_eq!(
        kr.private_with_nonce("Balance", &[], 101).await["error"],
        json!([])
    );

    let good_secret = kr.secret.clone();
    kr.secret = vec![1; 64];
    assert_eq!(
        kr.private("Balance", &[]).await["error"],
        json!(["EAPI:Invalid signature"])
    );
    kr.secret = good_secret;
    let good_key = kr.key.clone();
    kr.key = "nope".into();
    assert_eq!(
        kr.private("Balance", &[]).await["error"],
        json!(["EAPI:Invalid key"])
    );
    kr.key = good_key;

    sim.admin().set_revoked("kr", true).unwrap();
    assert_eq!(
        kr.private("Balance", &[]).await["error"],
        json!(["EAPI:Invalid key"])
    );
    sim.admin().set_revoked("kr", false).unwrap();
    assert_eq!(kr.private("Balance", &[]).await["error"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_base_url_prefix_is_signed_as_sent() {
    let sim = common::start().await;
    let kr = Kraken::new(&sim, "kr");
    let nonce = "1800000000000";
    let body = format!("nonce={nonce}");
    let path = "/kraken/0/private/Balance";
    let sign = nija_sim::credentials::kraken_sign(&kr.secret, path, nonce, body.as_bytes());
    let response: serde_json::Value = kr
        .client
        .post(format!("{}{path}", kr.base))
        .header("API-Key", &kr.key)
        .header("API-Sign", sign)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["error"], json!([]), "{response}");
    sim.shutdown().await;
}

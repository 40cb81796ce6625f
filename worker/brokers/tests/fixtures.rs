//! The parsers and error classifiers against every broker fixture in `test_data/` (from
//! shared/brokers/fixtures): each file's body (or raw text) with its HTTP status.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use nija_brokers::alpaca::http::errors as alpaca_errors;
use nija_brokers::alpaca::http::models as am;
use nija_brokers::alpaca::parse as ap;
use nija_brokers::alpaca::symbols::AlpacaSymbols;
use nija_brokers::coinbase::http::errors as coinbase_errors;
use nija_brokers::coinbase::http::models as cm;
use nija_brokers::coinbase::parse as cp;
use nija_brokers::common::http::RawResponse;
use nija_brokers::kraken::http::errors as kraken_errors;
use nija_brokers::kraken::http::models as km;
use nija_brokers::kraken::parse as kp;
use nija_brokers::kraken::symbols::KrakenSymbols;
use nija_brokers::{ErrorClass, OrderState};
use nija_proto::Symbol;
use rust_decimal_macros::dec;

fn fixture(path: &str) -> RawResponse {
    let text = std::fs::read_to_string(format!(
        "{}/test_data/{path}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let status = v["_meta"]["http_status"].as_u64().unwrap() as u16;
    let body = match v.get("body") {
        Some(body) => body.to_string(),
        None => v["raw_body_text"].as_str().unwrap().to_string(),
    };
    RawResponse {
        status,
        body,
        retry_after: None,
        request_id: None,
    }
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn cash() -> Vec<String> {
    ["USD", "USDC", "USDT", "USDP"].map(String::from).to_vec()
}

// ---------------------------------------------------------------- Coinbase

#[test]
fn coinbase_accounts_become_cash_and_positions_with_holds_excluded() {
    let page: cm::AccountsPage =
        coinbase_errors::decode(&fixture("coinbase/list_accounts")).unwrap();
    assert!(!page.has_next);
    let h = cp::holdings(&page.accounts, &cash(), "USD").unwrap();
    assert_eq!(h.positions.len(), 1);
    assert_eq!(h.positions[0].symbol, sym("BTC-USD"));
    assert_eq!(h.positions[0].quantity.value(), dec!(0.00125));
    assert_eq!(h.positions[0].available.value(), dec!(0.00125));
    let usd = h.cash.iter().find(|c| c.asset == "USD").unwrap();
    assert_eq!(usd.total.value(), dec!(1350.37));
    assert_eq!(usd.available.value(), dec!(1250.37));
    assert!(h.cash.iter().any(|c| c.asset == "USDC"));
    assert_eq!(h.broker_total, None);

    let page: cm::AccountsPage =
        coinbase_errors::decode(&fixture("coinbase/list_accounts_page1_has_next")).unwrap();
    assert!(page.has_next);
    assert_eq!(page.cursor, "8e2d7c1b-6a5f-4e3d-9c2b-1a0f9e8d7c6b");
}

#[test]
fn coinbase_best_bid_ask_prices_at_the_bid() {
    let books: cm::BestBidAsk = coinbase_errors::decode(&fixture("coinbase/best_bid_ask")).unwrap();
    let quotes: Vec<_> = books
        .pricebooks
        .iter()
        .map(|b| cp::quote(b).unwrap())
        .collect();
    assert_eq!(quotes[0].symbol, sym("BTC-USD"));
    assert_eq!(quotes[0].price.value(), dec!(64210.01));
    assert_eq!(quotes[0].ask.unwrap().value(), dec!(64210.02));
    assert!(quotes[0].time.is_some());
    assert_eq!(quotes[1].symbol, sym("ETH-USD"));
    assert_eq!(quotes[1].bid.unwrap().value(), dec!(3781.55));
}

#[test]
fn coinbase_product_rules() {
    let product: cm::Product =
        coinbase_errors::decode(&fixture("coinbase/get_product_btc_usd")).unwrap();
    let rules = cp::rules(&product).unwrap();
    assert_eq!(rules.symbol, sym("BTC-USD"));
    assert_eq!(rules.size_increment.value(), dec!(0.00000001));
    assert_eq!(rules.min_size.value(), dec!(0.00000001));
    assert_eq!(rules.min_notional.unwrap().value(), dec!(1));
    assert!(rules.tradable);
    assert!(!rules.market_hours_only);
}

#[test]
fn coinbase_order_creation_outcomes() {
    for name in [
        "create_order_market_sell_success",
        "create_order_success_legacy_shape",
    ] {
        let r: cm::CreateOrderResponse =
            coinbase_errors::decode(&fixture(&format!("coinbase/{name}"))).unwrap();
        assert!(r.success, "{name}");
        assert_eq!(
            r.success_response.unwrap().order_id,
            "0f8f4d38-6c4e-4a3e-9c1c-7b1f2f3e4d5a"
        );
    }
    let r: cm::CreateOrderResponse =
        coinbase_errors::decode(&fixture("coinbase/create_order_failure_insufficient_fund"))
            .unwrap();
    assert!(!r.success);
    let failure = r.error_response.unwrap();
    assert!(!coinbase_errors::is_duplicate_client_order_id(&failure));
    assert_eq!(
        coinbase_errors::classify_create_failure(&failure).class(),
        ErrorClass::InsufficientFunds
    );
    let r: cm::CreateOrderResponse =
        coinbase_errors::decode(&fixture("coinbase/create_order_failure_size_too_small")).unwrap();
    let e = coinbase_errors::classify_create_failure(&r.error_response.unwrap());
    assert_eq!(e.class(), ErrorClass::OrderRejected);
    assert!(
        e.to_string()
            .contains("PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"),
        "{e}"
    );
}

#[test]
fn coinbase_orders_normalise_by_filled_size() {
    let got: cm::GetOrder =
        coinbase_errors::decode(&fixture("coinbase/get_order_filled_market_sell")).unwrap();
    let s = cp::order_status(&got.order).unwrap();
    assert_eq!(s.state, OrderState::Filled);
    assert_eq!(s.filled_quantity.value(), dec!(0.00125));
    assert_eq!(s.quantity.value(), dec!(0.00125));
    assert_eq!(s.average_fill_price.unwrap().value(), dec!(64208.11));
    assert_eq!(s.client_order_id.as_deref(), Some("wrk-7f3a9c2e-sell-0001"));

    let page: cm::OrdersPage =
        coinbase_errors::decode(&fixture("coinbase/list_orders_open")).unwrap();
    let s = cp::order_status(&page.orders[0]).unwrap();
    assert_eq!(s.state, OrderState::Open);
    assert_eq!(s.quantity.value(), dec!(0.01));
    assert_eq!(s.average_fill_price, None);

    // A cancelled IOC that filled part of its size is a partial fill, whatever the status says.
    let mut order = got.order.clone();
    order.status = "CANCELLED".into();
    order.filled_size = Some(dec!(0.001));
    assert_eq!(
        cp::order_status(&order).unwrap().state,
        OrderState::PartiallyFilled
    );
    order.filled_size = Some(dec!(0));
    assert_eq!(
        cp::order_status(&order).unwrap().state,
        OrderState::Cancelled
    );
}

#[test]
fn coinbase_cancel_results() {
    let r: cm::CancelResults = coinbase_errors::decode(&fixture("coinbase/cancel_orders")).unwrap();
    assert!(r.results[0].success);
    assert!(!r.results[1].success);
    assert_eq!(r.results[1].failure_reason, "UNKNOWN_CANCEL_ORDER");
}

#[test]
fn coinbase_errors_are_classified() {
    for (name, class) in [
        ("error_400_invalid_argument", ErrorClass::InvalidResponse),
        ("error_401_unauthorized", ErrorClass::Authentication),
        ("error_403_missing_scopes", ErrorClass::Permission),
        ("error_404_order_not_found", ErrorClass::NotFound),
    ] {
        let resp = fixture(&format!("coinbase/{name}"));
        let e = coinbase_errors::decode::<cm::GetOrder>(&resp).unwrap_err();
        assert_eq!(e.class(), class, "{name}: {e}");
    }
    let e = coinbase_errors::classify(&fixture("coinbase/error_403_missing_scopes"));
    assert!(e.to_string().contains("Missing required scopes"));
    let e = coinbase_errors::classify(&fixture("coinbase/error_401_unauthorized"));
    assert!(e.to_string().contains("Unauthorized"));
}

// ---------------------------------------------------------------- Kraken

fn kraken_symbols() -> KrakenSymbols {
    let assets: BTreeMap<String, km::AssetInfo> =
        kraken_errors::decode(&fixture("kraken/assets"), None).unwrap();
    let pairs: BTreeMap<String, km::AssetPair> =
        kraken_errors::decode(&fixture("kraken/asset_pairs_xbtusd"), None).unwrap();
    KrakenSymbols::new(&assets, &pairs)
}

#[test]
fn kraken_names_map_both_ways() {
    let m = kraken_symbols();
    assert_eq!(m.asset("XXBT"), Some("BTC"));
    assert_eq!(m.asset("XBT"), Some("BTC"));
    assert_eq!(m.asset("ZUSD"), Some("USD"));
    let pair = m.pair(&sym("BTC-USD")).unwrap();
    assert_eq!(pair.key, "XXBTZUSD");
    assert_eq!(pair.altname, "XBTUSD");
    assert_eq!(m.symbol("XXBTZUSD"), Some(&sym("BTC-USD")));
    assert_eq!(m.symbol("XBTUSD"), Some(&sym("BTC-USD")));
    let e = m.pair(&sym("ETH-USD")).unwrap_err();
    assert_eq!(e.class(), ErrorClass::UnknownSymbol, "no guessed XETHZUSD");
    let rules = pair.rules();
    assert_eq!(rules.min_size.value(), dec!(0.00005));
    assert_eq!(rules.size_increment.value(), dec!(0.00000001));
    assert_eq!(rules.min_notional.unwrap().value(), dec!(0.5));
    assert!(rules.tradable);
}

#[test]
fn kraken_balance_ex_available_subtracts_holds() {
    let balances: BTreeMap<String, km::BalanceEx> =
        kraken_errors::decode(&fixture("kraken/balance_ex"), None).unwrap();
    let h = kp::holdings(&balances, &kraken_symbols(), &cash(), "USD").unwrap();
    let usd = &h.cash[0];
    assert_eq!(usd.asset, "USD");
    assert_eq!(usd.total.value(), dec!(1520.4312));
    assert_eq!(usd.available.value(), dec!(1420.4312));
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.available.value(), dec!(0.0125));
    let eth = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("ETH-USD"))
        .unwrap();
    assert_eq!(eth.quantity.value(), dec!(0.5));
    assert_eq!(eth.available.value(), dec!(0.4));
}

#[test]
fn kraken_an_unknown_balance_asset_is_an_error_not_a_guess() {
    let mut balances: BTreeMap<String, km::BalanceEx> =
        kraken_errors::decode(&fixture("kraken/balance_ex"), None).unwrap();
    let mut extra = balances["XXBT"].clone();
    extra.balance = dec!(3);
    balances.insert("XNEWCOIN".into(), extra);
    let e = kp::holdings(&balances, &kraken_symbols(), &cash(), "USD").unwrap_err();
    assert_eq!(e.class(), ErrorClass::UnknownSymbol);
}

#[test]
fn kraken_ticker_is_keyed_by_pair_key_and_prices_at_the_last_trade() {
    let tickers: BTreeMap<String, km::Ticker> =
        kraken_errors::decode(&fixture("kraken/ticker_xbtusd"), None).unwrap();
    let q = kp::quote(&sym("BTC-USD"), &tickers["XXBTZUSD"]).unwrap();
    assert_eq!(q.price.value(), dec!(64215.1));
    assert_eq!(q.bid.unwrap().value(), dec!(64215.0));
    assert_eq!(q.ask.unwrap().value(), dec!(64215.1));
}

#[test]
fn kraken_orders_normalise() {
    let m = kraken_symbols();
    let r: km::AddOrderResult =
        kraken_errors::decode(&fixture("kraken/add_order_market_sell"), None).unwrap();
    assert_eq!(r.txid, ["OQCLML-BW3P3-BUCMWZ"]);
    let r: km::AddOrderResult =
        kraken_errors::decode(&fixture("kraken/add_order_validate_only"), None).unwrap();
    assert!(r.txid.is_empty());

    let orders: BTreeMap<String, km::Order> =
        kraken_errors::decode(&fixture("kraken/query_orders_closed_market_sell"), None).unwrap();
    let (txid, order) = orders.iter().next().unwrap();
    let s = kp::order_status(txid, order, &m, None).unwrap();
    assert_eq!(s.state, OrderState::Filled);
    assert_eq!(s.symbol, sym("BTC-USD"));
    assert_eq!(s.filled_quantity.value(), dec!(0.0125));
    assert_eq!(s.average_fill_price.unwrap().value(), dec!(64210.3));
    assert_eq!(
        s.client_order_id.as_deref(),
        Some("6d1b345e-2821-40e2-ad83-4ecb18a06876")
    );

    let closed: km::ClosedOrders =
        kraken_errors::decode(&fixture("kraken/closed_orders_page"), None).unwrap();
    assert_eq!(closed.count, 1);
    let (txid, order) = closed.closed.iter().next().unwrap();
    assert_eq!(
        kp::order_status(txid, order, &m, None).unwrap().state,
        OrderState::Filled
    );

    let open: km::OpenOrders = kraken_errors::decode(&fixture("kraken/open_orders"), None).unwrap();
    let (txid, order) = open.open.iter().next().unwrap();
    let s = kp::order_status(txid, order, &m, None).unwrap();
    assert_eq!(s.state, OrderState::Open);
    assert_eq!(s.average_fill_price, None);

    let mut partial = order.clone();
    partial.status = "canceled".into();
    partial.vol_exec = dec!(0.004);
    partial.price = Some(dec!(70000));
    assert_eq!(
        kp::order_status(txid, &partial, &m, None).unwrap().state,
        OrderState::PartiallyFilled
    );

    let c: km::CancelResult = kraken_errors::decode(&fixture("kraken/cancel_order"), None).unwrap();
    assert_eq!(c.count, 1);
}

#[test]
fn kraken_errors_are_classified() {
    for (name, class) in [
        ("error_cancel_only", ErrorClass::OrderRejected),
        ("error_insufficient_funds", ErrorClass::InsufficientFunds),
        ("error_invalid_arguments", ErrorClass::OrderRejected),
        ("error_invalid_arguments_volume", ErrorClass::OrderRejected),
        ("error_invalid_key", ErrorClass::Authentication),
        ("error_invalid_nonce", ErrorClass::InvalidNonce),
        ("error_invalid_signature", ErrorClass::Authentication),
        ("error_order_minimum", ErrorClass::OrderRejected),
        ("error_order_rate_limit", ErrorClass::RateLimited),
        ("error_rate_limit", ErrorClass::RateLimited),
        ("error_unavailable", ErrorClass::Transient),
        ("error_unknown_asset_pair", ErrorClass::UnknownSymbol),
        ("error_unknown_order", ErrorClass::NotFound),
    ] {
        let e = kraken_errors::decode::<km::CancelResult>(
            &fixture(&format!("kraken/{name}")),
            Some("BTC-USD"),
        )
        .unwrap_err();
        assert_eq!(e.class(), class, "{name}: {e}");
    }
    let e = kraken_errors::decode::<km::CancelResult>(
        &fixture("kraken/error_unknown_asset_pair"),
        Some("FOO-USD"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("FOO-USD"));
    let e = kraken_errors::classify_errors(&["EOrder:Invalid order".into()], None).unwrap();
    assert_eq!(e.class(), ErrorClass::NotFound);
    // Warnings alone are not failures.
    assert!(kraken_errors::classify_errors(&["WGeneral:Danger".into()], None).is_none());
    let e = kraken_errors::classify_errors(&["EService: Throttled: 1".into()], None).unwrap();
    assert_eq!(e.class(), ErrorClass::RateLimited);
    let busy = RawResponse {
        status: 520,
        body: "<html>".into(),
        retry_after: None,
        request_id: None,
    };
    assert_eq!(
        kraken_errors::classify_http(&busy).class(),
        ErrorClass::Transient
    );
}

// ---------------------------------------------------------------- Alpaca

fn alpaca_symbols() -> AlpacaSymbols {
    let btc: am::Asset = alpaca_errors::decode(&fixture("alpaca/asset_btc_usd")).unwrap();
    AlpacaSymbols::new(&[btc], "USD")
}

#[test]
fn alpaca_symbols_map_both_ways() {
    let m = alpaca_symbols();
    let btc = m.name(&sym("BTC-USD")).unwrap();
    assert_eq!(btc.order_symbol(), "BTC/USD");
    assert!(btc.is_crypto());
    assert_eq!(m.symbol("BTCUSD", "crypto"), Some(sym("BTC-USD")));
    assert_eq!(m.symbol("BTC/USD", "crypto"), Some(sym("BTC-USD")));
    assert_eq!(m.symbol("BRK.B", "us_equity"), Some(sym("BRK.B-USD")));
    assert_eq!(m.name(&sym("BRK.B-USD")).unwrap().order_symbol(), "BRK.B");
    assert_eq!(
        m.symbol("DOGEUSD", "crypto"),
        None,
        "an unlearned pair is never split by guess"
    );
    assert_eq!(
        m.name(&sym("BTC-EUR")).unwrap_err().class(),
        ErrorClass::UnknownSymbol
    );
    // ReneSola trades as SOL; with Solana's SOL/USD listed, SOL-USD would name both.
    let mut sol: am::Asset = alpaca_errors::decode(&fixture("alpaca/asset_btc_usd")).unwrap();
    sol.symbol = "SOL/USD".into();
    let with_sol = AlpacaSymbols::new(&[sol], "USD");
    assert_eq!(with_sol.symbol("SOLUSD", "crypto"), Some(sym("SOL-USD")));
    assert_eq!(
        with_sol.symbol("SOL", "us_equity"),
        None,
        "ambiguous, never a guess"
    );
    assert_eq!(with_sol.symbol("SOL", ""), None);
    assert_eq!(with_sol.symbol("AAPL", ""), Some(sym("AAPL-USD")));
}

#[test]
fn alpaca_holdings_use_qty_available_and_report_equity() {
    let account: am::Account = alpaca_errors::decode(&fixture("alpaca/account")).unwrap();
    let positions: Vec<am::Position> = alpaca_errors::decode(&fixture("alpaca/positions")).unwrap();
    let h = ap::holdings(&account, &positions, &alpaca_symbols(), &cash()).unwrap();
    assert_eq!(h.broker_total.unwrap().value(), dec!(11302.69));
    assert_eq!(h.cash[0].total.value(), dec!(9205.26));
    let aapl = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("AAPL-USD"))
        .unwrap();
    assert_eq!(aapl.quantity.value(), dec!(10.5));
    assert_eq!(aapl.available.value(), dec!(9));
    assert_eq!(aapl.avg_entry_price.unwrap().value(), dec!(182.10));
    let btc = h
        .positions
        .iter()
        .find(|p| p.symbol == sym("BTC-USD"))
        .unwrap();
    assert_eq!(btc.available.value(), dec!(0.001247187));

    let e = ap::holdings(
        &account,
        &positions,
        &AlpacaSymbols::new(&[], "USD"),
        &cash(),
    )
    .unwrap_err();
    assert_eq!(
        e.class(),
        ErrorClass::UnknownSymbol,
        "BTCUSD without the learned pair"
    );
}

#[test]
fn alpaca_rules() {
    let btc: am::Asset = alpaca_errors::decode(&fixture("alpaca/asset_btc_usd")).unwrap();
    let r = ap::crypto_rules(&sym("BTC-USD"), &btc);
    assert_eq!(r.min_size.value(), dec!(0.000016));
    assert_eq!(r.size_increment.value(), dec!(0.000000001));
    assert!(r.tradable && !r.market_hours_only);
    let aapl: am::Asset = alpaca_errors::decode(&fixture("alpaca/asset_aapl")).unwrap();
    let r = ap::equity_rules(&sym("AAPL-USD"), &aapl);
    assert_eq!(r.size_increment.value(), dec!(0.000000001));
    assert!(r.tradable && r.market_hours_only);
}

#[test]
fn alpaca_quotes_read_numbers_exactly() {
    let q: am::LatestQuotes = alpaca_errors::decode(&fixture("alpaca/latest_quote_stock")).unwrap();
    let quote = ap::quote(&sym("AAPL-USD"), &q.quotes["AAPL"]).unwrap();
    assert_eq!(quote.price.value(), dec!(192.08));
    assert_eq!(quote.ask.unwrap().value(), dec!(192.12));
    let q: am::LatestQuotes =
        alpaca_errors::decode(&fixture("alpaca/latest_quotes_crypto")).unwrap();
    let quote = ap::quote(&sym("BTC-USD"), &q.quotes["BTC/USD"]).unwrap();
    assert_eq!(quote.price.value(), dec!(64190.1));
    assert!(quote.time.is_some());
}

#[test]
fn alpaca_orders_normalise() {
    let m = alpaca_symbols();
    let o: am::Order = alpaca_errors::decode(&fixture("alpaca/order_crypto_filled")).unwrap();
    let s = ap::order_status(&o, &m, None).unwrap();
    assert_eq!(s.state, OrderState::Filled);
    assert_eq!(s.symbol, sym("BTC-USD"));
    assert_eq!(s.average_fill_price.unwrap().value(), dec!(64190.2));
    let o: am::Order =
        alpaca_errors::decode(&fixture("alpaca/order_market_sell_accepted")).unwrap();
    let s = ap::order_status(&o, &m, None).unwrap();
    assert_eq!(s.state, OrderState::Open);
    assert_eq!(s.symbol, sym("AAPL-USD"));
    assert_eq!(s.quantity.value(), dec!(1.5));
    let open: Vec<am::Order> = alpaca_errors::decode(&fixture("alpaca/orders_open")).unwrap();
    assert_eq!(
        ap::order_status(&open[0], &m, None).unwrap().state,
        OrderState::Open
    );
    let mut partial = o.clone();
    partial.status = "canceled".into();
    partial.filled_qty = Some(dec!(0.5));
    assert_eq!(
        ap::order_status(&partial, &m, None).unwrap().state,
        OrderState::PartiallyFilled
    );
}

#[test]
fn alpaca_errors_are_classified() {
    for (name, class) in [
        ("error_401_not_authorized_code", ErrorClass::Authentication),
        ("error_401_unauthorized_plain", ErrorClass::Authentication),
        (
            "error_403_insufficient_buying_power",
            ErrorClass::InsufficientFunds,
        ),
        ("error_403_insufficient_qty", ErrorClass::InsufficientFunds),
        ("error_404_order_not_found", ErrorClass::NotFound),
        ("error_404_position_not_found", ErrorClass::NotFound),
        (
            "error_422_duplicate_client_order_id",
            ErrorClass::OrderRejected,
        ),
        ("error_422_invalid_crypto_tif", ErrorClass::OrderRejected),
        ("error_422_not_cancelable", ErrorClass::OrderRejected),
        ("error_429_rate_limit", ErrorClass::RateLimited),
    ] {
        let resp = fixture(&format!("alpaca/{name}"));
        assert_eq!(alpaca_errors::classify(&resp).class(), class, "{name}");
        assert_eq!(
            alpaca_errors::is_duplicate_client_order_id(&resp),
            name == "error_422_duplicate_client_order_id",
            "{name}"
        );
    }
    let cancelled = fixture("alpaca/cancel_order_204");
    assert!(cancelled.is_success() && cancelled.body.is_empty());
    let forbidden = RawResponse {
        status: 403,
        body: r#"{"message":"forbidden."}"#.into(),
        retry_after: None,
        request_id: None,
    };
    assert_eq!(
        alpaca_errors::classify(&forbidden).class(),
        ErrorClass::Permission
    );
}

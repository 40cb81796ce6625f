//! Kraken Spot REST (`/0/public/<Method>`, `/0/private/<Method>`): API-Sign and strictly
//! increasing nonces per key, Kraken asset and pair names, errors in-band with HTTP 200.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::broker::Broker;
use crate::credentials::{Verifier, kraken_sign};
use crate::exchange::account::Account;
use crate::exchange::order::ClientIdRule;
use crate::exchange::order::{
    Order, OrderKind, OrderRequest, OrderSource, OrderStatus, Reject, Side,
};
use crate::exchange::{Exchange, new_order_id};
use crate::faults::Injected;
use crate::front::{fixed, gate, query_pairs, signed_paths};
use crate::market::instruments::{Instrument, kraken_asset, kraken_pair};

pub const MARKERS: &[&str] = &["/0/public/", "/0/private/"];

type Ex = Arc<Exchange>;

pub fn router(exchange: Ex) -> Router {
    Router::new()
        .route("/0/public/{method}", any(public))
        .route("/0/private/{method}", any(private))
        .with_state(exchange)
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"error": [], "result": result})).into_response()
}

fn err(message: &str) -> Response {
    axum::Json(json!({"error": [message]})).into_response()
}

fn injected(fault: Injected) -> Response {
    match fault {
        Injected::ServerError => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": ["EService:Unavailable"]})),
        )
            .into_response(),
        Injected::RateLimited { retry_after_s } => {
            let mut response = err("EAPI:Rate limit exceeded");
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            response
        }
    }
}

/// Parameters of a request: the form (or JSON) body plus the query string.
fn params(parts: &Parts, body: &[u8]) -> Vec<(String, String)> {
    let json = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut pairs = if json {
        serde_json::from_slice::<Map<String, Value>>(body)
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
    };
    pairs.extend(query_pairs(parts));
    pairs
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn timestamp(time: chrono::DateTime<Utc>) -> Value {
    let seconds = Decimal::new(time.timestamp_micros(), 6).round_dp(4);
    serde_json::from_str(&seconds.to_string()).unwrap_or(Value::Null)
}

async fn public(
    State(ex): State<Ex>,
    Path(method): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    if let Some(fault) = gate(&ex, Broker::Kraken, None).await {
        return injected(fault);
    }
    let pairs = params(&parts, &body);
    match method.as_str() {
        "Time" => {
            let now = Utc::now();
            ok(
                json!({"unixtime": now.timestamp(), "rfc1123": now.format("%a, %d %b %y %H:%M:%S +0000").to_string()}),
            )
        }
        "Assets" => assets(&ex, &pairs),
        "AssetPairs" => asset_pairs(&ex, &pairs),
        "Ticker" => ticker(&ex, &pairs),
        "Depth" => depth(&ex, &pairs),
        _ => err("EGeneral:Unknown method"),
    }
}

/// Pairs named in `pair=` (key, altname or wsname), or every listed pair when absent.
fn requested_pairs(ex: &Exchange, pairs: &[(String, String)]) -> Option<Vec<Instrument>> {
    let names = list(param(pairs, "pair"));
    if names.is_empty() {
        return Some(
            ex.market
                .catalog
                .all()
                .filter(|i| i.listed_at(Broker::Kraken))
                .cloned()
                .collect(),
        );
    }
    names
        .iter()
        .map(|name| ex.market.catalog.from_kraken(name).cloned())
        .collect()
}

fn assets(ex: &Exchange, pairs: &[(String, String)]) -> Response {
    let wanted = list(param(pairs, "asset"));
    let mut result = Map::new();
    let mut names: Vec<String> = ex
        .market
        .catalog
        .all()
        .filter(|i| i.listed_at(Broker::Kraken))
        .flat_map(|i| [i.base.clone(), i.quote.clone()])
        .collect();
    names.sort();
    names.dedup();
    for asset in names {
        let (id, alt) = kraken_asset(&asset);
        if !wanted.is_empty() && !wanted.iter().any(|w| *w == id || *w == alt) {
            continue;
        }
        result.insert(
            id,
            json!({"aclass": "currency", "altname": alt, "decimals": 10, "display_decimals": 5, "status": "enabled"}),
        );
    }
    if result.is_empty() && !wanted.is_empty() {
        return err("EQuery:Unknown asset");
    }
    ok(Value::Object(result))
}

fn asset_pairs(ex: &Exchange, pairs: &[(String, String)]) -> Response {
    let Some(instruments) = requested_pairs(ex, pairs) else {
        return err("EQuery:Unknown asset pair");
    };
    let mut result = Map::new();
    for instrument in instruments {
        let names = kraken_pair(&instrument);
        let Some(rules) = ex.market.rules(Broker::Kraken, &instrument.symbol) else {
            continue;
        };
        result.insert(
            names.key.clone(),
            json!({
                "altname": names.altname,
                "wsname": names.wsname,
                "aclass_base": "currency",
                "base": names.base,
                "aclass_quote": "currency",
                "quote": names.quote,
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": rules.price_step.normalize().scale(),
                "lot_decimals": rules.step.normalize().scale(),
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": [[0, 0.4]],
                "fees_maker": [[0, 0.25]],
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": rules.min_qty.normalize().to_string(),
                "costmin": rules.min_notional.normalize().to_string(),
                "tick_size": rules.price_step.normalize().to_string(),
                "status": "online",
            }),
        );
    }
    ok(Value::Object(result))
}

fn depth(ex: &Exchange, pairs: &[(String, String)]) -> Response {
    let Some(instrument) = param(pairs, "pair")
        .and_then(|p| ex.market.catalog.from_kraken(p))
        .cloned()
    else {
        return err("EQuery:Unknown asset pair");
    };
    let Some(q) = ex
        .market
        .quote(&instrument.symbol)
        .filter(|_| !ex.faults.price_fails(Broker::Kraken, &instrument.symbol))
    else {
        return err("EQuery:Unknown asset pair");
    };
    let time = q.time.timestamp();
    let level = |price: Decimal| json!([fixed(price, 5), "1.000", time]);
    let mut result = Map::new();
    result.insert(
        kraken_pair(&instrument).key,
        json!({"asks": [level(q.ask)], "bids": [level(q.bid)]}),
    );
    ok(Value::Object(result))
}

fn ticker(ex: &Exchange, pairs: &[(String, String)]) -> Response {
    let explicit = param(pairs, "pair").is_some();
    let Some(instruments) = requested_pairs(ex, pairs) else {
        return err("EQuery:Unknown asset pair");
    };
    let mut result = Map::new();
    for instrument in instruments {
        let failing = ex.faults.price_fails(Broker::Kraken, &instrument.symbol);
        let quote = ex.market.quote(&instrument.symbol).filter(|_| !failing);
        let Some(q) = quote else {
            if explicit {
                return err("EQuery:Unknown asset pair");
            }
            continue;
        };
        let decimals = ex
            .market
            .rules(Broker::Kraken, &instrument.symbol)
            .map(|r| r.price_step.normalize().scale())
            .unwrap_or(5)
            .max(5);
        let p = |v: Decimal| fixed(v, decimals);
        result.insert(
            kraken_pair(&instrument).key,
            json!({
                "a": [p(q.ask), "1", "1.000"],
                "b": [p(q.bid), "1", "1.000"],
                "c": [p(q.last), "0.00100000"],
                "v": ["100.00000000", "200.00000000"],
                "p": [p(q.last), p(q.last)],
                "t": [100, 200],
                "l": [p(q.last), p(q.last)],
                "h": [p(q.last), p(q.last)],
                "o": p(q.last),
            }),
        );
    }
    ok(Value::Object(result))
}

/// Checks API-Key, API-Sign and the nonce; applies faults. Returns the account and parameters.
async fn authenticate(
    ex: &Exchange,
    parts: &Parts,
    body: &[u8],
) -> Result<(Arc<Account>, Vec<(String, String)>), Response> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let account = header("API-Key")
        .and_then(|key| ex.by_key(Broker::Kraken, key))
        .filter(|a| !a.revoked())
        .ok_or_else(|| err("EAPI:Invalid key"))?;
    let Verifier::Kraken(secret) = &account.verifier else {
        return Err(err("EAPI:Invalid key"));
    };
    let pairs = params(parts, body);
    let nonce_text = param(&pairs, "nonce").unwrap_or_default().to_string();
    let signature = header("API-Sign").unwrap_or_default();
    let valid = signed_paths(parts)
        .iter()
        .any(|path| kraken_sign(secret, path, &nonce_text, body) == signature);
    if !valid {
        return Err(err("EAPI:Invalid signature"));
    }
    if ex.faults.nonce_error(account.id()) {
        return Err(err("EAPI:Invalid nonce"));
    }
    if let Some(fault) = gate(ex, Broker::Kraken, Some(account.id())).await {
        return Err(injected(fault));
    }
    let Ok(nonce) = nonce_text.parse::<u64>() else {
        return Err(err("EAPI:Invalid nonce"));
    };
    let fresh = account.with_book(|b| {
        if nonce > b.kraken_nonce {
            b.kraken_nonce = nonce;
            true
        } else {
            false
        }
    });
    if !fresh {
        return Err(err("EAPI:Invalid nonce"));
    }
    Ok((Arc::clone(account), pairs))
}

async fn private(
    State(ex): State<Ex>,
    Path(method): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    if parts.method != axum::http::Method::POST {
        return err("EGeneral:Invalid arguments");
    }
    let (account, pairs) = match authenticate(&ex, &parts, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    match method.as_str() {
        "Balance" => balance(&ex, &account),
        "BalanceEx" => balance_ex(&ex, &account),
        "AddOrder" => add_order(&ex, &account, &pairs, &parts).await,
        "QueryOrders" => query_orders(&ex, &account, &pairs),
        "OpenOrders" => open_orders(&ex, &account, &pairs),
        "ClosedOrders" => closed_orders(&ex, &account, &pairs),
        "CancelOrder" => cancel_order(&account, &pairs),
        "QueryTrades" => query_trades(&ex, &account, &pairs),
        "TradesHistory" => trades_history(&ex, &account),
        _ => err("EGeneral:Unknown method"),
    }
}

fn amount(asset: &str, value: Decimal) -> String {
    fixed(value, if asset.starts_with('Z') { 4 } else { 10 })
}

fn balance(ex: &Exchange, account: &Account) -> Response {
    let balances = account.with_book(|b| b.balances(&ex.market));
    let result: Map<String, Value> = balances
        .iter()
        .map(|b| {
            let (id, _) = kraken_asset(&b.asset);
            let text = amount(&id, b.total);
            (id, Value::String(text))
        })
        .collect();
    ok(Value::Object(result))
}

fn balance_ex(ex: &Exchange, account: &Account) -> Response {
    let balances = account.with_book(|b| b.balances(&ex.market));
    let result: Map<String, Value> = balances
        .iter()
        .map(|b| {
            let (id, _) = kraken_asset(&b.asset);
            let entry = json!({"balance": amount(&id, b.total), "hold_trade": amount(&id, b.held)});
            (id, entry)
        })
        .collect();
    ok(Value::Object(result))
}

fn description(
    instrument: &Instrument,
    side: Side,
    kind: OrderKind,
    volume: Decimal,
    lot: u32,
) -> String {
    let altname = kraken_pair(instrument).altname;
    let price = match kind {
        OrderKind::Market => "market".to_string(),
        OrderKind::Limit(p) => format!("limit {}", p.normalize()),
    };
    format!(
        "{} {} {} @ {}",
        side.as_str(),
        fixed(volume, lot),
        altname,
        price
    )
}

/// A client order id Kraken accepts: a UUID (with or without hyphens) or up to 18 characters.
fn valid_cl_ord_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok() || (!id.is_empty() && id.len() <= 18)
}

async fn add_order(
    ex: &Exchange,
    account: &Arc<Account>,
    pairs: &[(String, String)],
    parts: &Parts,
) -> Response {
    let Some(instrument) = param(pairs, "pair")
        .and_then(|p| ex.market.catalog.from_kraken(p))
        .cloned()
    else {
        return err("EQuery:Unknown asset pair");
    };
    let side = match param(pairs, "type") {
        Some("sell") => Side::Sell,
        Some("buy") => Side::Buy,
        _ => return err("EGeneral:Invalid arguments:type"),
    };
    let lot = ex
        .market
        .rules(Broker::Kraken, &instrument.symbol)
        .map(|r| r.step.normalize().scale())
        .unwrap_or(8);
    let Some(volume) = param(pairs, "volume").and_then(|v| v.parse::<Decimal>().ok()) else {
        return err("EGeneral:Invalid arguments:volume");
    };
    if volume.normalize().scale() > lot {
        return err("EGeneral:Invalid arguments:volume");
    }
    let kind = match param(pairs, "ordertype") {
        Some("market") => OrderKind::Market,
        Some("limit") => match param(pairs, "price").and_then(|p| p.parse().ok()) {
            Some(price) => OrderKind::Limit(price),
            None => return err("EGeneral:Invalid arguments:price"),
        },
        _ => return err("EGeneral:Invalid arguments:ordertype"),
    };
    let client_order_id = param(pairs, "cl_ord_id").map(str::to_string);
    if client_order_id
        .as_deref()
        .is_some_and(|id| !valid_cl_ord_id(id))
    {
        return err("EGeneral:Invalid arguments:cl_ord_id");
    }
    let descr = description(&instrument, side, kind, volume, lot);
    if truthy(param(pairs, "validate")) {
        return ok(json!({"descr": {"order": descr}}));
    }
    let request = OrderRequest {
        symbol: instrument.symbol.clone(),
        side,
        kind,
        quantity: volume,
        client_order_id,
        time_in_force: param(pairs, "timeinforce").unwrap_or("GTC").to_string(),
        source: OrderSource::Api,
    };
    let order = match ex.place(
        account,
        new_order_id(Broker::Kraken),
        request,
        ClientIdRule::UniqueAmongOpen,
    ) {
        Ok(placed) => placed.order().clone(),
        Err(reject) => {
            return err(match reject {
                Reject::DuplicateClientId => "EOrder:Duplicate cl_ord_id",
                Reject::InsufficientFunds { .. } => "EOrder:Insufficient funds",
                Reject::BelowMinQty { .. } => "EOrder:Order minimum not met",
                Reject::BelowMinNotional { .. } => "EOrder:Cost minimum not met",
                Reject::Precision { .. } | Reject::NonPositive => {
                    "EGeneral:Invalid arguments:volume"
                }
                Reject::UnknownSymbol(_) => "EQuery:Unknown asset pair",
                Reject::NoPrice(_) => "EService:Unavailable",
            });
        }
    };
    if let Some(mode) = ex.faults.lost_response(Broker::Kraken, account.id()) {
        return crate::coinbase::lose_response(parts, mode).await;
    }
    ok(json!({"descr": {"order": descr}, "txid": [order.id]}))
}

/// A Kraken trade id derived from the fill's id (stable across calls).
fn trade_id(order: &Order) -> Option<String> {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let uuid = uuid::Uuid::parse_str(order.trade_id.as_deref()?).ok()?;
    let chars: String = uuid
        .as_bytes()
        .iter()
        .map(|b| TABLE[usize::from(*b) % TABLE.len()] as char)
        .collect();
    Some(format!(
        "T{}-{}-{}",
        &chars[..5],
        &chars[5..10],
        &chars[10..16]
    ))
}

fn order_json(ex: &Exchange, order: &Order, with_trades: bool) -> Value {
    let instrument = ex.market.instrument(&order.symbol).cloned();
    let lot = ex
        .market
        .rules(Broker::Kraken, &order.symbol)
        .map(|r| r.step.normalize().scale())
        .unwrap_or(8);
    let status = match order.status {
        OrderStatus::Open => "open",
        OrderStatus::Filled => "closed",
        OrderStatus::Canceled => "canceled",
    };
    let (descr, altname) = match &instrument {
        Some(i) => (
            description(i, order.side, order.kind, order.quantity, lot),
            kraken_pair(i).altname,
        ),
        None => (String::new(), order.symbol.clone()),
    };
    let mut value = json!({
        "refid": null,
        "userref": 0,
        "status": status,
        "reason": if order.status == OrderStatus::Canceled { json!("User requested") } else { Value::Null },
        "opentm": timestamp(order.created_at),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": altname,
            "type": order.side.as_str(),
            "ordertype": if matches!(order.kind, OrderKind::Market) { "market" } else { "limit" },
            "price": match order.kind { OrderKind::Limit(p) => p.normalize().to_string(), OrderKind::Market => "0".into() },
            "price2": "0",
            "leverage": "none",
            "order": descr,
            "close": "",
        },
        "vol": fixed(order.quantity, lot),
        "vol_exec": fixed(order.filled_qty, lot),
        "cost": fixed(order.filled_value(), 5),
        "fee": fixed(order.fee, 5),
        "price": fixed(order.avg_price.unwrap_or_default(), 5),
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    });
    if let Some(id) = &order.client_order_id {
        value["cl_ord_id"] = json!(id);
    }
    if let Some(closed) = order.filled_at.or(order.canceled_at) {
        value["closetm"] = timestamp(closed);
    }
    if with_trades && let Some(id) = trade_id(order) {
        value["trades"] = json!([id]);
    }
    value
}

fn query_orders(ex: &Exchange, account: &Account, pairs: &[(String, String)]) -> Response {
    let ids = list(param(pairs, "txid"));
    if ids.is_empty() {
        return err("EGeneral:Invalid arguments:txid");
    }
    let with_trades = truthy(param(pairs, "trades"));
    let found: Option<Map<String, Value>> = account.with_book(|b| {
        ids.iter()
            .map(|id| {
                b.order(id)
                    .map(|o| (id.clone(), order_json(ex, o, with_trades)))
            })
            .collect()
    });
    match found {
        Some(map) => ok(Value::Object(map)),
        None => err("EOrder:Invalid order"),
    }
}

fn matching<'a>(
    orders: impl Iterator<Item = &'a Order>,
    pairs: &[(String, String)],
) -> Vec<&'a Order> {
    let client = param(pairs, "cl_ord_id");
    orders
        .filter(|o| client.is_none_or(|c| o.client_order_id.as_deref() == Some(c)))
        .collect()
}

fn open_orders(ex: &Exchange, account: &Account, pairs: &[(String, String)]) -> Response {
    let with_trades = truthy(param(pairs, "trades"));
    let open: Map<String, Value> = account.with_book(|b| {
        matching(b.orders.iter().filter(|o| o.is_open()), pairs)
            .into_iter()
            .map(|o| (o.id.clone(), order_json(ex, o, with_trades)))
            .collect()
    });
    ok(json!({"open": open}))
}

fn closed_orders(ex: &Exchange, account: &Account, pairs: &[(String, String)]) -> Response {
    let with_trades = truthy(param(pairs, "trades"));
    let offset = param(pairs, "ofs")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let (closed, count) = account.with_book(|b| {
        let all = matching(b.orders.iter().rev().filter(|o| !o.is_open()), pairs);
        let count = all.len();
        let page: Map<String, Value> = all
            .into_iter()
            .skip(offset)
            .take(50)
            .map(|o| (o.id.clone(), order_json(ex, o, with_trades)))
            .collect();
        (page, count)
    });
    ok(json!({"closed": closed, "count": count}))
}

fn cancel_order(account: &Account, pairs: &[(String, String)]) -> Response {
    let target = param(pairs, "txid").or_else(|| param(pairs, "cl_ord_id"));
    let Some(target) = target else {
        return err("EGeneral:Invalid arguments");
    };
    let count = account.with_book(|b| {
        let ids: Vec<String> = match b.order(target) {
            Some(o) => vec![o.id.clone()],
            None => b
                .by_client_id(target)
                .iter()
                .filter(|o| o.is_open())
                .map(|o| o.id.clone())
                .collect(),
        };
        if ids.is_empty() {
            return None;
        }
        Some(ids.iter().filter(|id| b.cancel(id)).count())
    });
    match count {
        Some(count) => ok(json!({"count": count})),
        None => err("EOrder:Unknown order"),
    }
}

fn trade_json(ex: &Exchange, order: &Order) -> Value {
    let key = ex
        .market
        .instrument(&order.symbol)
        .map(|i| kraken_pair(i).key)
        .unwrap_or_default();
    json!({
        "ordertxid": order.id,
        "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": key,
        "time": timestamp(order.filled_at.unwrap_or(order.created_at)),
        "type": order.side.as_str(),
        "ordertype": if matches!(order.kind, OrderKind::Market) { "market" } else { "limit" },
        "price": fixed(order.avg_price.unwrap_or_default(), 5),
        "cost": fixed(order.filled_value(), 5),
        "fee": fixed(order.fee, 5),
        "vol": fixed(order.filled_qty, 8),
        "margin": "0.00000",
        "misc": "",
        "maker": false,
    })
}

fn query_trades(ex: &Exchange, account: &Account, pairs: &[(String, String)]) -> Response {
    let ids = list(param(pairs, "txid"));
    let trades: BTreeMap<String, Value> = account.with_book(|b| {
        b.orders
            .iter()
            .filter_map(|o| trade_id(o).map(|t| (t, o)))
            .filter(|(t, _)| ids.contains(t))
            .map(|(t, o)| (t, trade_json(ex, o)))
            .collect()
    });
    if trades.is_empty() {
        return err("EGeneral:Invalid arguments:txid");
    }
    ok(json!(trades))
}

fn trades_history(ex: &Exchange, account: &Account) -> Response {
    let trades: BTreeMap<String, Value> = account.with_book(|b| {
        b.orders
            .iter()
            .filter_map(|o| trade_id(o).map(|t| (t, trade_json(ex, o))))
            .collect()
    });
    let count = trades.len();
    ok(json!({"trades": trades, "count": count}))
}

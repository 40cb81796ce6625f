//! Alpaca Trading API v2 (`/v2/...`) and market data (`/v2/stocks/...`, `/v1beta3/crypto/us/...`)
//! on one port: key-id/secret headers, `BTC/USD` in orders and data but `BTCUSD` in positions,
//! a market clock that queues equity orders while closed.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::broker::Broker;
use crate::credentials::Verifier;
use crate::exchange::account::Account;
use crate::exchange::order::ClientIdRule;
use crate::exchange::order::{
    Order, OrderKind, OrderRequest, OrderSource, OrderStatus, Reject, Side,
};
use crate::exchange::{Exchange, new_order_id};
use crate::faults::Injected;
use crate::front::{dec, gate, json_decimal, number, query_all, query_one, query_pairs, rfc3339};
use crate::market::instruments::{AssetClass, Instrument, alpaca_position_symbol, alpaca_symbol};

pub const MARKERS: &[&str] = &["/v2/", "/v1beta3/"];

type Ex = Arc<Exchange>;

pub fn router(exchange: Ex) -> Router {
    Router::new()
        .route("/v2/account", get(account))
        .route("/v2/clock", get(clock))
        .route("/v2/positions", get(positions))
        .route(
            "/v2/positions/{symbol}",
            get(position).delete(close_position),
        )
        .route("/v2/assets", get(assets))
        .route("/v2/assets/{*symbol}", get(asset))
        .route(
            "/v2/orders",
            get(list_orders).post(create_order).delete(cancel_all),
        )
        .route("/v2/orders:by_client_order_id", get(by_client_order_id))
        .route("/v2/orders/{id}", get(get_order).delete(cancel_order))
        .route("/v2/account/activities/{kind}", get(activities))
        .route("/v2/stocks/quotes/latest", get(stock_quotes))
        .route("/v2/stocks/{symbol}/quotes/latest", get(stock_quote))
        .route("/v1beta3/crypto/us/latest/quotes", get(crypto_quotes))
        .with_state(exchange)
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

fn injected(fault: Injected) -> Response {
    match fault {
        Injected::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50010000,
            "internal server error",
        ),
        Injected::RateLimited { retry_after_s } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                42910000,
                "rate limit exceeded",
            );
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            response
        }
    }
}

/// An authenticated request (faults and latency applied).
struct Authed(Arc<Account>);

impl FromRequestParts<Ex> for Authed {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, ex: &Ex) -> Result<Self, Response> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let unauthorized = || {
            error(
                StatusCode::UNAUTHORIZED,
                40110000,
                "request is not authorized",
            )
        };
        let account = header("APCA-API-KEY-ID")
            .and_then(|key| ex.by_key(Broker::Alpaca, key))
            .ok_or_else(unauthorized)?;
        let secret_ok = matches!(&account.verifier, Verifier::Alpaca(secret) if Some(secret.as_str()) == header("APCA-API-SECRET-KEY"));
        if !secret_ok || account.revoked() {
            return Err(unauthorized());
        }
        if let Some(fault) = gate(ex, Broker::Alpaca, Some(account.id())).await {
            return Err(injected(fault));
        }
        Ok(Authed(Arc::clone(account)))
    }
}

fn asset_id(symbol: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("alpaca-asset/{symbol}").as_bytes(),
    )
    .to_string()
}

fn class_name(instrument: &Instrument) -> &'static str {
    match instrument.class {
        AssetClass::Crypto => "crypto",
        AssetClass::UsEquity => "us_equity",
    }
}

fn priced_value(ex: &Exchange, asset: &str, quantity: Decimal) -> Decimal {
    ex.market
        .usd_price(asset)
        .map(|p| p * quantity)
        .unwrap_or_default()
}

async fn account(State(ex): State<Ex>, Authed(account): Authed) -> Response {
    let balances = account.with_book(|b| b.balances(&ex.market));
    let cash = balances
        .iter()
        .find(|b| b.asset == "USD")
        .map(|b| b.total)
        .unwrap_or_default();
    let held_cash = balances
        .iter()
        .find(|b| b.asset == "USD")
        .map(|b| b.held)
        .unwrap_or_default();
    let long: Decimal = balances
        .iter()
        .filter(|b| b.asset != "USD")
        .map(|b| priced_value(&ex, &b.asset, b.total))
        .sum();
    let buying_power = dec(cash - held_cash);
    let equity = dec(cash + long);
    axum::Json(json!({
        "id": account.uuid.to_string(),
        "account_number": format!("PA{}", &account.uuid.simple().to_string()[..10].to_uppercase()),
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "buying_power": buying_power,
        "regt_buying_power": buying_power,
        "daytrading_buying_power": "0",
        "effective_buying_power": buying_power,
        "non_marginable_buying_power": buying_power,
        "options_buying_power": buying_power,
        "bod_dtbp": "0",
        "cash": dec(cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": equity,
        "pattern_day_trader": false,
        "trading_blocked": false,
        "transfers_blocked": false,
        "account_blocked": false,
        "created_at": "2023-02-01T15:04:05.123456Z",
        "trade_suspended_by_user": false,
        "multiplier": "1",
        "shorting_enabled": false,
        "equity": equity,
        "last_equity": equity,
        "long_market_value": dec(long),
        "short_market_value": "0",
        "position_market_value": dec(long),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
        "balance_asof": Utc::now().format("%Y-%m-%d").to_string(),
        "crypto_tier": 1,
        "options_approved_level": 0,
        "options_trading_level": 0,
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
    }))
    .into_response()
}

async fn clock(State(ex): State<Ex>, _: Authed) -> Response {
    let now = Utc::now();
    let open = ex.market.equity_market_open();
    let (next_open, next_close) = if open {
        (now + Duration::days(1), now + Duration::hours(1))
    } else {
        (now + Duration::hours(1), now + Duration::hours(8))
    };
    axum::Json(json!({
        "timestamp": rfc3339(now),
        "is_open": open,
        "next_open": rfc3339(next_open),
        "next_close": rfc3339(next_close),
    }))
    .into_response()
}

fn position_json(
    ex: &Exchange,
    instrument: &Instrument,
    quantity: Decimal,
    available: Decimal,
    entry: Option<Decimal>,
) -> Value {
    let price = ex
        .market
        .quote(&instrument.symbol)
        .map(|q| q.last)
        .unwrap_or_default();
    let entry = entry.unwrap_or(price);
    let market_value = quantity * price;
    let cost_basis = quantity * entry;
    let pl = market_value - cost_basis;
    let plpc = if cost_basis.is_zero() {
        Decimal::ZERO
    } else {
        (pl / cost_basis).round_dp(16)
    };
    let symbol = alpaca_position_symbol(instrument);
    json!({
        "asset_id": asset_id(&symbol),
        "symbol": symbol,
        "exchange": if instrument.class == AssetClass::Crypto { "CRYPTO" } else { "NASDAQ" },
        "asset_class": class_name(instrument),
        "asset_marginable": instrument.class == AssetClass::UsEquity,
        "qty": dec(quantity),
        "qty_available": dec(available),
        "avg_entry_price": dec(entry),
        "side": "long",
        "market_value": dec(market_value),
        "cost_basis": dec(cost_basis),
        "unrealized_pl": dec(pl),
        "unrealized_plpc": dec(plpc),
        "unrealized_intraday_pl": dec(pl),
        "unrealized_intraday_plpc": dec(plpc),
        "current_price": dec(price),
        "lastday_price": dec(price),
        "change_today": "0",
    })
}

fn positions_of(ex: &Exchange, account: &Account) -> Vec<(Instrument, Value)> {
    let balances = account.with_book(|b| b.balances(&ex.market));
    balances
        .iter()
        .filter(|b| b.asset != "USD" && !b.total.is_zero())
        .filter_map(|b| {
            let instrument = ex.market.catalog.by_base(&b.asset)?.clone();
            let json = position_json(ex, &instrument, b.total, b.available, b.avg_entry);
            Some((instrument, json))
        })
        .collect()
}

async fn positions(State(ex): State<Ex>, Authed(account): Authed) -> Response {
    let list: Vec<Value> = positions_of(&ex, &account)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    axum::Json(list).into_response()
}

fn position_not_found() -> Response {
    error(StatusCode::NOT_FOUND, 40410000, "position does not exist")
}

async fn position(
    State(ex): State<Ex>,
    Authed(account): Authed,
    Path(symbol): Path<String>,
) -> Response {
    positions_of(&ex, &account)
        .into_iter()
        .find(|(i, v)| alpaca_position_symbol(i) == symbol || v["asset_id"] == symbol.as_str())
        .map(|(_, v)| axum::Json(v).into_response())
        .unwrap_or_else(position_not_found)
}

async fn close_position(
    State(ex): State<Ex>,
    Authed(account): Authed,
    Path(symbol): Path<String>,
    parts: Parts,
) -> Response {
    let Some((instrument, json)) = positions_of(&ex, &account)
        .into_iter()
        .find(|(i, _)| alpaca_position_symbol(i) == symbol)
    else {
        return position_not_found();
    };
    let available = json["qty_available"]
        .as_str()
        .and_then(|q| q.parse::<Decimal>().ok())
        .unwrap_or_default();
    let pairs = query_pairs(&parts);
    let quantity = match (query_one(&pairs, "qty"), query_one(&pairs, "percentage")) {
        (Some(q), _) => q.parse().unwrap_or_default(),
        (None, Some(p)) => (available * p.parse::<Decimal>().unwrap_or_default()
            / Decimal::ONE_HUNDRED)
            .round_dp(9),
        (None, None) => available,
    };
    let tif = if instrument.class == AssetClass::Crypto {
        "gtc"
    } else {
        "day"
    };
    place(
        &ex,
        &account,
        &instrument,
        Side::Sell,
        OrderKind::Market,
        quantity,
        None,
        tif,
        &parts,
    )
    .await
}

fn asset_json(ex: &Exchange, instrument: &Instrument) -> Value {
    let symbol = alpaca_symbol(instrument);
    let mut value = json!({
        "id": asset_id(&symbol),
        "class": class_name(instrument),
        "exchange": if instrument.class == AssetClass::Crypto { "CRYPTO" } else { "NASDAQ" },
        "symbol": symbol,
        "name": instrument.base,
        "status": "active",
        "tradable": true,
        "marginable": instrument.class == AssetClass::UsEquity,
        "maintenance_margin_requirement": 100,
        "margin_requirement_long": "100",
        "margin_requirement_short": "100",
        "shortable": false,
        "easy_to_borrow": false,
        "fractionable": true,
        "attributes": [],
    });
    if let Some(rules) = ex.market.rules(Broker::Alpaca, &instrument.symbol)
        && instrument.class == AssetClass::Crypto
    {
        {
            value["min_order_size"] = json!(dec(rules.min_qty));
            value["min_trade_increment"] = json!(dec(rules.step));
            value["price_increment"] = json!(dec(rules.price_step));
        }
    }
    value
}

async fn assets(State(ex): State<Ex>, _: Authed, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let class = query_one(&pairs, "asset_class");
    let list: Vec<Value> = ex
        .market
        .catalog
        .all()
        .filter(|i| class.is_none_or(|c| c == class_name(i)))
        .map(|i| asset_json(&ex, i))
        .collect();
    axum::Json(list).into_response()
}

async fn asset(State(ex): State<Ex>, _: Authed, Path(symbol): Path<String>) -> Response {
    let found = ex.market.catalog.from_alpaca(&symbol).or_else(|| {
        ex.market
            .catalog
            .all()
            .find(|i| asset_id(&alpaca_symbol(i)) == symbol)
    });
    match found {
        Some(i) => axum::Json(asset_json(&ex, i)).into_response(),
        None => error(StatusCode::NOT_FOUND, 40410000, "asset not found"),
    }
}

fn order_json(ex: &Exchange, order: &Order) -> Value {
    let instrument = ex.market.instrument(&order.symbol).cloned();
    let symbol = instrument
        .as_ref()
        .map(alpaca_symbol)
        .unwrap_or_else(|| order.symbol.clone());
    let class = instrument.as_ref().map(class_name).unwrap_or("crypto");
    let status = match order.status {
        OrderStatus::Open if matches!(order.kind, OrderKind::Market) => "accepted",
        OrderStatus::Open => "new",
        OrderStatus::Filled => "filled",
        OrderStatus::Canceled => "canceled",
    };
    let (kind, limit) = match order.kind {
        OrderKind::Market => ("market", Value::Null),
        OrderKind::Limit(p) => ("limit", json!(dec(p))),
    };
    let expires =
        (order.time_in_force == "day").then(|| rfc3339(order.created_at + Duration::hours(8)));
    json!({
        "id": order.id,
        "client_order_id": order.client_order_id.clone().unwrap_or_default(),
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "submitted_at": rfc3339(order.created_at),
        "filled_at": order.filled_at.map(rfc3339),
        "expired_at": null,
        "canceled_at": order.canceled_at.map(rfc3339),
        "failed_at": null,
        "replaced_at": null,
        "replaced_by": null,
        "replaces": null,
        "asset_id": asset_id(&symbol),
        "symbol": symbol,
        "asset_class": class,
        "notional": null,
        "qty": dec(order.quantity),
        "filled_qty": dec(order.filled_qty),
        "filled_avg_price": order.avg_price.map(dec),
        "order_class": "",
        "order_type": kind,
        "type": kind,
        "side": order.side.as_str(),
        "position_intent": if order.side == Side::Sell { "sell_to_close" } else { "buy_to_open" },
        "time_in_force": order.time_in_force,
        "limit_price": limit,
        "stop_price": null,
        "status": status,
        "extended_hours": false,
        "legs": null,
        "trail_percent": null,
        "trail_price": null,
        "hwm": null,
        "subtag": null,
        "source": null,
        "expires_at": expires,
    })
}

#[allow(clippy::too_many_arguments)]
async fn place(
    ex: &Exchange,
    account: &Arc<Account>,
    instrument: &Instrument,
    side: Side,
    kind: OrderKind,
    quantity: Decimal,
    client_order_id: Option<String>,
    time_in_force: &str,
    parts: &Parts,
) -> Response {
    let request = OrderRequest {
        symbol: instrument.symbol.clone(),
        side,
        kind,
        quantity,
        client_order_id: Some(client_order_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
        time_in_force: time_in_force.to_string(),
        source: OrderSource::Api,
    };
    let order = match ex.place(
        account,
        new_order_id(Broker::Alpaca),
        request,
        ClientIdRule::UniqueAlways,
    ) {
        Ok(placed) => placed.order().clone(),
        Err(reject) => return rejected(account, instrument, side, reject),
    };
    if let Some(mode) = ex.faults.lost_response(Broker::Alpaca, account.id()) {
        return crate::coinbase::lose_response(parts, mode).await;
    }
    axum::Json(order_json(ex, &order)).into_response()
}

fn rejected(account: &Account, instrument: &Instrument, side: Side, reject: Reject) -> Response {
    match reject {
        Reject::DuplicateClientId => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            40010001,
            "client_order_id must be unique",
        ),
        Reject::InsufficientFunds { .. } if side == Side::Buy => {
            error(StatusCode::FORBIDDEN, 40310000, "insufficient buying power")
        }
        Reject::InsufficientFunds {
            requested,
            available,
            held,
            total,
        } => {
            let related: Vec<String> = account.with_book(|b| {
                b.orders
                    .iter()
                    .filter(|o| o.is_open() && o.symbol == instrument.symbol)
                    .map(|o| o.id.clone())
                    .collect()
            });
            (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "available": dec(available),
                    "code": 40310000,
                    "existing_qty": dec(total),
                    "held_for_orders": dec(held),
                    "message": format!(
                        "insufficient qty available for order (requested: {}, available: {})",
                        dec(requested),
                        dec(available)
                    ),
                    "related_orders": related,
                    "symbol": alpaca_symbol(instrument),
                })),
            )
                .into_response()
        }
        Reject::BelowMinNotional { min, .. } => error(
            StatusCode::FORBIDDEN,
            40310000,
            &format!("cost basis must be >= minimal amount of order {}", dec(min)),
        ),
        Reject::BelowMinQty { min, .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            &format!("qty must be >= {}", dec(min)),
        ),
        Reject::Precision { step, .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            &format!("qty must be in increments of {}", dec(step)),
        ),
        Reject::NonPositive => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "qty must be > 0",
        ),
        Reject::UnknownSymbol(s) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            &format!("asset {s:?} not found"),
        ),
        Reject::NoPrice(_) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "no market data for asset",
        ),
    }
}

async fn create_order(
    State(ex): State<Ex>,
    Authed(account): Authed,
    parts: Parts,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            40010000,
            "request body format is invalid",
        );
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let Some(instrument) = text("symbol")
        .and_then(|s| ex.market.catalog.from_alpaca(s))
        .cloned()
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            &format!("asset {:?} not found", text("symbol").unwrap_or_default()),
        );
    };
    let client_order_id = text("client_order_id")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if client_order_id.as_ref().is_some_and(|id| id.len() > 128) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "client_order_id must be at most 128 characters",
        );
    }
    let side = match text("side") {
        Some("sell") => Side::Sell,
        Some("buy") => Side::Buy,
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, "invalid side"),
    };
    let qty = body.get("qty").filter(|v| !v.is_null()).map(json_decimal);
    let notional = body
        .get("notional")
        .filter(|v| !v.is_null())
        .map(json_decimal);
    let quantity = match (qty, notional) {
        (Some(_), Some(_)) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42210000,
                "qty and notional are mutually exclusive",
            );
        }
        (Some(Some(q)), None) => q,
        (None, Some(Some(n))) => {
            let Some(q) = ex.market.quote(&instrument.symbol) else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42210000,
                    "no market data for asset",
                );
            };
            let price = if side == Side::Buy { q.ask } else { q.bid };
            (n / price).round_dp_with_strategy(9, rust_decimal::RoundingStrategy::ToZero)
        }
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42210000,
                "qty or notional is required",
            );
        }
    };
    let tif = text("time_in_force").unwrap_or("day");
    if instrument.class == AssetClass::Crypto && !matches!(tif, "gtc" | "ioc") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "invalid crypto time_in_force",
        );
    }
    let kind = match text("type") {
        Some("market") => OrderKind::Market,
        Some("limit") => match body.get("limit_price").and_then(json_decimal) {
            Some(p) => OrderKind::Limit(p),
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42210000,
                    "limit_price is required",
                );
            }
        },
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42210000,
                "invalid order type",
            );
        }
    };
    place(
        &ex,
        &account,
        &instrument,
        side,
        kind,
        quantity,
        client_order_id,
        tif,
        &parts,
    )
    .await
}

fn order_not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        40410000,
        &format!("order not found for {id}"),
    )
}

async fn get_order(
    State(ex): State<Ex>,
    Authed(account): Authed,
    Path(id): Path<String>,
) -> Response {
    match account.with_book(|b| b.order(&id).cloned()) {
        Some(order) => axum::Json(order_json(&ex, &order)).into_response(),
        None => order_not_found(&id),
    }
}

async fn by_client_order_id(
    State(ex): State<Ex>,
    Authed(account): Authed,
    parts: Parts,
) -> Response {
    let pairs = query_pairs(&parts);
    let id = query_one(&pairs, "client_order_id")
        .unwrap_or_default()
        .to_string();
    match account.with_book(|b| b.by_client_id(&id).last().map(|o| (*o).clone())) {
        Some(order) => axum::Json(order_json(&ex, &order)).into_response(),
        None => order_not_found(&id),
    }
}

async fn list_orders(State(ex): State<Ex>, Authed(account): Authed, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let status = query_one(&pairs, "status").unwrap_or("open");
    let limit = query_one(&pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 500);
    let ascending = query_one(&pairs, "direction") == Some("asc");
    let symbols = query_all(&pairs, "symbols");
    let mut orders: Vec<Order> = account.with_book(|b| {
        b.orders
            .iter()
            .filter(|o| match status {
                "open" => o.is_open(),
                "closed" => !o.is_open(),
                _ => true,
            })
            .filter(|o| {
                symbols.is_empty()
                    || ex.market.instrument(&o.symbol).is_some_and(|i| {
                        symbols.contains(&alpaca_symbol(i))
                            || symbols.contains(&alpaca_position_symbol(i))
                    })
            })
            .cloned()
            .collect()
    });
    if !ascending {
        orders.reverse();
    }
    let list: Vec<Value> = orders
        .iter()
        .take(limit)
        .map(|o| order_json(&ex, o))
        .collect();
    axum::Json(list).into_response()
}

async fn cancel_order(Authed(account): Authed, Path(id): Path<String>) -> Response {
    account.with_book(|b| match b.order(&id).map(Order::is_open) {
        None => order_not_found(&id),
        Some(false) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "order is not cancelable",
        ),
        Some(true) => {
            b.cancel(&id);
            StatusCode::NO_CONTENT.into_response()
        }
    })
}

async fn cancel_all(State(ex): State<Ex>, Authed(account): Authed) -> Response {
    let canceled: Vec<Value> = account.with_book(|b| {
        let open: Vec<String> = b
            .orders
            .iter()
            .filter(|o| o.is_open())
            .map(|o| o.id.clone())
            .collect();
        let canceled: Vec<&String> = open.iter().filter(|id| b.cancel(id)).collect();
        canceled
            .into_iter()
            .filter_map(|id| {
                b.order(id)
                    .map(|o| json!({"id": id, "status": 200, "body": order_json(&ex, o)}))
            })
            .collect()
    });
    (StatusCode::MULTI_STATUS, axum::Json(canceled)).into_response()
}

async fn activities(
    State(ex): State<Ex>,
    Authed(account): Authed,
    Path(kind): Path<String>,
    parts: Parts,
) -> Response {
    if kind != "FILL" {
        return axum::Json(json!([])).into_response();
    }
    let pairs = query_pairs(&parts);
    let ascending = query_one(&pairs, "direction") == Some("asc");
    let page_size = query_one(&pairs, "page_size")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let token = query_one(&pairs, "page_token");
    let mut fills: Vec<Value> = account.with_book(|b| {
        b.orders
            .iter()
            .filter(|o| !o.filled_qty.is_zero())
            .filter_map(|o| {
                let complete = o.status == OrderStatus::Filled;
                let instrument = ex.market.instrument(&o.symbol)?;
                let time = o.filled_at?;
                Some(json!({
                    "id": format!("{}::{}", time.format("%Y%m%d%H%M%S%3f"), o.id),
                    "activity_type": "FILL",
                    "transaction_time": rfc3339(time),
                    "type": if complete { "fill" } else { "partial_fill" },
                    "price": dec(o.avg_price.unwrap_or_default()),
                    "qty": dec(o.filled_qty),
                    "side": o.side.as_str(),
                    "symbol": alpaca_symbol(instrument),
                    "leaves_qty": dec(o.quantity - o.filled_qty),
                    "order_id": o.id,
                    "cum_qty": dec(o.filled_qty),
                    "order_status": if complete { "filled" } else { "canceled" },
                }))
            })
            .collect()
    });
    if !ascending {
        fills.reverse();
    }
    let start = token
        .and_then(|t| fills.iter().position(|f| f["id"] == t))
        .map(|i| i + 1)
        .unwrap_or(0);
    let page: Vec<Value> = fills.into_iter().skip(start).take(page_size).collect();
    axum::Json(page).into_response()
}

fn quote_fields(ex: &Exchange, instrument: &Instrument) -> Option<Value> {
    if ex.faults.price_fails(Broker::Alpaca, &instrument.symbol) {
        return None;
    }
    let q = ex.market.quote(&instrument.symbol)?;
    Some(match instrument.class {
        AssetClass::Crypto => {
            json!({"ap": number(q.ask), "as": 1, "bp": number(q.bid), "bs": 1, "t": rfc3339(q.time)})
        }
        AssetClass::UsEquity => json!({
            "ap": number(q.ask), "as": 100, "ax": "V", "bp": number(q.bid), "bs": 100, "bx": "V",
            "c": ["R"], "t": rfc3339(q.time), "z": "C"
        }),
    })
}

async fn stock_quotes(State(ex): State<Ex>, _: Authed, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let mut quotes = serde_json::Map::new();
    for symbol in query_all(&pairs, "symbols") {
        let found = ex
            .market
            .catalog
            .from_alpaca(&symbol)
            .filter(|i| i.class == AssetClass::UsEquity);
        if let Some(q) = found.and_then(|i| quote_fields(&ex, i)) {
            quotes.insert(symbol, q);
        }
    }
    axum::Json(json!({"quotes": quotes})).into_response()
}

async fn stock_quote(State(ex): State<Ex>, _: Authed, Path(symbol): Path<String>) -> Response {
    let found = ex
        .market
        .catalog
        .from_alpaca(&symbol)
        .filter(|i| i.class == AssetClass::UsEquity);
    match found.and_then(|i| quote_fields(&ex, i)) {
        Some(q) => axum::Json(json!({"symbol": symbol, "quote": q})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            40410000,
            &format!("no quote found for {symbol}"),
        ),
    }
}

async fn crypto_quotes(State(ex): State<Ex>, _: Authed, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let mut quotes = serde_json::Map::new();
    for symbol in query_all(&pairs, "symbols") {
        if !symbol.contains('/') {
            return error(
                StatusCode::BAD_REQUEST,
                40010001,
                &format!("invalid symbol: {symbol} does not match ^[A-Z]+/[A-Z]+$"),
            );
        }
        let found = ex
            .market
            .catalog
            .from_alpaca(&symbol)
            .filter(|i| i.class == AssetClass::Crypto);
        if let Some(q) = found.and_then(|i| quote_fields(&ex, i)) {
            quotes.insert(symbol, q);
        }
    }
    axum::Json(json!({"quotes": quotes})).into_response()
}

//! Coinbase Advanced Trade (`/api/v3/brokerage/...`): accounts, products, best bid/ask, orders,
//! fills, cancels and server time, in the shapes of the real API.

pub mod auth;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::broker::Broker;
use crate::exchange::account::Account;
use crate::exchange::order::{ClientIdRule, Placed};
use crate::exchange::order::{
    Order, OrderKind, OrderRequest, OrderSource, OrderStatus, Reject, Side,
};
use crate::exchange::{Exchange, new_order_id};
use crate::faults::{Injected, LostResponse};
use crate::front::{dec, gate, query_all, query_one, query_pairs, rfc3339};
use crate::market::instruments::Instrument;
use crate::net::listener::ConnectionKill;

/// Path markers used to strip a base-URL prefix.
pub const MARKERS: &[&str] = &["/api/v3/brokerage"];

type Ex = Arc<Exchange>;

pub fn router(exchange: Ex) -> Router {
    let api = Router::new()
        .route("/time", get(time))
        .route("/accounts", get(list_accounts))
        .route("/accounts/{uuid}", get(get_account))
        .route("/portfolios", get(list_portfolios))
        .route("/portfolios/{uuid}", get(get_portfolio))
        .route("/best_bid_ask", get(best_bid_ask))
        .route("/products", get(list_products))
        .route("/products/{id}", get(get_product))
        .route("/market/products", get(public_list_products))
        .route("/market/products/{id}", get(public_get_product))
        .route("/orders", post(create_order))
        .route("/orders/preview", post(preview_order))
        .route("/orders/historical/batch", get(list_orders))
        .route("/orders/historical/fills", get(list_fills))
        .route("/orders/historical/{id}", get(get_order))
        .route("/orders/batch_cancel", post(cancel_orders));
    Router::new()
        .nest("/api/v3/brokerage", api)
        .with_state(exchange)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_details": message, "message": message})),
    )
        .into_response()
}

fn injected(fault: Injected) -> Response {
    match fault {
        Injected::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "simulated server error",
        ),
        Injected::RateLimited { retry_after_s } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Too many requests",
            );
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            response
        }
    }
}

/// An authenticated private request (faults and latency applied).
struct Private(Arc<Account>);

impl FromRequestParts<Ex> for Private {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, exchange: &Ex) -> Result<Self, Response> {
        let account = auth::authenticate(exchange, parts).map_err(|error| {
            tracing::debug!(%error, "coinbase auth rejected");
            (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
        })?;
        if let Some(fault) = gate(exchange, Broker::Coinbase, Some(account.id())).await {
            return Err(injected(fault));
        }
        Ok(Private(account))
    }
}

/// A public request (faults and latency applied).
struct Public;

impl FromRequestParts<Ex> for Public {
    type Rejection = Response;
    async fn from_request_parts(_: &mut Parts, exchange: &Ex) -> Result<Self, Response> {
        match gate(exchange, Broker::Coinbase, None).await {
            Some(fault) => Err(injected(fault)),
            None => Ok(Public),
        }
    }
}

async fn time(_: Public) -> Response {
    let now = Utc::now();
    axum::Json(json!({
        "iso": rfc3339(now),
        "epochSeconds": now.timestamp().to_string(),
        "epochMillis": now.timestamp_millis().to_string(),
    }))
    .into_response()
}

fn money(value: Decimal, currency: &str) -> Value {
    json!({"value": dec(value), "currency": currency})
}

fn wallet(account: &Account, balance: &crate::exchange::account::Balance) -> Value {
    let fiat = balance.asset == "USD" || balance.asset == "EUR";
    let name = if fiat {
        format!("Cash ({})", balance.asset)
    } else {
        format!("{} Wallet", balance.asset)
    };
    json!({
        "uuid": account.wallet_uuid(&balance.asset).to_string(),
        "name": name,
        "currency": balance.asset,
        "available_balance": money(balance.available, &balance.asset),
        "default": true,
        "active": true,
        "created_at": "2023-03-01T10:11:12.345Z",
        "updated_at": rfc3339(Utc::now()),
        "deleted_at": null,
        "type": if fiat { "ACCOUNT_TYPE_FIAT" } else { "ACCOUNT_TYPE_CRYPTO" },
        "ready": true,
        "hold": money(balance.held, &balance.asset),
        "retail_portfolio_id": account.uuid.to_string(),
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    })
}

async fn list_accounts(State(ex): State<Ex>, Private(account): Private, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let limit = query_one(&pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(49)
        .clamp(1, 250);
    let cursor = query_one(&pairs, "cursor").filter(|c| !c.is_empty());
    let balances = account.with_book(|b| b.balances(&ex.market));
    let start = match cursor {
        Some(c) => match balances
            .iter()
            .position(|b| account.wallet_uuid(&b.asset).to_string() == c)
        {
            Some(i) => i + 1,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "invalid cursor",
                );
            }
        },
        None => 0,
    };
    let page: Vec<Value> = balances
        .iter()
        .skip(start)
        .take(limit)
        .map(|b| wallet(&account, b))
        .collect();
    let has_next = start + page.len() < balances.len();
    let next = if has_next {
        page.last()
            .and_then(|w| w["uuid"].as_str())
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    axum::Json(json!({"accounts": page, "has_next": has_next, "cursor": next, "size": page.len()}))
        .into_response()
}

async fn get_account(
    State(ex): State<Ex>,
    Private(account): Private,
    Path(uuid): Path<String>,
) -> Response {
    let balances = account.with_book(|b| b.balances(&ex.market));
    match balances
        .iter()
        .find(|b| account.wallet_uuid(&b.asset).to_string() == uuid)
    {
        Some(b) => axum::Json(json!({"account": wallet(&account, b)})).into_response(),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "account not found"),
    }
}

async fn list_portfolios(Private(account): Private) -> Response {
    axum::Json(json!({"portfolios": [{
        "name": "Default", "uuid": account.uuid.to_string(), "type": "DEFAULT", "deleted": false
    }]}))
    .into_response()
}

async fn get_portfolio(
    State(ex): State<Ex>,
    Private(account): Private,
    Path(uuid): Path<String>,
) -> Response {
    if uuid != account.uuid.to_string() {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "portfolio not found");
    }
    let balances = account.with_book(|b| b.balances(&ex.market));
    let valued: Vec<(&crate::exchange::account::Balance, Decimal, Decimal)> = balances
        .iter()
        .map(|b| {
            let price = ex.market.usd_price(&b.asset).unwrap_or_default();
            (b, b.total * price, b.available * price)
        })
        .collect();
    let total: Decimal = valued.iter().map(|(_, v, _)| *v).sum();
    let cash: Decimal = valued
        .iter()
        .filter(|(b, _, _)| b.asset == "USD")
        .map(|(_, v, _)| *v)
        .sum();
    let usd = |v: Decimal| money(v.round_dp(2), "USD");
    let positions: Vec<Value> = valued
        .iter()
        .map(|(b, value, available)| {
            let allocation = if total.is_zero() {
                Decimal::ZERO
            } else {
                (*value / total).round_dp(4)
            };
            let cost = b.avg_entry.map(|e| e * b.total).unwrap_or(*value);
            json!({
                "asset": b.asset,
                "account_uuid": account.wallet_uuid(&b.asset).to_string(),
                "total_balance_fiat": crate::front::number(value.round_dp(2)),
                "total_balance_crypto": crate::front::number(b.total),
                "available_to_trade_fiat": crate::front::number(available.round_dp(2)),
                "allocation": crate::front::number(allocation),
                "one_day_change": 0,
                "cost_basis": usd(cost),
                "asset_img_url": "",
                "is_cash": b.asset == "USD",
            })
        })
        .collect();
    axum::Json(json!({"breakdown": {
        "portfolio": {"name": "Default", "uuid": account.uuid.to_string(), "type": "DEFAULT", "deleted": false},
        "portfolio_balances": {
            "total_balance": usd(total),
            "total_futures_balance": usd(Decimal::ZERO),
            "total_cash_equivalent_balance": usd(cash),
            "total_crypto_balance": usd(total - cash),
            "futures_unrealized_pnl": usd(Decimal::ZERO),
            "perp_unrealized_pnl": usd(Decimal::ZERO),
        },
        "spot_positions": positions,
        "perp_positions": [],
        "futures_positions": [],
    }}))
    .into_response()
}

fn priced(ex: &Exchange, symbol: &str) -> Option<(Instrument, crate::market::prices::Quote)> {
    let instrument = ex.market.instrument(symbol)?.clone();
    if !instrument.listed_at(Broker::Coinbase) || ex.faults.price_fails(Broker::Coinbase, symbol) {
        return None;
    }
    let quote = ex.market.quote(symbol)?;
    Some((instrument, quote))
}

async fn best_bid_ask(State(ex): State<Ex>, _: Private, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let mut ids = query_all(&pairs, "product_ids");
    if ids.is_empty() {
        ids = ex
            .market
            .catalog
            .all()
            .filter(|i| i.listed_at(Broker::Coinbase))
            .map(|i| i.symbol.clone())
            .collect();
    }
    let books: Vec<Value> = ids
        .iter()
        .filter_map(|id| priced(&ex, id))
        .map(|(i, q)| {
            json!({
                "product_id": i.symbol,
                "bids": [{"price": dec(q.bid), "size": "1000"}],
                "asks": [{"price": dec(q.ask), "size": "1000"}],
                "time": rfc3339(q.time),
            })
        })
        .collect();
    axum::Json(json!({"pricebooks": books})).into_response()
}

fn product(ex: &Exchange, instrument: &Instrument, quote: &crate::market::prices::Quote) -> Value {
    let rules = ex
        .market
        .rules(Broker::Coinbase, &instrument.symbol)
        .cloned();
    let (step, min_qty, min_notional, price_step) = rules
        .map(|r| (r.step, r.min_qty, r.min_notional, r.price_step))
        .unwrap_or((
            Decimal::new(1, 8),
            Decimal::new(1, 8),
            Decimal::ONE,
            Decimal::new(1, 2),
        ));
    json!({
        "product_id": instrument.symbol,
        "price": dec(quote.last),
        "price_percentage_change_24h": "0",
        "volume_24h": "0",
        "volume_percentage_change_24h": "0",
        "base_increment": dec(step),
        "quote_increment": dec(price_step),
        "quote_min_size": dec(min_notional),
        "quote_max_size": "150000000",
        "base_min_size": dec(min_qty),
        "base_max_size": "100000000",
        "base_name": instrument.base,
        "quote_name": "US Dollar",
        "watched": false,
        "is_disabled": false,
        "new": false,
        "status": "online",
        "cancel_only": false,
        "limit_only": false,
        "post_only": false,
        "trading_disabled": false,
        "auction_mode": false,
        "product_type": "SPOT",
        "quote_currency_id": instrument.quote,
        "base_currency_id": instrument.base,
        "fcm_trading_session_details": null,
        "mid_market_price": "",
        "alias": "",
        "alias_to": [],
        "base_display_symbol": instrument.base,
        "quote_display_symbol": instrument.quote,
        "view_only": false,
        "price_increment": dec(price_step),
        "display_name": instrument.symbol,
        "product_venue": "CBE",
    })
}

fn products_response(ex: &Exchange, parts: &Parts) -> Response {
    let pairs = query_pairs(parts);
    let wanted = query_all(&pairs, "product_ids");
    let products: Vec<Value> = ex
        .market
        .catalog
        .all()
        .filter(|i| wanted.is_empty() || wanted.contains(&i.symbol))
        .filter_map(|i| priced(ex, &i.symbol))
        .map(|(i, q)| product(ex, &i, &q))
        .collect();
    axum::Json(json!({"products": products, "num_products": products.len()})).into_response()
}

fn product_response(ex: &Exchange, id: &str) -> Response {
    match priced(ex, id) {
        Some((i, q)) => axum::Json(product(ex, &i, &q)).into_response(),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "ProductID not found"),
    }
}

async fn list_products(State(ex): State<Ex>, _: Private, parts: Parts) -> Response {
    products_response(&ex, &parts)
}

async fn get_product(State(ex): State<Ex>, _: Private, Path(id): Path<String>) -> Response {
    product_response(&ex, &id)
}

async fn public_list_products(State(ex): State<Ex>, _: Public, parts: Parts) -> Response {
    products_response(&ex, &parts)
}

async fn public_get_product(State(ex): State<Ex>, _: Public, Path(id): Path<String>) -> Response {
    product_response(&ex, &id)
}

fn order_json(account: &Account, order: &Order) -> Value {
    let configuration = match order.kind {
        OrderKind::Market => json!({"market_market_ioc": {"base_size": dec(order.quantity)}}),
        OrderKind::Limit(price) => json!({"limit_limit_gtc": {
            "base_size": dec(order.quantity), "limit_price": dec(price), "post_only": false
        }}),
    };
    let status = match order.status {
        OrderStatus::Open => "OPEN",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELLED",
    };
    let value = order.filled_value();
    let filled = !order.filled_qty.is_zero();
    let completion = if order.quantity.is_zero() {
        Decimal::ZERO
    } else {
        order.filled_qty / order.quantity * Decimal::ONE_HUNDRED
    };
    let after_fees = match order.side {
        Side::Sell => value - order.fee,
        Side::Buy => value + order.fee,
    };
    json!({
        "order_id": order.id,
        "product_id": order.symbol,
        "user_id": account.uuid.to_string(),
        "order_configuration": configuration,
        "side": if order.side == Side::Sell { "SELL" } else { "BUY" },
        "client_order_id": order.client_order_id.clone().unwrap_or_default(),
        "status": status,
        "time_in_force": order.time_in_force,
        "created_time": rfc3339(order.created_at),
        "completion_percentage": dec(completion.round_dp(2)),
        "filled_size": dec(order.filled_qty),
        "average_filled_price": dec(order.avg_price.unwrap_or_default()),
        "fee": "",
        "number_of_fills": if filled { "1" } else { "0" },
        "filled_value": dec(value),
        "pending_cancel": false,
        "size_in_quote": false,
        "total_fees": dec(order.fee),
        "size_inclusive_of_fees": false,
        "total_value_after_fees": dec(after_fees),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": if matches!(order.kind, OrderKind::Market) { "MARKET" } else { "LIMIT" },
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": filled,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": if order.status == OrderStatus::Canceled { "User requested cancel" } else { "" },
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": if order.is_open() { dec(order.quantity - order.filled_qty) } else { "0".to_string() },
        "is_liquidation": false,
        "last_fill_time": order.filled_at.map(rfc3339),
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": account.uuid.to_string(),
        "originating_order_id": "",
        "attached_order_id": "",
        "attached_order_configuration": null,
    })
}

fn rejected(code: &str, message: &str, preview: &str, configuration: &Value) -> Response {
    axum::Json(json!({
        "success": false,
        "error_response": {
            "error": code,
            "message": message,
            "error_details": "",
            "preview_failure_reason": preview,
            "new_order_failure_reason": code,
        },
        "order_configuration": configuration,
    }))
    .into_response()
}

fn accepted(order: &Order, configuration: &Value) -> Response {
    axum::Json(json!({
        "success": true,
        "success_response": {
            "order_id": order.id,
            "product_id": order.symbol,
            "side": if order.side == Side::Sell { "SELL" } else { "BUY" },
            "client_order_id": order.client_order_id.clone().unwrap_or_default(),
            "attached_order_id": "",
        },
        "order_configuration": configuration,
    }))
    .into_response()
}

/// Why Coinbase refuses an order, in its own codes (answered in-band, HTTP 200).
struct Refusal {
    code: &'static str,
    message: &'static str,
    preview: &'static str,
}

const fn refusal(code: &'static str, message: &'static str, preview: &'static str) -> Refusal {
    Refusal {
        code,
        message,
        preview,
    }
}

fn refusal_of(reject: &Reject) -> Refusal {
    match reject {
        Reject::InsufficientFunds { .. } => refusal(
            "INSUFFICIENT_FUND",
            "Insufficient balance in source account",
            "PREVIEW_INSUFFICIENT_FUND",
        ),
        Reject::Precision { .. } => refusal(
            "INVALID_SIZE_PRECISION",
            "Invalid size precision",
            "PREVIEW_INVALID_SIZE_PRECISION",
        ),
        Reject::BelowMinQty { .. } | Reject::NonPositive => refusal(
            "UNKNOWN_FAILURE_REASON",
            "",
            "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
        ),
        Reject::BelowMinNotional { .. } => refusal(
            "UNKNOWN_FAILURE_REASON",
            "",
            "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
        ),
        Reject::DuplicateClientId => refusal(
            "INVALID_REQUEST",
            "duplicate client_order_id",
            "UNKNOWN_PREVIEW_FAILURE_REASON",
        ),
        Reject::UnknownSymbol(_) => refusal(
            "INVALID_PRODUCT_ID",
            "Invalid product_id",
            "UNKNOWN_PREVIEW_FAILURE_REASON",
        ),
        Reject::NoPrice(_) => refusal(
            "INVALID_NO_LIQUIDITY",
            "no liquidity",
            "PREVIEW_MISSING_MARKET_TRADE_DATA",
        ),
    }
}

/// Reads side, product and order configuration into an order request.
fn parse_order(
    ex: &Exchange,
    body: &Value,
    client_order_id: Option<String>,
) -> Result<OrderRequest, Refusal> {
    let configuration = body
        .get("order_configuration")
        .cloned()
        .unwrap_or(Value::Null);
    let side = match body.get("side").and_then(Value::as_str) {
        Some("SELL") => Side::Sell,
        Some("BUY") => Side::Buy,
        _ => {
            return Err(refusal(
                "INVALID_SIDE",
                "Invalid side",
                "UNKNOWN_PREVIEW_FAILURE_REASON",
            ));
        }
    };
    let product_id = body
        .get("product_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(instrument) = ex
        .market
        .instrument(product_id)
        .filter(|i| i.listed_at(Broker::Coinbase))
        .cloned()
    else {
        return Err(refusal(
            "INVALID_PRODUCT_ID",
            "Invalid product_id",
            "UNKNOWN_PREVIEW_FAILURE_REASON",
        ));
    };
    let decimal = |v: &Value, key: &str| v.get(key).and_then(crate::front::json_decimal);
    let (kind, quantity, tif) = if let Some(market) = configuration.get("market_market_ioc") {
        let quantity = match (decimal(market, "base_size"), decimal(market, "quote_size")) {
            (Some(base), _) => base,
            (None, Some(quote_size)) => {
                let Some(q) = ex.market.quote(&instrument.symbol) else {
                    return Err(refusal(
                        "INVALID_NO_LIQUIDITY",
                        "no liquidity",
                        "PREVIEW_MISSING_MARKET_TRADE_DATA",
                    ));
                };
                let step = ex
                    .market
                    .rules(Broker::Coinbase, &instrument.symbol)
                    .map(|r| r.step)
                    .unwrap_or(Decimal::new(1, 8));
                let price = if side == Side::Buy { q.ask } else { q.bid };
                ((quote_size / price) / step).floor() * step
            }
            (None, None) => {
                return Err(refusal(
                    "INVALID_REQUEST",
                    "base_size or quote_size required",
                    "UNKNOWN_PREVIEW_FAILURE_REASON",
                ));
            }
        };
        (OrderKind::Market, quantity, "IMMEDIATE_OR_CANCEL")
    } else if let Some(limit) = configuration.get("limit_limit_gtc") {
        let (Some(base), Some(price)) =
            (decimal(limit, "base_size"), decimal(limit, "limit_price"))
        else {
            return Err(refusal(
                "INVALID_REQUEST",
                "base_size and limit_price required",
                "UNKNOWN_PREVIEW_FAILURE_REASON",
            ));
        };
        (OrderKind::Limit(price), base, "GOOD_UNTIL_CANCELLED")
    } else {
        return Err(refusal(
            "UNSUPPORTED_ORDER_CONFIGURATION",
            "Unsupported order configuration",
            "UNKNOWN_PREVIEW_FAILURE_REASON",
        ));
    };
    Ok(OrderRequest {
        symbol: instrument.symbol,
        side,
        kind,
        quantity,
        client_order_id,
        time_in_force: tif.to_string(),
        source: OrderSource::Api,
    })
}

async fn create_order(
    State(ex): State<Ex>,
    Private(account): Private,
    parts: Parts,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "request body is not JSON",
        );
    };
    let configuration = body
        .get("order_configuration")
        .cloned()
        .unwrap_or(Value::Null);
    let Some(client_order_id) = body
        .get("client_order_id")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "client_order_id is required",
        );
    };
    // A resubmitted client order id returns the order it already created.
    let existing = account.with_book(|b| {
        b.by_client_id(client_order_id)
            .first()
            .map(|o| (*o).clone())
    });
    if let Some(order) = existing {
        return accepted(&order, &configuration);
    }
    let placed = parse_order(&ex, &body, Some(client_order_id.to_string())).and_then(|request| {
        ex.place(
            &account,
            new_order_id(Broker::Coinbase),
            request,
            ClientIdRule::ReturnExisting,
        )
        .map_err(|reject| refusal_of(&reject))
    });
    let order = match placed {
        Ok(Placed::New(order)) => {
            if let Some(mode) = ex.faults.lost_response(Broker::Coinbase, account.id()) {
                return lose_response(&parts, mode).await;
            }
            order
        }
        Ok(Placed::Existing(order)) => order,
        Err(r) => return rejected(r.code, r.message, r.preview, &configuration),
    };
    accepted(&order, &configuration)
}

async fn preview_order(State(ex): State<Ex>, Private(account): Private, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "request body is not JSON",
        );
    };
    let fee_rate = ex.fee_rate(Broker::Coinbase);
    let checked = parse_order(&ex, &body, None).and_then(|request| {
        account
            .with_book(|b| b.check(Broker::Coinbase, &request, &ex.market, fee_rate))
            .map(|checked| (request, checked))
            .map_err(|reject| refusal_of(&reject))
    });
    let preview_id = uuid::Uuid::new_v4().to_string();
    match checked {
        Ok((request, checked)) => {
            let value = request.quantity * checked.price;
            let fee = (value * fee_rate).round_dp(8);
            let total = if request.side == Side::Buy {
                value + fee
            } else {
                value - fee
            };
            axum::Json(json!({
                "order_total": dec(total),
                "commission_total": dec(fee),
                "errs": [],
                "warning": [],
                "quote_size": dec(value),
                "base_size": dec(request.quantity),
                "best_bid": dec(checked.quote.bid),
                "best_ask": dec(checked.quote.ask),
                "is_max": false,
                "order_margin_total": "0",
                "leverage": "",
                "long_leverage": "",
                "short_leverage": "",
                "slippage": "0",
                "preview_id": preview_id,
            }))
            .into_response()
        }
        Err(r) => axum::Json(json!({
            "order_total": "0",
            "commission_total": "0",
            "errs": [r.preview],
            "warning": [],
            "quote_size": "0",
            "base_size": "0",
            "best_bid": "0",
            "best_ask": "0",
            "is_max": false,
            "preview_id": preview_id,
        }))
        .into_response(),
    }
}

/// The order executed; the client never learns it (dropped connection or 504).
pub async fn lose_response(parts: &Parts, mode: LostResponse) -> Response {
    match (mode, parts.extensions.get::<ConnectionKill>()) {
        (LostResponse::Drop, Some(kill)) => {
            kill.kill();
            // The connection task drops this future; the sleep only bounds an HTTP/2 stream.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        _ => (StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout").into_response(),
    }
}

async fn get_order(Private(account): Private, Path(id): Path<String>) -> Response {
    match account.with_book(|b| b.order(&id).cloned()) {
        Some(order) => axum::Json(json!({"order": order_json(&account, &order)})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown",
            "order with this orderID was not found",
        ),
    }
}

async fn list_orders(Private(account): Private, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let statuses = query_all(&pairs, "order_status");
    let products = query_all(&pairs, "product_ids");
    let limit = query_one(&pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let start = query_one(&pairs, "cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let orders: Vec<Order> = account.with_book(|b| {
        b.orders
            .iter()
            .rev()
            .filter(|o| {
                let status = match o.status {
                    OrderStatus::Open => "OPEN",
                    OrderStatus::Filled => "FILLED",
                    OrderStatus::Canceled => "CANCELLED",
                };
                (statuses.is_empty() || statuses.iter().any(|s| s == status))
                    && (products.is_empty() || products.contains(&o.symbol))
            })
            .cloned()
            .collect()
    });
    let page: Vec<Value> = orders
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| order_json(&account, o))
        .collect();
    let has_next = start + page.len() < orders.len();
    let cursor = if has_next {
        (start + page.len()).to_string()
    } else {
        String::new()
    };
    axum::Json(json!({"orders": page, "sequence": "0", "has_next": has_next, "cursor": cursor}))
        .into_response()
}

async fn list_fills(Private(account): Private, parts: Parts) -> Response {
    let pairs = query_pairs(&parts);
    let ids = query_all(&pairs, "order_ids");
    let products = query_all(&pairs, "product_ids");
    let fills: Vec<Value> = account.with_book(|b| {
        b.orders
            .iter()
            .filter(|o| !o.filled_qty.is_zero())
            .filter(|o| ids.is_empty() || ids.contains(&o.id))
            .filter(|o| products.is_empty() || products.contains(&o.symbol))
            .map(|o| {
                let time = o.filled_at.map(rfc3339);
                json!({
                    "entry_id": o.trade_id.clone().unwrap_or_default().replace('-', ""),
                    "trade_id": o.trade_id,
                    "order_id": o.id,
                    "trade_time": time,
                    "trade_type": "FILL",
                    "price": dec(o.avg_price.unwrap_or_default()),
                    "size": dec(o.filled_qty),
                    "commission": dec(o.fee),
                    "product_id": o.symbol,
                    "sequence_timestamp": time,
                    "liquidity_indicator": "TAKER",
                    "size_in_quote": false,
                    "user_id": account.uuid.to_string(),
                    "side": if o.side == Side::Sell { "SELL" } else { "BUY" },
                    "retail_portfolio_id": account.uuid.to_string(),
                })
            })
            .collect()
    });
    axum::Json(json!({"fills": fills, "cursor": ""})).into_response()
}

async fn cancel_orders(Private(account): Private, body: Bytes) -> Response {
    let ids: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("order_ids").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let results: Vec<Value> = account.with_book(|b| {
        ids.iter()
            .map(|id| {
                let (success, reason) = match b.order(id).map(|o| o.status) {
                    None => (false, "UNKNOWN_CANCEL_ORDER"),
                    Some(OrderStatus::Filled) => (false, "ORDER_IS_FULLY_FILLED"),
                    Some(OrderStatus::Canceled) => (false, "DUPLICATE_CANCEL_REQUEST"),
                    Some(OrderStatus::Open) => (b.cancel(id), "UNKNOWN_CANCEL_FAILURE_REASON"),
                };
                json!({"success": success, "failure_reason": reason, "order_id": id})
            })
            .collect()
    });
    axum::Json(json!({"results": results})).into_response()
}

//! The admin HTTP API (its own port, plain HTTP or HTTPS). Every route is listed in `sim/README.md`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::{Admin, AdminError, ExternalTrade};
use crate::faults::FaultSpec;

pub const MARKERS: &[&str] = &["/admin/"];

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            AdminError::UnknownAccount(_) | AdminError::UnknownSymbol(_) => StatusCode::NOT_FOUND,
            AdminError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/admin/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/admin/accounts", get(accounts))
        .route("/admin/accounts/{id}", get(balances))
        .route("/admin/accounts/{id}/orders", get(account_orders))
        .route("/admin/accounts/{id}/trades", post(external_trade))
        .route("/admin/accounts/{id}/holdings/{asset}", put(set_holding))
        .route("/admin/accounts/{id}/revoke", post(revoke))
        .route("/admin/accounts/{id}/restore", post(restore))
        .route("/admin/orders", get(order_log).delete(reset_order_log))
        .route(
            "/admin/faults",
            get(faults).post(set_faults).delete(clear_faults),
        )
        .route("/admin/prices", get(prices))
        .route("/admin/prices/freeze", post(freeze))
        .route("/admin/prices/{symbol}", put(set_price))
        .route("/admin/prices/{symbol}/path", post(script))
        .route("/admin/clock", get(clock).put(set_clock))
        .with_state(admin)
}

async fn accounts(State(admin): State<Admin>) -> Response {
    let list: Vec<_> = admin
        .accounts()
        .into_iter()
        .map(|a| json!({"id": a.id, "type": a.kind, "broker": a.broker, "key_id": a.credentials.key_id()}))
        .collect();
    Json(list).into_response()
}

async fn balances(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    match admin.balances(&id) {
        Ok(b) => Json(b).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn account_orders(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    match admin.orders(&id) {
        Ok(o) => Json(o).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn external_trade(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Json(trade): Json<ExternalTrade>,
) -> Response {
    match admin.external_trade(&id, trade) {
        Ok(order) => Json(order).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct HoldingBody {
    quantity: Decimal,
    #[serde(default)]
    avg_entry: Option<Decimal>,
}

async fn set_holding(
    State(admin): State<Admin>,
    Path((id, asset)): Path<(String, String)>,
    Json(body): Json<HoldingBody>,
) -> Response {
    match admin.set_holding(&id, &asset, body.quantity, body.avg_entry) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    match admin.set_revoked(&id, true) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn restore(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    match admin.set_revoked(&id, false) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn order_log(State(admin): State<Admin>) -> Response {
    Json(admin.order_log()).into_response()
}

async fn reset_order_log(State(admin): State<Admin>) -> Response {
    admin.reset_order_log();
    StatusCode::NO_CONTENT.into_response()
}

async fn faults(State(admin): State<Admin>) -> Response {
    Json(admin.faults()).into_response()
}

async fn set_faults(State(admin): State<Admin>, Json(spec): Json<FaultSpec>) -> Response {
    admin.set_faults(spec);
    Json(admin.faults()).into_response()
}

async fn clear_faults(State(admin): State<Admin>) -> Response {
    admin.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn prices(State(admin): State<Admin>) -> Response {
    let list: Vec<_> = admin
        .prices()
        .into_iter()
        .map(|(symbol, q, frozen)| json!({"symbol": symbol, "bid": q.bid, "ask": q.ask, "last": q.last, "time": q.time, "frozen": frozen}))
        .collect();
    Json(list).into_response()
}

#[derive(Deserialize)]
struct PriceBody {
    price: Decimal,
    #[serde(default = "yes")]
    freeze: bool,
}

fn yes() -> bool {
    true
}

async fn set_price(
    State(admin): State<Admin>,
    Path(symbol): Path<String>,
    Json(body): Json<PriceBody>,
) -> Response {
    match admin.set_price(&symbol, body.price, body.freeze) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct FreezeBody {
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default = "yes")]
    frozen: bool,
}

async fn freeze(State(admin): State<Admin>, Json(body): Json<FreezeBody>) -> Response {
    admin.freeze_prices(body.symbol.as_deref(), body.frozen);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct PathBody {
    prices: Vec<Decimal>,
    every_ms: u64,
}

async fn script(
    State(admin): State<Admin>,
    Path(symbol): Path<String>,
    Json(body): Json<PathBody>,
) -> Response {
    match admin.script_prices(&symbol, body.prices, Duration::from_millis(body.every_ms)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn clock(State(admin): State<Admin>) -> Response {
    Json(json!({"is_open": admin.market_open()})).into_response()
}

#[derive(Deserialize)]
struct ClockBody {
    is_open: bool,
}

async fn set_clock(State(admin): State<Admin>, Json(body): Json<ClockBody>) -> Response {
    admin.set_market_open(body.is_open);
    StatusCode::NO_CONTENT.into_response()
}

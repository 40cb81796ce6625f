//! Kraken responses mapped to nija's values.

use std::collections::BTreeMap;

use nija_proto::{Price, Quantity, Symbol, Usd};
use rust_decimal::Decimal;

use super::http::models::{BalanceEx, Order, Ticker};
use super::symbols::KrakenSymbols;
use crate::broker::{CashBalance, Holding, Holdings, OrderState, OrderStatus, Quote};
use crate::common::parse::parse_decimal;
use crate::error::BrokerError;

fn invalid(message: String) -> BrokerError {
    BrokerError::InvalidResponse {
        broker: "kraken".to_string(),
        message,
    }
}

/// Balances as cash and positions. Quantity = `balance`; available = `balance + credit −
/// credit_used − hold_trade`. Sub-balances with a suffix (`XBT.F`, `DOT.S`: earn/staking) are not
/// sellable through the spot pair and are left out. An asset the mapping does not know is an
/// error naming it, never a guessed symbol.
pub fn holdings(
    balances: &BTreeMap<String, BalanceEx>,
    symbols: &KrakenSymbols,
    cash_assets: &[String],
    quote: &str,
) -> Result<Holdings, BrokerError> {
    let mut cash = Vec::new();
    let mut positions = Vec::new();
    for (id, b) in balances {
        if id.contains('.') {
            tracing::debug!(asset = id, "Kraken sub-balance (earn/staking) not counted");
            continue;
        }
        let code = symbols
            .asset(id)
            .ok_or_else(|| BrokerError::UnknownSymbol { symbol: id.clone() })?;
        let zero = Decimal::ZERO;
        let available = (b.balance + b.credit.unwrap_or(zero)
            - b.credit_used.unwrap_or(zero)
            - b.hold_trade.unwrap_or(zero))
        .max(zero)
        .min(b.balance.max(zero));
        if cash_assets.iter().any(|c| c.eq_ignore_ascii_case(code)) {
            cash.push(CashBalance {
                asset: code.to_string(),
                total: Usd(b.balance),
                available: Usd(available),
            });
            continue;
        }
        if b.balance.is_zero() {
            continue;
        }
        let symbol = Symbol::from_parts(code, quote)
            .map_err(|_| invalid(format!("asset {id} ({code}) has no canonical symbol")))?;
        positions.push(Holding {
            symbol,
            quantity: Quantity(b.balance),
            available: Quantity(available),
            avg_entry_price: None,
        });
    }
    Ok(Holdings {
        cash,
        positions,
        broker_total: None,
    })
}

fn first_decimal(field: &[String], name: &str) -> Result<Option<Decimal>, BrokerError> {
    field
        .first()
        .map(|s| parse_decimal(s))
        .transpose()
        .map_err(|e| invalid(format!("ticker field {name}: {e}")))
        .map(|d| d.filter(|v| *v > Decimal::ZERO))
}

/// A quote from a ticker entry: price = last trade, else the bid.
pub fn quote(symbol: &Symbol, ticker: &Ticker) -> Result<Quote, BrokerError> {
    let bid = first_decimal(&ticker.b, "b")?;
    let ask = first_decimal(&ticker.a, "a")?;
    let last = first_decimal(&ticker.c, "c")?;
    let price = last
        .or(bid)
        .ok_or_else(|| invalid(format!("no last trade or bid for {symbol}")))?;
    Ok(Quote {
        symbol: symbol.clone(),
        bid: bid.map(Price),
        ask: ask.map(Price),
        price: Price(price),
        time: None,
    })
}

/// An order normalised; `fallback` is used when the order's pair is not in the mapping.
pub fn order_status(
    txid: &str,
    order: &Order,
    symbols: &KrakenSymbols,
    fallback: Option<&Symbol>,
) -> Result<OrderStatus, BrokerError> {
    let symbol = symbols
        .symbol(&order.descr.pair)
        .or(fallback)
        .cloned()
        .ok_or_else(|| BrokerError::UnknownSymbol {
            symbol: order.descr.pair.clone(),
        })?;
    let filled = order.vol_exec;
    let some_filled = filled > Decimal::ZERO;
    let reason = order.reason.clone().filter(|r| !r.is_empty());
    let state = match order.status.as_str() {
        "pending" | "open" => OrderState::Open,
        "closed" if filled >= order.vol => OrderState::Filled,
        "closed" | "canceled" | "expired" if some_filled => OrderState::PartiallyFilled,
        "closed" | "canceled" => OrderState::Cancelled,
        "expired" => OrderState::Expired,
        other => return Err(invalid(format!("unknown order status {other:?}"))),
    };
    Ok(OrderStatus {
        order_id: txid.to_string(),
        client_order_id: order.cl_ord_id.clone().filter(|c| !c.is_empty()),
        symbol,
        state,
        quantity: Quantity(order.vol),
        filled_quantity: Quantity(filled),
        average_fill_price: order
            .price
            .filter(|p| some_filled && *p > Decimal::ZERO)
            .map(Price),
        reason,
    })
}

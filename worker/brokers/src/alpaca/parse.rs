//! Alpaca responses mapped to nija's values.

use nija_proto::{Price, Quantity, Symbol, Usd};
use rust_decimal::Decimal;

use super::http::models::{Account, Asset, LatestQuote, Order, Position};
use super::symbols::AlpacaSymbols;
use crate::broker::{CashBalance, Holding, Holdings, OrderState, OrderStatus, ProductRules, Quote};
use crate::error::BrokerError;

fn invalid(message: String) -> BrokerError {
    BrokerError::InvalidResponse {
        broker: "alpaca".to_string(),
        message,
    }
}

/// Equity size step: Alpaca takes up to 9 decimals for fractionable assets.
const FRACTION_STEP: Decimal = Decimal::from_parts(1, 0, 0, false, 9);

/// Cash (`USD`), positions (available = `qty_available`, entry = `avg_entry_price`) and the
/// broker's total (`equity`). A crypto position whose pair was not learned is an error naming it.
pub fn holdings(
    account: &Account,
    positions: &[Position],
    symbols: &AlpacaSymbols,
    cash_assets: &[String],
) -> Result<Holdings, BrokerError> {
    let cash = if cash_assets.iter().any(|c| c.eq_ignore_ascii_case("USD")) {
        vec![CashBalance {
            asset: "USD".to_string(),
            total: Usd(account.cash),
            available: Usd(account.cash.max(Decimal::ZERO)),
        }]
    } else {
        Vec::new()
    };
    let positions = positions
        .iter()
        .map(|p| {
            let symbol = symbols.symbol(&p.symbol, &p.asset_class).ok_or_else(|| {
                BrokerError::UnknownSymbol {
                    symbol: p.symbol.clone(),
                }
            })?;
            Ok(Holding {
                symbol,
                quantity: Quantity(p.qty),
                available: Quantity(p.qty_available.unwrap_or(p.qty)),
                avg_entry_price: p.avg_entry_price.filter(|v| *v > Decimal::ZERO).map(Price),
            })
        })
        .collect::<Result<Vec<_>, BrokerError>>()?;
    Ok(Holdings {
        cash,
        positions,
        broker_total: account.equity.map(Usd),
    })
}

/// A quote: price = bid (a sell fills there); no bid means no price.
pub fn quote(symbol: &Symbol, q: &LatestQuote) -> Result<Quote, BrokerError> {
    let bid = q.bp.filter(|p| *p > Decimal::ZERO);
    let ask = q.ap.filter(|p| *p > Decimal::ZERO);
    let price = bid.ok_or_else(|| invalid(format!("no bid for {symbol}")))?;
    Ok(Quote {
        symbol: symbol.clone(),
        bid: Some(Price(price)),
        ask: ask.map(Price),
        price: Price(price),
        time: q.t,
    })
}

/// Rules of a crypto pair from its asset.
pub fn crypto_rules(symbol: &Symbol, asset: &Asset) -> ProductRules {
    let step = asset.min_trade_increment.unwrap_or(FRACTION_STEP);
    ProductRules {
        symbol: symbol.clone(),
        min_size: Quantity(asset.min_order_size.unwrap_or(step)),
        size_increment: Quantity(step),
        min_notional: None,
        market_hours_only: false,
        tradable: asset.tradable && asset.status == "active",
    }
}

/// Rules of an equity: fractional to 9 decimals when fractionable, else whole shares; market
/// orders only in market hours.
pub fn equity_rules(symbol: &Symbol, asset: &Asset) -> ProductRules {
    let step = if asset.fractionable {
        FRACTION_STEP
    } else {
        Decimal::ONE
    };
    ProductRules {
        symbol: symbol.clone(),
        min_size: Quantity(step),
        size_increment: Quantity(step),
        min_notional: None,
        market_hours_only: true,
        tradable: asset.tradable && asset.status == "active",
    }
}

/// An order normalised; the state reads the filled quantity, not just the status.
pub fn order_status(
    order: &Order,
    symbols: &AlpacaSymbols,
    fallback: Option<&Symbol>,
) -> Result<OrderStatus, BrokerError> {
    let symbol = symbols
        .symbol(&order.symbol, &order.asset_class)
        .or_else(|| fallback.cloned())
        .ok_or_else(|| BrokerError::UnknownSymbol {
            symbol: order.symbol.clone(),
        })?;
    let filled = order.filled_qty.unwrap_or(Decimal::ZERO);
    let some_filled = filled > Decimal::ZERO;
    let status = order.status.as_str();
    let state = match status {
        "filled" => OrderState::Filled,
        "canceled" | "expired" | "replaced" if some_filled => OrderState::PartiallyFilled,
        "canceled" | "replaced" => OrderState::Cancelled,
        "expired" => OrderState::Expired,
        "rejected" if some_filled => OrderState::PartiallyFilled,
        "rejected" => OrderState::Rejected,
        "new"
        | "accepted"
        | "pending_new"
        | "accepted_for_bidding"
        | "partially_filled"
        | "pending_cancel"
        | "pending_replace"
        | "pending_review"
        | "held"
        | "calculated"
        | "suspended"
        | "stopped"
        | "done_for_day" => OrderState::Open,
        other => return Err(invalid(format!("unknown order status {other:?}"))),
    };
    let reason = matches!(
        state,
        OrderState::Cancelled | OrderState::Rejected | OrderState::Expired
    )
    .then(|| status.to_string());
    Ok(OrderStatus {
        order_id: order.id.clone(),
        client_order_id: order.client_order_id.clone().filter(|c| !c.is_empty()),
        symbol,
        state,
        quantity: Quantity(order.qty.unwrap_or(filled)),
        filled_quantity: Quantity(filled),
        average_fill_price: order
            .filled_avg_price
            .filter(|p| some_filled && *p > Decimal::ZERO)
            .map(Price),
        reason,
    })
}

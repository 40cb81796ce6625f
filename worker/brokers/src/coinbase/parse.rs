//! Coinbase responses mapped to nija's values. Products are named `BASE-QUOTE`, the canonical
//! form itself, so the symbol mapping is the identity — checked, never guessed.

use nija_proto::{Price, Quantity, Symbol, Usd};
use rust_decimal::Decimal;

use super::http::models::{Account, Order, PriceBook, Product};
use crate::broker::{CashBalance, Holding, Holdings, OrderState, OrderStatus, ProductRules, Quote};
use crate::error::BrokerError;

fn invalid(message: String) -> BrokerError {
    BrokerError::InvalidResponse {
        broker: "coinbase".to_string(),
        message,
    }
}

/// The canonical symbol of a product id.
pub fn symbol_of(product_id: &str) -> Result<Symbol, BrokerError> {
    Symbol::new(product_id).map_err(|_| BrokerError::UnknownSymbol {
        symbol: product_id.to_string(),
    })
}

/// Cash and positions from the account list: quantity = available + hold, available =
/// `available_balance` (holds excluded). Zero balances are left out.
pub fn holdings(
    accounts: &[Account],
    cash_assets: &[String],
    quote: &str,
) -> Result<Holdings, BrokerError> {
    let mut cash = Vec::new();
    let mut positions = Vec::new();
    for account in accounts {
        let available = account.available_balance.value;
        let hold = account.hold.as_ref().map_or(Decimal::ZERO, |h| h.value);
        let total = available + hold;
        let asset = account.currency.trim().to_ascii_uppercase();
        if cash_assets.iter().any(|c| c.eq_ignore_ascii_case(&asset)) {
            cash.push(CashBalance {
                asset,
                total: Usd(total),
                available: Usd(available),
            });
            continue;
        }
        if total.is_zero() {
            continue;
        }
        let symbol = Symbol::from_parts(&asset, quote).map_err(|_| {
            invalid(format!(
                "account currency {:?} is not a valid asset code",
                account.currency
            ))
        })?;
        positions.push(Holding {
            symbol,
            quantity: Quantity(total),
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

/// A quote from a price book: price = best bid (a sell fills there).
pub fn quote(book: &PriceBook) -> Result<Quote, BrokerError> {
    let symbol = symbol_of(&book.product_id)?;
    let bid = book
        .bids
        .first()
        .map(|l| l.price)
        .filter(|p| *p > Decimal::ZERO);
    let ask = book
        .asks
        .first()
        .map(|l| l.price)
        .filter(|p| *p > Decimal::ZERO);
    let price = bid.ok_or_else(|| invalid(format!("no bid for {}", book.product_id)))?;
    Ok(Quote {
        symbol,
        bid: bid.map(Price),
        ask: ask.map(Price),
        price: Price(price),
        time: book.time,
    })
}

/// Trading rules of a product.
pub fn rules(product: &Product) -> Result<ProductRules, BrokerError> {
    let tradable = product.status.eq_ignore_ascii_case("online")
        && !product.trading_disabled
        && !product.is_disabled
        && !product.cancel_only
        && !product.limit_only
        && !product.view_only;
    Ok(ProductRules {
        symbol: symbol_of(&product.product_id)?,
        min_size: Quantity(product.base_min_size),
        size_increment: Quantity(product.base_increment),
        min_notional: product.quote_min_size.map(Usd),
        market_hours_only: false,
        tradable,
    })
}

/// The ordered base size, wherever the order configuration keeps it.
fn base_size(order: &Order) -> Option<Decimal> {
    let config = order.order_configuration.as_ref()?.as_object()?;
    config.values().find_map(|inner| {
        inner
            .get("base_size")
            .and_then(|v| v.as_str())
            .and_then(|s| crate::common::parse::opt_decimal(s).ok().flatten())
    })
}

/// An order normalised; the state reads the filled size, not just the status.
pub fn order_status(order: &Order) -> Result<OrderStatus, BrokerError> {
    let filled = order.filled_size.unwrap_or(Decimal::ZERO);
    let quantity = base_size(order).unwrap_or(filled);
    let text = |s: &Option<String>| s.as_deref().filter(|t| !t.is_empty()).map(str::to_string);
    let (state, reason) = match order.status.to_ascii_uppercase().as_str() {
        "FILLED" => (OrderState::Filled, None),
        "CANCELLED" | "EXPIRED" if filled > Decimal::ZERO => {
            (OrderState::PartiallyFilled, text(&order.cancel_message))
        }
        "CANCELLED" => (OrderState::Cancelled, text(&order.cancel_message)),
        "EXPIRED" => (OrderState::Expired, text(&order.cancel_message)),
        "FAILED" if filled > Decimal::ZERO => (
            OrderState::PartiallyFilled,
            text(&order.reject_message).or(text(&order.reject_reason)),
        ),
        "FAILED" => (
            OrderState::Rejected,
            text(&order.reject_message).or(text(&order.reject_reason)),
        ),
        "OPEN" | "PENDING" | "QUEUED" | "CANCEL_QUEUED" | "UNKNOWN_ORDER_STATUS" => {
            (OrderState::Open, None)
        }
        other => return Err(invalid(format!("unknown order status {other:?}"))),
    };
    Ok(OrderStatus {
        order_id: order.order_id.clone(),
        client_order_id: Some(order.client_order_id.clone()).filter(|c| !c.is_empty()),
        symbol: symbol_of(&order.product_id)?,
        state,
        quantity: Quantity(quantity),
        filled_quantity: Quantity(filled),
        average_fill_price: order
            .average_filled_price
            .filter(|p| *p > Decimal::ZERO && filled > Decimal::ZERO)
            .map(Price),
        reason,
    })
}

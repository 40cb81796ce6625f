//! Whether a priced position can be market-sold, and for how much (DESIGN §3.2 "unsellable",
//! §3.4.3): the whole available quantity floored to the size increment, if the broker would take
//! it. A position that cannot be sold is counted and reported, never forced through.

use nija_proto::plan::UnsellableReason;
use nija_proto::{Price, Quantity, Usd};

use crate::math::floor_to;
use crate::snapshot::PositionSnapshot;

/// The quantity a market sell of `position` would carry at `price`, a price whose value for the
/// whole position passed [`crate::math::value`] (so the products below cannot overflow).
///
/// With `count_below` set (cap sells), a sell must also take the position below that value, or it
/// would not reduce the count: a remainder held by open orders or left by a coarse increment that
/// is still worth `count_below` or more makes the position unsellable for the cap.
pub(crate) fn sell_quantity(
    position: &PositionSnapshot,
    price: Price,
    count_below: Option<Usd>,
) -> Result<Quantity, UnsellableReason> {
    if !position.tradable {
        return Err(UnsellableReason::NotTradable);
    }
    if !position.market_open {
        return Err(UnsellableReason::MarketClosed);
    }
    let rules = position
        .rules
        .as_ref()
        .ok_or(UnsellableReason::NoProductRules)?;
    let available = position.available.min(position.quantity);
    let quantity =
        floor_to(available, rules.size_increment).ok_or(UnsellableReason::BelowMinimumOrder)?;
    if quantity <= Quantity::ZERO || quantity < rules.min_size {
        return Err(UnsellableReason::BelowMinimumOrder);
    }
    if rules.min_notional.is_some_and(|min| quantity * price < min) {
        return Err(UnsellableReason::BelowMinimumOrder);
    }
    if count_below.is_some_and(|threshold| (position.quantity - quantity) * price >= threshold) {
        return Err(UnsellableReason::RemainderStaysMaterial);
    }
    Ok(quantity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SizeRules;
    use crate::testkit::*;
    use rust_decimal_macros::dec;

    fn position(
        quantity: Quantity,
        available: Quantity,
        rules: Option<SizeRules>,
    ) -> PositionSnapshot {
        let mut p = priced_position("SOL-USD", dec!(100));
        p.quantity = quantity;
        p.available = available;
        p.rules = rules;
        p
    }

    fn rules(min: Quantity, step: Quantity, notional: Option<Usd>) -> Option<SizeRules> {
        Some(SizeRules {
            min_size: min,
            size_increment: step,
            min_notional: notional,
        })
    }

    #[test]
    fn sells_the_available_quantity_floored_to_the_increment() {
        let p = position(
            Quantity(dec!(2.5678)),
            Quantity(dec!(2.5678)),
            rules(Quantity(dec!(0.01)), Quantity(dec!(0.01)), None),
        );
        assert_eq!(
            sell_quantity(&p, Price(dec!(10)), None),
            Ok(Quantity(dec!(2.56)))
        );
    }

    #[test]
    fn below_minimum_after_flooring_is_unsellable() {
        let p = position(
            Quantity(dec!(0.0199)),
            Quantity(dec!(0.0199)),
            rules(Quantity(dec!(0.02)), Quantity(dec!(0.01)), None),
        );
        assert_eq!(
            sell_quantity(&p, Price(dec!(100)), None),
            Err(UnsellableReason::BelowMinimumOrder)
        );
        let p = position(
            Quantity(dec!(1)),
            Quantity(dec!(1)),
            rules(
                Quantity(dec!(0.01)),
                Quantity(dec!(0.01)),
                Some(Usd(dec!(10))),
            ),
        );
        assert_eq!(
            sell_quantity(&p, Price(dec!(9.99)), None),
            Err(UnsellableReason::BelowMinimumOrder)
        );
        assert_eq!(
            sell_quantity(&p, Price(dec!(10)), None),
            Ok(Quantity(dec!(1)))
        );
    }

    #[test]
    fn closed_untradable_or_ruleless_products_are_unsellable() {
        let mut p = priced_position("AAPL-USD", dec!(100));
        p.market_open = false;
        assert_eq!(
            sell_quantity(&p, Price(dec!(100)), None),
            Err(UnsellableReason::MarketClosed)
        );
        p.market_open = true;
        p.tradable = false;
        assert_eq!(
            sell_quantity(&p, Price(dec!(100)), None),
            Err(UnsellableReason::NotTradable)
        );
        p.tradable = true;
        p.rules = None;
        assert_eq!(
            sell_quantity(&p, Price(dec!(100)), None),
            Err(UnsellableReason::NoProductRules)
        );
    }

    #[test]
    fn a_cap_sell_must_take_the_position_below_the_threshold() {
        // 10 held, 4 available (6 held by open orders) at 1 USD: 6 USD would remain.
        let p = position(
            Quantity(dec!(10)),
            Quantity(dec!(4)),
            rules(Quantity(dec!(1)), Quantity(dec!(1)), None),
        );
        assert_eq!(
            sell_quantity(&p, Price(dec!(1)), Some(Usd(dec!(1)))),
            Err(UnsellableReason::RemainderStaysMaterial)
        );
        // An exit sells what it can regardless.
        assert_eq!(
            sell_quantity(&p, Price(dec!(1)), None),
            Ok(Quantity(dec!(4)))
        );
    }
}

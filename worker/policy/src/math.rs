//! Checked arithmetic on broker-supplied numbers. Decimal operators panic on overflow; a garbage
//! quantity, price or size step from a broker must give a clear classification instead (DESIGN R6),
//! so every product or quotient of outside values in the policy goes through here.

use nija_proto::{Pct, Price, Quantity, Usd};
use rust_decimal::Decimal;

/// No position is worth more than this: a larger `quantity × price` is broker garbage, and the
/// position is treated as unpriced. It also keeps every sum of position values far from overflow.
pub const MAX_POSITION_USD: Usd = Usd(Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0)); // 10^15

/// `quantity × price`, or `None` when it overflows or exceeds [`MAX_POSITION_USD`].
pub(crate) fn value(quantity: Quantity, price: Price) -> Option<Usd> {
    quantity
        .0
        .checked_mul(price.0)
        .map(Usd)
        .filter(|usd| usd.0.abs() <= MAX_POSITION_USD.0)
}

/// `part / whole × 100`, or `None` when `whole` is zero or the result overflows.
pub(crate) fn pct(part: Decimal, whole: Decimal) -> Option<Pct> {
    part.checked_div(whole)?
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(Pct)
}

/// `quantity` rounded down to a multiple of `step` (unchanged for a non-positive step), or `None`
/// when the step is too fine to represent the multiple.
pub(crate) fn floor_to(quantity: Quantity, step: Quantity) -> Option<Quantity> {
    if step.0 <= Decimal::ZERO {
        return Some(quantity);
    }
    quantity
        .0
        .checked_div(step.0)?
        .floor()
        .checked_mul(step.0)
        .map(Quantity)
}

/// A sum that saturates instead of overflowing (cash balances and history come from outside).
pub(crate) fn saturating_sum(values: impl IntoIterator<Item = Usd>) -> Usd {
    Usd(values
        .into_iter()
        .fold(Decimal::ZERO, |acc, v| acc.saturating_add(v.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_plausibility_bound_is_ten_to_the_fifteen() {
        assert_eq!(MAX_POSITION_USD, Usd(dec!(1_000_000_000_000_000)));
        assert_eq!(value(Quantity(dec!(2)), Price(dec!(3))), Some(Usd(dec!(6))));
        assert_eq!(value(Quantity(Decimal::MAX), Price(dec!(2))), None);
        assert_eq!(value(Quantity(dec!(1e9)), Price(dec!(1e7))), None);
    }

    #[test]
    fn overflowing_quotients_are_none_not_panics() {
        assert_eq!(pct(dec!(1), dec!(0)), None);
        assert_eq!(pct(Decimal::MAX, dec!(0.5)), None);
        assert_eq!(pct(dec!(5), dec!(100)), Some(Pct(dec!(5))));
        assert_eq!(
            floor_to(Quantity(Decimal::MAX), Quantity(dec!(0.0000001))),
            None
        );
        assert_eq!(
            floor_to(Quantity(dec!(1.27)), Quantity(dec!(0.5))),
            Some(Quantity(dec!(1.0)))
        );
        assert_eq!(
            saturating_sum([Usd(Decimal::MAX), Usd(Decimal::MAX)]),
            Usd(Decimal::MAX)
        );
    }
}

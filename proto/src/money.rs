//! Money, prices, quantities and percentages as distinct decimal types.
//!
//! The original system compared a percent with a fraction and valued holdings in floats; here each
//! unit is its own type, all are `rust_decimal` underneath and travel as strings on the wire.
//! The only cross-unit product is `Quantity × Price = Usd`.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, Mul, Sub};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

macro_rules! decimal_unit {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Decimal);

        impl $name {
            pub const ZERO: $name = $name(Decimal::ZERO);

            pub fn new(value: Decimal) -> Self {
                Self(value)
            }
            pub fn value(self) -> Decimal {
                self.0
            }
            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
            pub fn is_sign_negative(self) -> bool {
                self.0.is_sign_negative() && !self.0.is_zero()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.normalize(), f)
            }
        }

        impl FromStr for $name {
            type Err = rust_decimal::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Decimal::from_str_exact(s.trim()).map(Self)
            }
        }

        impl From<Decimal> for $name {
            fn from(value: Decimal) -> Self {
                Self(value)
            }
        }

        impl Add for $name {
            type Output = $name;
            fn add(self, rhs: $name) -> $name {
                $name(self.0 + rhs.0)
            }
        }

        impl Sub for $name {
            type Output = $name;
            fn sub(self, rhs: $name) -> $name {
                $name(self.0 - rhs.0)
            }
        }

        impl Sum for $name {
            fn sum<I: Iterator<Item = $name>>(iter: I) -> $name {
                $name(iter.map(|v| v.0).sum())
            }
        }
    };
}

decimal_unit!(
    /// An amount of US dollars (or of the account's USD-like quote asset).
    Usd
);
decimal_unit!(
    /// The price of one unit of a symbol's base, in its quote (USD).
    Price
);
decimal_unit!(
    /// An amount of a symbol's base asset (coins, shares).
    Quantity
);
decimal_unit!(
    /// A percentage: `3.0` means three percent, never the fraction 0.03.
    Pct
);

impl Mul<Price> for Quantity {
    type Output = Usd;
    fn mul(self, price: Price) -> Usd {
        Usd(self.0 * price.0)
    }
}

impl Quantity {
    /// Rounds down to a multiple of `increment` (a broker's size step). A zero or negative
    /// increment leaves the quantity unchanged.
    pub fn floor_to(self, increment: Quantity) -> Quantity {
        if increment.0 <= Decimal::ZERO {
            return self;
        }
        Quantity((self.0 / increment.0).floor() * increment.0)
    }
}

impl Pct {
    /// `part / whole × 100`; `None` when `whole` is zero.
    pub fn of(part: Decimal, whole: Decimal) -> Option<Pct> {
        if whole.is_zero() {
            return None;
        }
        part.checked_div(whole)
            .map(|f| Pct(f * Decimal::ONE_HUNDRED))
    }

    /// The fraction this percentage stands for (3.0 → 0.03).
    pub fn as_fraction(self) -> Decimal {
        self.0 / Decimal::ONE_HUNDRED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn quantity_times_price_is_usd() {
        assert_eq!(Quantity(dec!(0.5)) * Price(dec!(20000)), Usd(dec!(10000)));
    }

    #[test]
    fn floor_to_increment_rounds_down() {
        assert_eq!(
            Quantity(dec!(1.23456789)).floor_to(Quantity(dec!(0.001))),
            Quantity(dec!(1.234))
        );
        assert_eq!(
            Quantity(dec!(7)).floor_to(Quantity(dec!(0))),
            Quantity(dec!(7))
        );
    }

    #[test]
    fn money_is_a_string_on_the_wire() {
        assert_eq!(serde_json::to_string(&Usd(dec!(1.50))).unwrap(), "\"1.50\"");
        let back: Usd = serde_json::from_str("\"1.50\"").unwrap();
        assert_eq!(back, Usd(dec!(1.50)));
    }

    #[test]
    fn percent_is_not_a_fraction() {
        assert_eq!(Pct::of(dec!(-5), dec!(100)), Some(Pct(dec!(-5))));
        assert_eq!(Pct(dec!(3.0)).as_fraction(), dec!(0.03));
        assert_eq!(Pct::of(dec!(1), dec!(0)), None);
    }
}

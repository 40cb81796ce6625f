//! The exit rules for long positions (DESIGN §3.5). Each rule fires on its own — they are
//! alternatives, never joined (the original's stop-loss was an AND of two conditions) — and every
//! threshold is a [`Pct`] compared with a percentage, never with a fraction.
//!
//! | rule | fires when |
//! |---|---|
//! | stop_loss | `pnl_pct ≤ −stop_loss_pct` |
//! | trailing_stop | `drawdown_pct ≥ trailing_stop_pct` and `peak ≥ entry × (1 + activation/100)` |
//! | take_profit | `pnl_pct ≥ take_profit_pct` |
//! | max_hold | `now − entry_time ≥ max_hold` |

use chrono::{DateTime, Utc};
use nija_proto::plan::SellReason;
use nija_proto::{Pct, Price};
use rust_decimal::Decimal;

use crate::math::pct;
use crate::params::PolicyParams;

/// What an exit is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInputs {
    pub entry_price: Price,
    pub entry_time: DateTime<Utc>,
    /// Highest trustworthy price since entry, the current one included.
    pub peak: Price,
    /// A fresh, in-band price.
    pub price: Price,
}

/// `(price − entry) / entry × 100`; `None` for a non-positive entry price.
pub fn pnl_pct(entry: Price, price: Price) -> Option<Pct> {
    if entry.0 <= Decimal::ZERO {
        return None;
    }
    pct(price.0.checked_sub(entry.0)?, entry.0)
}

/// `(peak − price) / peak × 100`; `None` for a non-positive peak.
pub fn drawdown_pct(peak: Price, price: Price) -> Option<Pct> {
    if peak.0 <= Decimal::ZERO {
        return None;
    }
    pct(peak.0.checked_sub(price.0)?, peak.0)
}

/// Every rule that fires, in precedence order (stop_loss, trailing_stop, take_profit, max_hold);
/// the first one is the winning reason. Empty when none fires.
pub fn fired(inputs: &ExitInputs, params: &PolicyParams, now: DateTime<Utc>) -> Vec<SellReason> {
    let pnl = pnl_pct(inputs.entry_price, inputs.price);
    let mut out = Vec::new();
    if pnl.is_some_and(|p| p.0 <= -params.stop_loss_pct.0) {
        out.push(SellReason::StopLoss);
    }
    // The trailing stop arms once the peak reached entry × (1 + activation/100).
    let activated = inputs.entry_price.0 > Decimal::ZERO
        && (Decimal::ONE + params.trailing_activation_pct.as_fraction())
            .checked_mul(inputs.entry_price.0)
            .is_some_and(|activation| inputs.peak.0 >= activation);
    if activated
        && drawdown_pct(inputs.peak, inputs.price).is_some_and(|d| d >= params.trailing_stop_pct)
    {
        out.push(SellReason::TrailingStop);
    }
    if pnl.is_some_and(|p| p >= params.take_profit_pct) {
        out.push(SellReason::TakeProfit);
    }
    if now - inputs.entry_time >= params.max_hold {
        out.push(SellReason::MaxHold);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use chrono::Duration;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn at(entry: Decimal, peak: Decimal, price: Decimal, held_hours: i64) -> Vec<SellReason> {
        let inputs = ExitInputs {
            entry_price: Price(entry),
            entry_time: now() - Duration::hours(held_hours),
            peak: Price(peak),
            price: Price(price),
        };
        fired(&inputs, &params(8), now())
    }

    #[test]
    fn guide_exit_cases() {
        // −5%: stop-loss wins; with activation 0 the 5% drawdown from entry also trails.
        assert_eq!(
            at(dec!(100), dec!(100), dec!(95), 1),
            [SellReason::StopLoss, SellReason::TrailingStop]
        );
        assert_eq!(
            at(dec!(100), dec!(110), dec!(110), 1),
            [SellReason::TakeProfit]
        );
        // 115 → 108 is a 6.1% drawdown; +8% also reaches take-profit, which trailing precedes.
        assert_eq!(
            at(dec!(100), dec!(115), dec!(108), 1),
            [SellReason::TrailingStop, SellReason::TakeProfit]
        );
        assert_eq!(
            at(dec!(100), dec!(100), dec!(100), 25),
            [SellReason::MaxHold]
        );
        assert!(at(dec!(100), dec!(102), dec!(102), 1).is_empty());
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(
            at(dec!(100), dec!(100), dec!(97), 0),
            [SellReason::StopLoss]
        );
        assert!(at(dec!(100), dec!(100), dec!(97.01), 0).is_empty());
        assert_eq!(
            at(dec!(100), dec!(108), dec!(108), 0),
            [SellReason::TakeProfit]
        );
        assert_eq!(
            at(dec!(100), dec!(100), dec!(100), 24),
            [SellReason::MaxHold]
        );
        assert_eq!(
            at(dec!(100), dec!(106), dec!(100.70), 0),
            [SellReason::TrailingStop]
        );
    }

    #[test]
    fn trailing_stop_waits_for_its_activation() {
        let mut p = params(8);
        p.trailing_activation_pct = Pct(dec!(10));
        let inputs = |peak| ExitInputs {
            entry_price: Price(dec!(100)),
            entry_time: now(),
            peak: Price(peak),
            price: Price(dec!(102)),
        };
        // Peak 109 < 110: not activated although the drawdown is 6.4%.
        assert!(fired(&inputs(dec!(109)), &p, now()).is_empty());
        assert_eq!(
            fired(&inputs(dec!(110)), &p, now()),
            [SellReason::TrailingStop]
        );
    }

    #[test]
    fn all_rules_fire_together_in_precedence_order() {
        // Peak 200, price 90 from entry 100, held two days: stop-loss, trailing and time exit.
        assert_eq!(
            at(dec!(100), dec!(200), dec!(90), 48),
            [
                SellReason::StopLoss,
                SellReason::TrailingStop,
                SellReason::MaxHold
            ]
        );
    }

    #[test]
    fn a_zero_entry_price_fires_only_the_time_rule() {
        assert!(at(dec!(0), dec!(0), dec!(5), 1).is_empty());
        assert_eq!(at(dec!(0), dec!(0), dec!(5), 30), [SellReason::MaxHold]);
    }
}

//! The liquidation guard (DESIGN §3.4.6): cap enforcement may not sell more than
//! `max_liquidation_fraction` of the account's priced material value, neither in one run nor
//! summed with the cap liquidations of the rolling `liquidation_window`, unless the job is forced.
//! It protects an account from a bad snapshot or a wrong cap emptying it. It applies to cap sells
//! only: exits are never held back by it.

use chrono::{DateTime, Utc};
use nija_proto::Usd;

use crate::math::saturating_sum;
use crate::params::PolicyParams;
use crate::snapshot::CapLiquidation;

/// The guard's arithmetic for one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardCheck {
    pub planned_usd: Usd,
    /// Cap liquidations within `(now − liquidation_window, now]`.
    pub window_sold_usd: Usd,
    pub material_usd: Usd,
    /// `max_liquidation_fraction × material_usd`.
    pub allowed_usd: Usd,
}

impl GuardCheck {
    /// Whether the plan sells more than allowed (in this run, or in the window including it).
    pub fn exceeded(&self) -> bool {
        self.window_sold_usd.0.saturating_add(self.planned_usd.0) > self.allowed_usd.0
    }
}

/// The guard's figures for cap sells worth `planned` on an account whose priced material positions
/// are worth `material`.
pub fn check(
    planned: Usd,
    material: Usd,
    history: &[CapLiquidation],
    params: &PolicyParams,
    now: DateTime<Utc>,
) -> GuardCheck {
    let since = now
        .checked_sub_signed(params.liquidation_window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let window_sold_usd = saturating_sum(
        history
            .iter()
            .filter(|l| l.at > since && l.at <= now)
            .map(|l| l.usd_value),
    );
    GuardCheck {
        planned_usd: planned,
        window_sold_usd,
        material_usd: material,
        allowed_usd: Usd(material.0.saturating_mul(params.max_liquidation_fraction)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use chrono::Duration;
    use rust_decimal_macros::dec;

    #[test]
    fn one_run_may_sell_up_to_the_fraction_and_no_more() {
        let p = params(8);
        assert!(!check(Usd(dec!(500)), Usd(dec!(1000)), &[], &p, now()).exceeded());
        assert!(check(Usd(dec!(500.01)), Usd(dec!(1000)), &[], &p, now()).exceeded());
    }

    #[test]
    fn liquidations_inside_the_window_count_and_older_ones_do_not() {
        let p = params(8);
        let inside = CapLiquidation {
            at: now() - Duration::hours(23),
            usd_value: Usd(dec!(300)),
        };
        let outside = CapLiquidation {
            at: now() - Duration::hours(24),
            usd_value: Usd(dec!(10_000)),
        };
        let g = check(
            Usd(dec!(250)),
            Usd(dec!(1000)),
            &[inside, outside],
            &p,
            now(),
        );
        assert_eq!(g.window_sold_usd, Usd(dec!(300)));
        assert!(g.exceeded(), "300 before + 250 now > 500");
        let g = check(Usd(dec!(200)), Usd(dec!(1000)), &g_history(), &p, now());
        assert!(!g.exceeded());
    }

    fn g_history() -> Vec<CapLiquidation> {
        vec![CapLiquidation {
            at: now() - Duration::minutes(5),
            usd_value: Usd(dec!(300)),
        }]
    }
}

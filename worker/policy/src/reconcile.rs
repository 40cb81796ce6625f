//! Balance reconciliation (DESIGN §3.7): `total = cash + Σ priced position values`, compared with
//! the broker's own total where it reports one, else with the previous snapshot's total. A drift
//! above 1% is flagged for the logs and metrics; it never changes a plan.

use nija_proto::plan::{Reconciliation, ReferenceSource};
use nija_proto::{Pct, Usd};
use rust_decimal::Decimal;

use crate::math::pct;

/// Drift above this percentage is flagged.
pub const DRIFT_LIMIT: Pct = Pct(Decimal::ONE);

/// Reconciles an account's totals.
pub fn reconcile(
    cash_usd: Usd,
    positions_usd: Usd,
    unpriced_positions: u32,
    broker_total: Option<Usd>,
    previous_total: Option<Usd>,
) -> Reconciliation {
    let total_usd = Usd(cash_usd.0.saturating_add(positions_usd.0));
    let reference = broker_total
        .map(|t| (t, ReferenceSource::Broker))
        .or_else(|| previous_total.map(|t| (t, ReferenceSource::PreviousSnapshot)));
    let drift_pct =
        reference.and_then(|(r, _)| pct(total_usd.0.checked_sub(r.0)?.abs(), r.0.abs()));
    let drifted = match (reference, drift_pct) {
        (_, Some(d)) => d > DRIFT_LIMIT,
        // A zero reference, or one too far off to compute a percentage.
        (Some((r, _)), None) => r != total_usd,
        (None, None) => false,
    };
    Reconciliation {
        cash_usd,
        positions_usd,
        total_usd,
        reference_usd: reference.map(|(r, _)| r),
        reference_source: reference.map(|(_, s)| s),
        drift_pct,
        drifted,
        unpriced_positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_broker_total_is_preferred_and_one_percent_is_tolerated() {
        let r = reconcile(
            Usd(dec!(500)),
            Usd(dec!(500)),
            0,
            Some(Usd(dec!(990.10))),
            Some(Usd(dec!(1))),
        );
        assert_eq!(r.total_usd, Usd(dec!(1000)));
        assert_eq!(r.reference_source, Some(ReferenceSource::Broker));
        assert!(!r.drifted, "{:?}", r.drift_pct);
        let r = reconcile(
            Usd(dec!(500)),
            Usd(dec!(500)),
            0,
            Some(Usd(dec!(989))),
            None,
        );
        assert!(r.drifted);
    }

    #[test]
    fn without_a_broker_total_the_previous_snapshot_is_the_reference() {
        let r = reconcile(Usd(dec!(100)), Usd(dec!(0)), 1, None, Some(Usd(dec!(98))));
        assert_eq!(r.reference_source, Some(ReferenceSource::PreviousSnapshot));
        assert_eq!(r.drift_pct.map(|p| p.0.round_dp(4)), Some(dec!(2.0408)));
        assert!(r.drifted);
        assert_eq!(r.unpriced_positions, 1);
    }

    #[test]
    fn no_reference_is_no_drift_and_a_zero_reference_flags_any_total() {
        let r = reconcile(Usd(dec!(100)), Usd(dec!(0)), 0, None, None);
        assert_eq!(
            (r.reference_usd, r.drift_pct, r.drifted),
            (None, None, false)
        );
        let r = reconcile(Usd(dec!(100)), Usd(dec!(0)), 0, Some(Usd::ZERO), None);
        assert!(r.drifted);
        let r = reconcile(Usd::ZERO, Usd::ZERO, 0, Some(Usd::ZERO), None);
        assert!(!r.drifted);
    }
}

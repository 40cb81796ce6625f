//! Position-cap selection (DESIGN §3.4.2–4): over the cap, the smallest priced material positions
//! are sold — sorted by USD value ascending, ties by symbol — skipping the unsellable ones and
//! taking the next; unpriced positions are never candidates. When the sellable candidates run out
//! first, the cap is unreachable.

use nija_proto::plan::UnsellableReason;
use nija_proto::{Quantity, Usd};

use crate::dust::Valued;
use crate::sellable::sell_quantity;

/// Indices into the material list given to [`select`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapSelection {
    /// In selling order (smallest first), with the quantity to sell.
    pub sells: Vec<(usize, Quantity)>,
    /// Every unsellable material position, in candidate order.
    pub unsellable: Vec<(usize, UnsellableReason)>,
    /// Fewer sellable candidates than the excess.
    pub unreachable: bool,
}

/// Picks `excess` positions to sell from `material`. A sell must take a position below
/// `dust_threshold`, so that it really leaves the count.
pub(crate) fn select(material: &[Valued<'_>], excess: u32, dust_threshold: Usd) -> CapSelection {
    let mut order: Vec<usize> = (0..material.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&material[a], &material[b]);
        a.usd_value
            .cmp(&b.usd_value)
            .then_with(|| a.position.symbol.cmp(&b.position.symbol))
    });
    let wanted = usize::try_from(excess).unwrap_or(usize::MAX);
    let mut selection = CapSelection {
        sells: Vec::new(),
        unsellable: Vec::new(),
        unreachable: false,
    };
    for i in order {
        let candidate = &material[i];
        match sell_quantity(candidate.position, candidate.price, Some(dust_threshold)) {
            Ok(quantity) if selection.sells.len() < wanted => selection.sells.push((i, quantity)),
            Ok(_) => {}
            Err(reason) => selection.unsellable.push((i, reason)),
        }
    }
    selection.unreachable = selection.sells.len() < wanted;
    selection
}

#[cfg(test)]
mod tests {
    use crate::snapshot::CapLiquidation;
    use crate::testkit::*;
    use crate::{PolicyInput, enforce};
    use chrono::Duration;
    use nija_proto::ids::JobKind;
    use nija_proto::plan::{SellReason, UnsellableReason};
    use nija_proto::{ClientOrderId, Usd};
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn enforce_input(values: &[Decimal], cap: u32) -> PolicyInput {
        let positions = values
            .iter()
            .enumerate()
            .map(|(i, v)| priced_position(&format!("C{i:02}-USD"), *v))
            .collect();
        input(snapshot(positions), JobKind::Enforce, params(cap))
    }

    fn sold_values(input: &PolicyInput) -> Vec<Decimal> {
        let plan = enforce(input).unwrap().plan;
        plan.sells.iter().map(|s| s.usd_value.0).collect()
    }

    #[test]
    fn guide_twelve_positions_cap_eight_sells_the_four_smallest() {
        let values: Vec<Decimal> = (0..12).map(|i| Decimal::from(1000 - 50 * i)).collect();
        let input = enforce_input(&values, 8);
        let plan = enforce(&input).unwrap().plan;
        assert_eq!(
            (plan.count_before, plan.max_allowed, plan.excess),
            (12, 8, 4)
        );
        let sold: Vec<Decimal> = plan.sells.iter().map(|s| s.usd_value.0).collect();
        assert_eq!(
            sold,
            [dec!(450), dec!(500), dec!(550), dec!(600)],
            "smallest first"
        );
        let mut kept: Vec<Decimal> = plan.kept.iter().map(|k| k.usd_value.unwrap().0).collect();
        kept.sort();
        assert_eq!(
            kept,
            (0..8)
                .map(|i| Decimal::from(650 + 50 * i))
                .collect::<Vec<_>>()
        );
        assert!(plan.sells.iter().all(|s| s.reason == SellReason::Cap));
        assert!(!plan.cap_unreachable && plan.guard_refusal.is_none());
        for s in &plan.sells {
            assert_eq!(s.quantity.0, Decimal::ONE, "the whole available quantity");
            assert_eq!(
                s.client_order_id,
                ClientOrderId::derive(&account(), &input.job.job_id, &s.symbol)
            );
        }
    }

    #[test]
    fn guide_fifteen_positions_cap_eight_sells_the_seven_smallest() {
        let values: Vec<Decimal> = (0..15).map(|i| Decimal::from(100 + 10 * i)).collect();
        let sold = sold_values(&enforce_input(&values, 8));
        assert_eq!(
            sold,
            (0..7)
                .map(|i| Decimal::from(100 + 10 * i))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn at_or_under_the_cap_nothing_is_sold() {
        let values: Vec<Decimal> = (0..8).map(|i| Decimal::from(10 + i)).collect();
        let plan = enforce(&enforce_input(&values, 8)).unwrap().plan;
        assert_eq!((plan.excess, plan.sells.len(), plan.kept.len()), (0, 0, 8));
    }

    #[test]
    fn equal_values_are_ranked_by_symbol() {
        let input = input(
            snapshot(vec![
                priced_position("ZZZ-USD", dec!(50)),
                priced_position("AAA-USD", dec!(50)),
                priced_position("MMM-USD", dec!(500)),
            ]),
            JobKind::Enforce,
            params(2),
        );
        let plan = enforce(&input).unwrap().plan;
        assert_eq!(plan.sells.len(), 1);
        assert_eq!(plan.sells[0].symbol, sym("AAA-USD"));
    }

    #[test]
    fn unsellable_candidates_are_skipped_for_the_next() {
        let mut closed = priced_position("AAPL-USD", dec!(10));
        closed.market_open = false;
        let mut tiny = priced_position("DOGE-USD", dec!(20));
        tiny.rules.as_mut().unwrap().min_size = nija_proto::Quantity(dec!(5));
        let input = input(
            snapshot(vec![
                closed,
                tiny,
                priced_position("ETH-USD", dec!(30)),
                priced_position("BTC-USD", dec!(100)),
            ]),
            JobKind::Enforce,
            params(3),
        );
        let plan = enforce(&input).unwrap().plan;
        assert_eq!(
            plan.sells
                .iter()
                .map(|s| s.symbol.as_str())
                .collect::<Vec<_>>(),
            ["ETH-USD"]
        );
        let unsellable: Vec<(&str, UnsellableReason)> = plan
            .unsellable
            .iter()
            .map(|u| (u.symbol.as_str(), u.reason))
            .collect();
        assert_eq!(
            unsellable,
            [
                ("AAPL-USD", UnsellableReason::MarketClosed),
                ("DOGE-USD", UnsellableReason::BelowMinimumOrder)
            ]
        );
        assert!(!plan.cap_unreachable);
    }

    #[test]
    fn unpriced_and_unsellable_positions_can_make_the_cap_unreachable() {
        let mut closed = priced_position("AAPL-USD", dec!(10));
        closed.market_open = false;
        let mut input = input(
            snapshot(vec![
                closed,
                unpriced_position("XYZ-USD", dec!(5)),
                unpriced_position("QQQ-USD", dec!(5)),
                priced_position("ETH-USD", dec!(30)),
                priced_position("BTC-USD", dec!(1000)),
            ]),
            JobKind::Enforce,
            params(1),
        );
        input.job.force = true; // selling all that can be sold is more than the guard allows
        let plan = enforce(&input).unwrap().plan;
        assert_eq!((plan.count_before, plan.excess), (5, 4));
        assert_eq!(
            plan.sells
                .iter()
                .map(|s| s.symbol.as_str())
                .collect::<Vec<_>>(),
            ["ETH-USD", "BTC-USD"]
        );
        assert!(plan.cap_unreachable);
        assert_eq!(plan.unpriced.len(), 2);
    }

    #[test]
    fn the_guard_refuses_a_large_cap_liquidation_unless_forced() {
        // Cap 1 on 100 + 100 + 100: selling 200 of 300 exceeds half.
        let mut input = input(
            snapshot(vec![
                priced_position("A-USD", dec!(100)),
                priced_position("B-USD", dec!(100)),
                priced_position("C-USD", dec!(100)),
            ]),
            JobKind::Enforce,
            params(1),
        );
        let plan = enforce(&input).unwrap().plan;
        assert!(plan.sells.is_empty());
        let refusal = plan.guard_refusal.expect("refused");
        assert_eq!(
            (
                refusal.planned_usd,
                refusal.material_usd,
                refusal.allowed_usd
            ),
            (Usd(dec!(200)), Usd(dec!(300)), Usd(dec!(150)))
        );
        assert_eq!(refusal.refused_sells.len(), 2);
        assert_eq!(plan.kept.len(), 3);

        input.job.force = true;
        let plan = enforce(&input).unwrap().plan;
        assert_eq!(plan.sells.len(), 2);
        assert!(plan.guard_refusal.is_none() && plan.guard_overridden);
    }

    #[test]
    fn the_guard_counts_cap_liquidations_of_the_rolling_window() {
        let mut input = enforce_input(&[dec!(100), dec!(100), dec!(100), dec!(100)], 3);
        assert_eq!(sold_values(&input).len(), 1, "100 of 400 is within half");
        input.recent_liquidations = vec![CapLiquidation {
            at: now() - Duration::hours(2),
            usd_value: Usd(dec!(150)),
        }];
        let plan = enforce(&input).unwrap().plan;
        assert!(plan.sells.is_empty());
        assert_eq!(plan.guard_refusal.unwrap().window_sold_usd, Usd(dec!(150)));
        input.recent_liquidations[0].at = now() - Duration::hours(25);
        assert_eq!(
            sold_values(&input).len(),
            1,
            "outside the window it no longer counts"
        );
    }

    #[test]
    fn the_jobs_cap_override_wins() {
        let mut input = enforce_input(&[dec!(10), dec!(20), dec!(30)], 8);
        input.job.max_positions = Some(2);
        let plan = enforce(&input).unwrap().plan;
        assert_eq!((plan.max_allowed, plan.excess), (2, 1));
        assert_eq!(plan.sells[0].usd_value, Usd(dec!(10)));
    }
}

//! The two decisions a job asks for — enforce (cap, dust, guard) and exit sweep — each a plan plus
//! the state to persist. Both first adopt, classify and reconcile the same way.

use std::collections::BTreeMap;

use nija_proto::ids::JobKind;
use nija_proto::plan::{
    GuardRefusal, KeptPosition, Plan, PlannedSell, SellReason, UnpricedPosition, UnsellablePosition,
};
use nija_proto::state::TrackedPosition;
use nija_proto::{ClientOrderId, Quantity, Symbol, Usd};
use serde::{Deserialize, Serialize};

use crate::adoption::{adopt, raise_peak};
use crate::cap;
use crate::changes::{PeakUpdate, StateChanges};
use crate::dust::{Classified, Valued, classify};
use crate::error::PolicyError;
use crate::exits::{self, ExitInputs};
use crate::guard;
use crate::reconcile::reconcile;
use crate::sellable::sell_quantity;
use crate::snapshot::PolicyInput;

/// A plan and the state changes to persist with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub plan: Plan,
    pub changes: StateChanges,
}

/// Decides what `input.job.kind` asks for: exit sweeps run [`exit_sweep`], enforce and normalize
/// jobs run [`enforce`].
pub fn decide(input: &PolicyInput) -> Result<Decision, PolicyError> {
    match input.job.kind {
        JobKind::ExitSweep => exit_sweep(input),
        JobKind::Enforce | JobKind::Normalize => enforce(input),
    }
}

/// Cap enforcement (DESIGN §3.2–3.4, §3.7): blacklists new dust, sells the smallest sellable priced
/// material positions until the count fits `max_positions` (the job's override first), unless the
/// liquidation guard refuses; adopts untracked positions; reconciles the balance.
pub fn enforce(input: &PolicyInput) -> Result<Decision, PolicyError> {
    validate(input)?;
    let params = &input.params;
    let changes = StateChanges::from_adoption(adopt(
        &input.snapshot,
        &input.tracker,
        &[],
        params,
        input.now,
    ));
    let classified = classify(&input.snapshot, &input.blacklist, params, input.now);
    let max_allowed = input.job.max_positions.unwrap_or(params.max_positions);
    let excess = classified.count().saturating_sub(max_allowed);
    let selection = cap::select(&classified.material, excess, params.dust_threshold);

    let wanted: Vec<PlannedSell> = selection
        .sells
        .iter()
        .map(|&(i, quantity)| {
            let v = &classified.material[i];
            planned_sell(input, v, quantity, SellReason::Cap, Vec::new())
        })
        .collect();
    let planned_usd = wanted.iter().map(|s| s.usd_value).sum();
    let check = guard::check(
        planned_usd,
        classified.material_usd(),
        &input.recent_liquidations,
        params,
        input.now,
    );
    let over_guard = !wanted.is_empty() && check.exceeded();
    let guard_overridden = over_guard && input.job.force;
    let (sells, guard_refusal) = if over_guard && !input.job.force {
        let refusal = GuardRefusal {
            planned_usd: check.planned_usd,
            window_sold_usd: check.window_sold_usd,
            material_usd: check.material_usd,
            allowed_usd: check.allowed_usd,
            refused_sells: wanted,
        };
        (Vec::new(), Some(refusal))
    } else {
        (wanted, None)
    };

    let unsellable = selection
        .unsellable
        .iter()
        .map(|&(i, reason)| {
            let v = &classified.material[i];
            UnsellablePosition {
                symbol: v.position.symbol.clone(),
                quantity: v.position.quantity,
                usd_value: v.usd_value,
                reason,
                exit_fired: Vec::new(),
            }
        })
        .collect();
    let mut plan = base_plan(input, &classified, max_allowed, excess);
    plan.kept = kept(&classified, &sells);
    plan.sells = sells;
    plan.unsellable = unsellable;
    plan.cap_unreachable = selection.unreachable;
    plan.guard_refusal = guard_refusal;
    plan.guard_overridden = guard_overridden;
    Ok(Decision {
        plan,
        changes: with_blacklist(changes, &classified),
    })
}

/// Exit sweep (DESIGN §3.5): adopts, then evaluates every priced material position that has a
/// fresh, in-band price against its tracker record; persists new peaks; sells on any exit rule,
/// ordered by precedence. Stale, out-of-band and unpriced positions are not evaluated (the stale
/// ones are listed in `unpriced` with their reason and stay in `kept`). The liquidation guard does
/// not apply.
pub fn exit_sweep(input: &PolicyInput) -> Result<Decision, PolicyError> {
    validate(input)?;
    let params = &input.params;
    let mut changes = StateChanges::from_adoption(adopt(
        &input.snapshot,
        &input.tracker,
        &[],
        params,
        input.now,
    ));
    let mut tracker = input.tracker.clone();
    changes.apply(&mut Vec::new(), &mut tracker);
    let open: BTreeMap<&Symbol, &TrackedPosition> = tracker
        .iter()
        .filter(|t| t.is_open())
        .map(|t| (&t.symbol, t))
        .collect();

    let classified = classify(&input.snapshot, &input.blacklist, params, input.now);
    let max_allowed = input.job.max_positions.unwrap_or(params.max_positions);
    let excess = classified.count().saturating_sub(max_allowed);
    let mut plan = base_plan(input, &classified, max_allowed, excess);

    let mut sells = Vec::new();
    for v in &classified.material {
        let symbol = &v.position.symbol;
        let Some(record) = open.get(symbol) else {
            continue; // pending adoption: listed in `changes.pending_adoption`
        };
        let price = match v
            .position
            .price
            .fresh_price(input.now, params.max_price_age)
        {
            Ok(price) => price,
            Err(why) => {
                plan.unpriced.push(UnpricedPosition {
                    symbol: symbol.clone(),
                    quantity: v.position.quantity,
                    reason: why.reason(),
                });
                continue;
            }
        };
        if let Some(raised) = raise_peak(record, price) {
            changes.new_peaks.push(PeakUpdate {
                symbol: symbol.clone(),
                previous: record.peak,
                peak: price,
            });
            changes.upsert(raised);
        }
        let fired = exits::fired(
            &ExitInputs {
                entry_price: record.entry_price,
                entry_time: record.entry_time,
                peak: record.peak.max(price),
                price,
            },
            params,
            input.now,
        );
        let Some(&reason) = fired.first() else {
            continue;
        };
        match sell_quantity(v.position, price, None) {
            Ok(quantity) => {
                sells.push(planned_sell(input, v, quantity, reason, fired));
            }
            Err(unsellable) => plan.unsellable.push(UnsellablePosition {
                symbol: symbol.clone(),
                quantity: v.position.quantity,
                usd_value: v.usd_value,
                reason: unsellable,
                exit_fired: fired,
            }),
        }
    }
    sells.sort_by(|a, b| (a.reason, &a.symbol).cmp(&(b.reason, &b.symbol)));
    plan.unpriced.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    plan.kept = kept(&classified, &sells);
    plan.sells = sells;
    Ok(Decision {
        plan,
        changes: with_blacklist(changes, &classified),
    })
}

/// Refuses state of another account and duplicated symbols (DESIGN §7.10).
fn validate(input: &PolicyInput) -> Result<(), PolicyError> {
    let account = &input.snapshot.account;
    let mut seen = std::collections::BTreeSet::new();
    for p in &input.snapshot.positions {
        if !seen.insert(&p.symbol) {
            return Err(PolicyError::DuplicatePosition {
                account: account.clone(),
                symbol: p.symbol.clone(),
            });
        }
    }
    let blacklist = input
        .blacklist
        .iter()
        .map(|e| ("blacklist", &e.account, &e.symbol));
    let tracker = input
        .tracker
        .iter()
        .map(|t| ("tracker", &t.account, &t.symbol));
    let mut seen = std::collections::BTreeSet::new();
    for (what, owner, symbol) in blacklist.chain(tracker) {
        if owner != account {
            return Err(PolicyError::ForeignState {
                what,
                expected: account.clone(),
                found: owner.clone(),
                symbol: symbol.clone(),
            });
        }
        if !seen.insert((what, symbol)) {
            return Err(PolicyError::DuplicateState {
                what,
                account: account.clone(),
                symbol: symbol.clone(),
            });
        }
    }
    Ok(())
}

fn planned_sell(
    input: &PolicyInput,
    v: &Valued<'_>,
    quantity: Quantity,
    reason: SellReason,
    fired: Vec<SellReason>,
) -> PlannedSell {
    let symbol = &v.position.symbol;
    PlannedSell {
        symbol: symbol.clone(),
        quantity,
        price: v.price,
        usd_value: quantity * v.price,
        reason,
        fired,
        client_order_id: ClientOrderId::derive(&input.snapshot.account, &input.job.job_id, symbol),
    }
}

/// The plan's common part: counts, dust, unpriced, flagged, reconciliation.
fn base_plan(input: &PolicyInput, c: &Classified<'_>, max_allowed: u32, excess: u32) -> Plan {
    Plan {
        account: input.snapshot.account.clone(),
        job_id: input.job.job_id.clone(),
        kind: input.job.kind,
        decided_at: input.now,
        count_before: c.count(),
        max_allowed,
        excess,
        sells: Vec::new(),
        kept: Vec::new(),
        dust: c.dust.clone(),
        unpriced: c.unpriced.iter().map(|u| u.report()).collect(),
        unsellable: Vec::new(),
        flagged: c.flagged.clone(),
        cap_unreachable: false,
        guard_refusal: None,
        guard_overridden: false,
        reconciliation: Some(reconcile(
            c.cash_usd,
            c.priced_usd,
            u32::try_from(c.unpriced.len()).unwrap_or(u32::MAX),
            input.snapshot.broker_total,
            input.previous_total,
        )),
    }
}

/// Material positions the plan does not sell, sorted by symbol (unpriced ones without a value).
fn kept(c: &Classified<'_>, sells: &[PlannedSell]) -> Vec<KeptPosition> {
    let sold = |s: &Symbol| sells.iter().any(|p| &p.symbol == s);
    let priced = c
        .material
        .iter()
        .filter(|v| !sold(&v.position.symbol))
        .map(|v| (v.position, Some(v.usd_value)));
    let unpriced = c.unpriced.iter().map(|u| (u.position, None::<Usd>));
    let mut kept: Vec<KeptPosition> = priced
        .chain(unpriced)
        .map(|(p, usd_value)| KeptPosition {
            symbol: p.symbol.clone(),
            quantity: p.quantity,
            usd_value,
        })
        .collect();
    kept.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    kept
}

fn with_blacklist(mut changes: StateChanges, c: &Classified<'_>) -> StateChanges {
    changes.blacklist_additions = c.new_blacklist.clone();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{CapLiquidation, PriceObservation};
    use crate::testkit::*;
    use chrono::Duration;
    use nija_proto::plan::UnsellableReason;
    use nija_proto::state::EntryPriceSource;
    use nija_proto::{Price, Quantity};
    use rust_decimal_macros::dec;

    fn sweep(
        positions: Vec<crate::PositionSnapshot>,
        tracker: Vec<TrackedPosition>,
    ) -> PolicyInput {
        let mut input = input(snapshot(positions), JobKind::ExitSweep, params(8));
        input.tracker = tracker;
        input
    }

    fn sold(plan: &Plan) -> Vec<(&str, SellReason)> {
        plan.sells
            .iter()
            .map(|s| (s.symbol.as_str(), s.reason))
            .collect()
    }

    #[test]
    fn exits_are_listed_by_precedence_then_symbol() {
        let entered = now() - Duration::hours(1);
        let input = sweep(
            vec![
                priced_position("A-USD", dec!(110)),
                priced_position("B-USD", dec!(95)),
                priced_position("C-USD", dec!(100)),
                priced_position("D-USD", dec!(102)),
                priced_position("E-USD", dec!(90)),
            ],
            vec![
                tracked("A-USD", dec!(100), dec!(100), entered),
                tracked("B-USD", dec!(100), dec!(100), entered),
                tracked("C-USD", dec!(100), dec!(100), now() - Duration::hours(25)),
                tracked("D-USD", dec!(100), dec!(100), entered),
                tracked("E-USD", dec!(100), dec!(100), entered),
            ],
        );
        let decision = exit_sweep(&input).unwrap();
        let plan = decision.plan;
        assert_eq!(
            sold(&plan),
            [
                ("B-USD", SellReason::StopLoss),
                ("E-USD", SellReason::StopLoss),
                ("A-USD", SellReason::TakeProfit),
                ("C-USD", SellReason::MaxHold),
            ]
        );
        assert_eq!(
            plan.kept
                .iter()
                .map(|k| k.symbol.as_str())
                .collect::<Vec<_>>(),
            ["D-USD"]
        );
        let b = &plan.sells[0];
        assert_eq!(b.fired, [SellReason::StopLoss, SellReason::TrailingStop]);
        assert_eq!(b.quantity, Quantity(dec!(1)));
        assert_eq!(
            b.client_order_id,
            ClientOrderId::derive(&account(), &input.job.job_id, &b.symbol)
        );
        // A-USD at 110 and D-USD at 102 are new highs: persisted.
        let peaks: Vec<(&str, Price)> = decision
            .changes
            .tracker_upserts
            .iter()
            .map(|r| (r.symbol.as_str(), r.peak))
            .collect();
        assert_eq!(
            peaks,
            [("A-USD", Price(dec!(110))), ("D-USD", Price(dec!(102)))]
        );
        assert_eq!(decision.changes.new_peaks.len(), 2);
    }

    #[test]
    fn a_stale_or_out_of_band_price_is_treated_as_unpriced_for_exits() {
        let mut stale = priced_position("A-USD", dec!(50));
        stale.price = PriceObservation::Priced {
            price: Price(dec!(50)),
            bid: None,
            ask: None,
            observed_at: now() - Duration::seconds(31),
        };
        let mut outside = priced_position("B-USD", dec!(50));
        outside.price = PriceObservation::Priced {
            price: Price(dec!(200)),
            bid: Some(Price(dec!(49))),
            ask: Some(Price(dec!(51))),
            observed_at: now(),
        };
        let input = sweep(
            vec![stale, outside],
            vec![
                tracked("A-USD", dec!(100), dec!(100), now()),
                tracked("B-USD", dec!(100), dec!(100), now()),
            ],
        );
        let decision = exit_sweep(&input).unwrap();
        assert!(decision.plan.sells.is_empty());
        let reasons: Vec<(&str, &str)> = decision
            .plan
            .unpriced
            .iter()
            .map(|u| (u.symbol.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(reasons, [("A-USD", "stale"), ("B-USD", "outside_band")]);
        assert!(
            decision.changes.new_peaks.is_empty(),
            "a 200 outside the band is no peak"
        );
    }

    #[test]
    fn the_trailing_stop_measures_from_the_persisted_peak() {
        let input = sweep(
            vec![priced_position("A-USD", dec!(108))],
            vec![tracked(
                "A-USD",
                dec!(100),
                dec!(115),
                now() - Duration::hours(2),
            )],
        );
        let plan = exit_sweep(&input).unwrap().plan;
        assert_eq!(sold(&plan), [("A-USD", SellReason::TrailingStop)]);
        assert_eq!(
            plan.sells[0].fired,
            [SellReason::TrailingStop, SellReason::TakeProfit]
        );
    }

    #[test]
    fn the_liquidation_guard_never_holds_back_an_exit() {
        let mut input = sweep(
            vec![
                priced_position("A-USD", dec!(90)),
                priced_position("B-USD", dec!(90)),
            ],
            vec![
                tracked("A-USD", dec!(100), dec!(100), now()),
                tracked("B-USD", dec!(100), dec!(100), now()),
            ],
        );
        input.recent_liquidations = vec![CapLiquidation {
            at: now() - Duration::minutes(1),
            usd_value: Usd(dec!(1_000_000)),
        }];
        let plan = exit_sweep(&input).unwrap().plan;
        assert_eq!(plan.sells.len(), 2);
        assert!(plan.guard_refusal.is_none());
    }

    #[test]
    fn an_exit_that_cannot_be_sold_is_reported_with_the_rules_that_fired() {
        let mut closed = priced_position("AAPL-USD", dec!(90));
        closed.market_open = false;
        let input = sweep(
            vec![closed],
            vec![tracked("AAPL-USD", dec!(100), dec!(100), now())],
        );
        let plan = exit_sweep(&input).unwrap().plan;
        assert!(plan.sells.is_empty());
        assert_eq!(plan.unsellable.len(), 1);
        assert_eq!(plan.unsellable[0].reason, UnsellableReason::MarketClosed);
        assert_eq!(
            plan.unsellable[0].exit_fired,
            [SellReason::StopLoss, SellReason::TrailingStop]
        );
    }

    #[test]
    fn an_exit_sells_the_whole_available_quantity_even_if_some_is_held() {
        let mut p = priced_at("SOL-USD", dec!(10), dec!(90));
        p.available = Quantity(dec!(4));
        let mut record = tracked("SOL-USD", dec!(100), dec!(100), now());
        record.quantity = Quantity(dec!(10));
        let plan = exit_sweep(&sweep(vec![p], vec![record])).unwrap().plan;
        assert_eq!(plan.sells[0].quantity, Quantity(dec!(4)));
        assert_eq!(plan.sells[0].usd_value, Usd(dec!(360)));
    }

    #[test]
    fn a_position_found_untracked_is_adopted_and_judged_in_the_same_sweep() {
        let mut p = priced_position("AAPL-USD", dec!(90));
        p.avg_entry_price = Some(Price(dec!(100)));
        let decision = exit_sweep(&sweep(vec![p], vec![])).unwrap();
        assert_eq!(decision.changes.adopted, [sym("AAPL-USD")]);
        let record = &decision.changes.tracker_upserts[0];
        assert_eq!(record.entry_price_source, EntryPriceSource::BrokerAverage);
        assert_eq!(sold(&decision.plan), [("AAPL-USD", SellReason::StopLoss)]);
    }

    #[test]
    fn dust_and_unpriced_positions_are_never_exited() {
        let input = sweep(
            vec![
                priced_position("DUST-USD", dec!(0.50)),
                unpriced_position("XYZ-USD", dec!(1000)),
            ],
            vec![
                tracked("DUST-USD", dec!(100), dec!(100), now() - Duration::days(3)),
                tracked("XYZ-USD", dec!(100), dec!(100), now() - Duration::days(3)),
            ],
        );
        let decision = exit_sweep(&input).unwrap();
        assert!(decision.plan.sells.is_empty());
        assert_eq!(decision.plan.dust.len(), 1);
        assert_eq!(decision.changes.blacklist_additions.len(), 1);
        assert_eq!(decision.plan.unpriced[0].symbol, sym("XYZ-USD"));
    }

    #[test]
    fn decide_follows_the_job_kind() {
        let mut input = sweep(
            vec![
                priced_position("A-USD", dec!(90)),
                priced_position("B-USD", dec!(100)),
            ],
            vec![
                tracked("A-USD", dec!(100), dec!(100), now()),
                tracked("B-USD", dec!(100), dec!(100), now()),
            ],
        );
        input.params.max_positions = 1;
        assert_eq!(
            sold(&decide(&input).unwrap().plan),
            [("A-USD", SellReason::StopLoss)]
        );
        input.job = job(JobKind::Normalize);
        assert_eq!(
            sold(&decide(&input).unwrap().plan),
            [("A-USD", SellReason::Cap)]
        );
    }

    #[test]
    fn duplicate_positions_or_records_are_refused() {
        let p = priced_position("A-USD", dec!(10));
        let input = sweep(vec![p.clone(), p], vec![]);
        assert!(matches!(
            enforce(&input),
            Err(PolicyError::DuplicatePosition { .. })
        ));
        let mut input = sweep(vec![], vec![]);
        input.blacklist = vec![blacklisted("A-USD"), blacklisted("A-USD")];
        assert!(matches!(
            exit_sweep(&input),
            Err(PolicyError::DuplicateState { .. })
        ));
    }
}

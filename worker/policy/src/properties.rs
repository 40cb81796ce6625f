//! Property tests of the policy (DESIGN §6): on arbitrary accounts, a plan never sells an
//! unpriced, dust or kept position, never sells more than the guard allows unless forced, leaves
//! the count within the cap whenever enough sellable priced positions exist, is deterministic,
//! reports exits in precedence order; adoption applied twice equals adoption applied once.

use std::collections::BTreeMap;

use chrono::Duration;
use nija_proto::ids::JobKind;
use nija_proto::plan::{Plan, SellReason};
use nija_proto::state::TrackedPosition;
use nija_proto::{Pct, Price, Quantity, Usd};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::exits::{ExitInputs, fired};
use crate::snapshot::{CapLiquidation, PolicyInput, PositionSnapshot, PriceObservation, SizeRules};
use crate::testkit::*;
use crate::{StateChanges, adopt, enforce, exit_sweep, material_count};

/// A decimal `n / 10^scale` with `n` in `range`.
fn dec(range: std::ops::Range<i64>, scale: u32) -> impl Strategy<Value = Decimal> {
    range.prop_map(move |n| Decimal::new(n, scale))
}

fn price_observation() -> impl Strategy<Value = PriceObservation> {
    prop_oneof![
        6 => (dec(1..2_000_000, 2), 0i64..60, any::<bool>(), dec(0..300, 2)).prop_map(
            |(price, age, band, spread)| PriceObservation::Priced {
                price: Price(price),
                bid: band.then(|| Price(price - spread)),
                ask: band.then(|| Price(price + spread / Decimal::TWO)),
                observed_at: now() - Duration::seconds(age),
            }
        ),
        1 => Just(PriceObservation::Unpriced { reason: "price_fetch_failed".into() }),
        1 => dec(-100..1, 2).prop_map(|price| PriceObservation::Priced {
            price: Price(price),
            bid: None,
            ask: None,
            observed_at: now(),
        }),
    ]
}

fn rules() -> impl Strategy<Value = Option<SizeRules>> {
    prop_oneof![
        8 => (0u32..5, 0i64..4, proptest::option::weighted(0.2, dec(0..2000, 2))).prop_map(|(scale, min_steps, notional)| {
            let step = Quantity(Decimal::new(1, scale));
            Some(SizeRules {
                min_size: Quantity(step.0 * Decimal::from(min_steps)),
                size_increment: step,
                min_notional: notional.map(Usd),
            })
        }),
        1 => Just(None),
    ]
}

/// One holding: (position, blacklisted, tracker entry as (entry, peak above entry, held hours)).
type Holding = (PositionSnapshot, bool, Option<(Decimal, Decimal, i64)>);

fn holding(index: usize) -> impl Strategy<Value = Holding> {
    let position = (
        dec(0..5_000_000, 4),
        prop_oneof![3 => Just(100u32), 1 => 0u32..100],
        price_observation(),
        rules(),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.9),
        proptest::option::of(dec(1..200_000, 2)),
    )
        .prop_map(
            move |(quantity, available_pct, price, rules, tradable, open, avg)| {
                let available =
                    (quantity * Decimal::from(available_pct) / Decimal::ONE_HUNDRED).round_dp(4);
                PositionSnapshot {
                    symbol: sym(&format!("P{index:02}-USD")),
                    quantity: Quantity(quantity),
                    available: Quantity(available),
                    avg_entry_price: avg.map(Price),
                    price,
                    rules,
                    tradable,
                    market_open: open,
                }
            },
        );
    let tracked = proptest::option::of((dec(1..200_000, 2), dec(0..5_000, 2), 0i64..48));
    (position, prop::bool::weighted(0.2), tracked)
}

fn account_input(kind: JobKind) -> impl Strategy<Value = PolicyInput> {
    let holdings = (0usize..16).prop_flat_map(|n| (0..n).map(holding).collect::<Vec<_>>());
    let history = prop::collection::vec((0i64..48 * 60, dec(0..500_000, 2)), 0..3);
    (
        holdings,
        0u32..10,
        dec(1..500, 2),
        dec(0..101, 2),
        any::<bool>(),
        history,
    )
        .prop_map(move |(holdings, cap, dust, fraction, force, history)| {
            let mut p = params(cap);
            p.dust_threshold = Usd(dust);
            p.max_liquidation_fraction = fraction;
            let mut input = input(
                snapshot(holdings.iter().map(|h| h.0.clone()).collect()),
                kind,
                p,
            );
            input.job.force = force;
            input.blacklist = holdings
                .iter()
                .filter(|h| h.1)
                .map(|h| blacklisted(h.0.symbol.as_str()))
                .collect();
            input.tracker = holdings
                .iter()
                .filter_map(|(position, _, t)| {
                    t.map(|(entry, rise, held)| TrackedPosition {
                        quantity: position.quantity,
                        ..tracked(
                            position.symbol.as_str(),
                            entry,
                            entry + rise,
                            now() - Duration::hours(held),
                        )
                    })
                })
                .collect();
            input.recent_liquidations = history
                .into_iter()
                .map(|(minutes, usd)| CapLiquidation {
                    at: now() - Duration::minutes(minutes),
                    usd_value: Usd(usd),
                })
                .collect();
            input
        })
}

fn position<'a>(input: &'a PolicyInput, plan_symbol: &nija_proto::Symbol) -> &'a PositionSnapshot {
    input
        .snapshot
        .positions
        .iter()
        .find(|p| &p.symbol == plan_symbol)
        .expect("a sell names a held position")
}

/// The account after every planned sell filled completely.
fn after_fills(input: &PolicyInput, plan: &Plan) -> crate::AccountSnapshot {
    let mut reread = input.snapshot.clone();
    for sell in &plan.sells {
        let held = reread
            .positions
            .iter_mut()
            .find(|p| p.symbol == sell.symbol)
            .expect("held");
        held.quantity = held.quantity - sell.quantity;
        held.available = held.available - sell.quantity;
    }
    reread
}

fn priced_material_usd(input: &PolicyInput) -> Decimal {
    input
        .snapshot
        .positions
        .iter()
        .filter(|p| p.quantity > Quantity::ZERO)
        .filter_map(|p| p.price.value_price().ok().map(|price| p.quantity * price))
        .filter(|usd| *usd >= input.params.dust_threshold)
        .map(|usd| usd.0)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_plan_never_sells_an_unpriced_dust_or_kept_position(input in account_input(JobKind::Enforce)) {
        let plan = enforce(&input).unwrap().plan;
        for sell in &plan.sells {
            let held = position(&input, &sell.symbol);
            let price = held.price.value_price();
            prop_assert!(price.is_ok(), "sold unpriced {}", sell.symbol);
            prop_assert!(held.quantity * price.unwrap() >= input.params.dust_threshold, "sold dust {}", sell.symbol);
            prop_assert!(plan.kept.iter().all(|k| k.symbol != sell.symbol), "sold kept {}", sell.symbol);
            prop_assert!(plan.unpriced.iter().all(|u| u.symbol != sell.symbol));
            prop_assert!(plan.unsellable.iter().all(|u| u.symbol != sell.symbol));
            prop_assert!(sell.quantity > Quantity::ZERO && sell.quantity <= held.available);
            prop_assert_eq!(sell.reason, SellReason::Cap);
        }
        // Every material position is either sold or kept, once.
        prop_assert_eq!(plan.sells.len() + plan.kept.len(), plan.count_before as usize);
    }

    #[test]
    fn a_plan_never_sells_more_than_the_guard_allows_unless_forced(input in account_input(JobKind::Enforce)) {
        let plan = enforce(&input).unwrap().plan;
        let sold: Decimal = plan.sells.iter().map(|s| s.usd_value.0).sum();
        let since = input.now - input.params.liquidation_window;
        let window: Decimal = input
            .recent_liquidations
            .iter()
            .filter(|l| l.at > since)
            .map(|l| l.usd_value.0)
            .sum();
        let allowed = input.params.max_liquidation_fraction * priced_material_usd(&input);
        if !input.job.force {
            prop_assert!(plan.sells.is_empty() || window + sold <= allowed,
                "sold {sold} with {window} in the window, allowed {allowed}");
            prop_assert!(!plan.guard_overridden);
        }
        if let Some(refusal) = &plan.guard_refusal {
            prop_assert!(plan.sells.is_empty());
            prop_assert!(!input.job.force);
            prop_assert!(refusal.window_sold_usd.0 + refusal.planned_usd.0 > refusal.allowed_usd.0);
        }
    }

    #[test]
    fn count_after_the_plan_is_within_the_cap_when_reachable(input in account_input(JobKind::Enforce)) {
        let plan = enforce(&input).unwrap().plan;
        let after = material_count(&after_fills(&input, &plan), &input.blacklist, &input.params).unwrap();
        if !plan.cap_unreachable && plan.guard_refusal.is_none() {
            prop_assert!(after <= plan.max_allowed, "{after} left, cap {}", plan.max_allowed);
        }
        // Reachable exactly when enough sellable priced material positions exist.
        let sellable = plan.count_before as usize - plan.unpriced.len() - plan.unsellable.len();
        prop_assert_eq!(plan.cap_unreachable, sellable < plan.excess as usize);
        prop_assert_eq!(after as usize, plan.count_before as usize - plan.sells.len());
    }

    #[test]
    fn with_enough_sellable_priced_positions_a_forced_plan_reaches_the_cap(
        values in prop::collection::vec((dec(1..1_000_000, 4), dec(1..100_000, 2)), 0..20),
        cap in 0u32..10,
        force in any::<bool>(),
    ) {
        let positions = values
            .iter()
            .enumerate()
            .map(|(i, (quantity, price))| priced_at(&format!("S{i:02}-USD"), *quantity, *price))
            .collect();
        let mut input = input(snapshot(positions), JobKind::Enforce, params(cap));
        input.job.force = force;
        let plan = enforce(&input).unwrap().plan;
        prop_assert!(!plan.cap_unreachable);
        let after = material_count(&after_fills(&input, &plan), &input.blacklist, &input.params).unwrap();
        if plan.guard_refusal.is_none() {
            prop_assert!(after <= cap, "{after} left, cap {cap}");
            prop_assert_eq!(after, plan.count_before.min(cap));
        } else {
            prop_assert!(!force);
            prop_assert_eq!(after, plan.count_before);
        }
    }

    #[test]
    fn plans_are_deterministic_whatever_the_input_order(input in account_input(JobKind::Enforce), sweep in any::<bool>()) {
        let mut input = input;
        if sweep {
            input.job = job(JobKind::ExitSweep);
        }
        let run = |i: &PolicyInput| if sweep { exit_sweep(i) } else { enforce(i) };
        let first = run(&input).unwrap();
        prop_assert_eq!(&first, &run(&input).unwrap());
        let mut shuffled = input.clone();
        shuffled.snapshot.positions.reverse();
        shuffled.blacklist.reverse();
        shuffled.tracker.reverse();
        prop_assert_eq!(&first, &run(&shuffled).unwrap());
    }

    #[test]
    fn exits_are_reported_in_precedence_order(input in account_input(JobKind::ExitSweep)) {
        let decision = exit_sweep(&input).unwrap();
        let plan = &decision.plan;
        let keys: Vec<(SellReason, &str)> = plan.sells.iter().map(|s| (s.reason, s.symbol.as_str())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(keys, sorted);
        let fresh: BTreeMap<_, _> = input
            .snapshot
            .positions
            .iter()
            .filter_map(|p| p.price.fresh_price(input.now, input.params.max_price_age).ok().map(|price| (&p.symbol, price)))
            .collect();
        for sell in &plan.sells {
            prop_assert!(!sell.fired.is_empty());
            prop_assert_eq!(sell.reason, sell.fired[0]);
            prop_assert!(sell.fired.windows(2).all(|w| w[0] < w[1]), "{:?}", sell.fired);
            prop_assert!(sell.reason != SellReason::Cap);
            prop_assert_eq!(fresh.get(&sell.symbol), Some(&sell.price), "exit on an untrusted price");
            prop_assert!(sell.quantity <= position(&input, &sell.symbol).available);
        }
        prop_assert!(plan.guard_refusal.is_none());
    }

    #[test]
    fn adoption_applied_twice_equals_once(input in account_input(JobKind::Enforce), sold_mask in any::<u16>()) {
        let sold: Vec<_> = input
            .tracker
            .iter()
            .enumerate()
            .filter(|(i, _)| sold_mask & (1 << i) != 0)
            .map(|(_, t)| t.symbol.clone())
            .collect();
        let outcome = adopt(&input.snapshot, &input.tracker, &sold, &input.params, input.now);
        let changes = StateChanges::from_adoption(outcome.clone());
        let (mut blacklist, mut once) = (Vec::new(), input.tracker.clone());
        changes.apply(&mut blacklist, &mut once);
        let mut twice = once.clone();
        changes.apply(&mut blacklist, &mut twice);
        prop_assert_eq!(&once, &twice);
        // Adopting again changes nothing; what had to wait still waits.
        let again = adopt(&input.snapshot, &once, &sold, &input.params, input.now);
        prop_assert_eq!(
            again,
            crate::AdoptionOutcome { pending: outcome.pending, ..Default::default() }
        );
        // Quantities are the broker's, never sums.
        for record in once.iter().filter(|r| r.is_open()) {
            let held = position(&input, &record.symbol);
            prop_assert_eq!(record.quantity, held.quantity);
        }
    }

    #[test]
    fn stop_loss_and_take_profit_compare_percentages(
        entry in dec(1..100_000, 2),
        price in dec(1..100_000, 2),
        stop in dec(1..5000, 2),
        take in dec(1..5000, 2),
    ) {
        let mut p = params(8);
        p.stop_loss_pct = Pct(stop);
        p.take_profit_pct = Pct(take);
        let got = fired(
            &ExitInputs { entry_price: Price(entry), entry_time: now(), peak: Price(entry.max(price)), price: Price(price) },
            &p,
            now(),
        );
        let pnl = (price - entry) / entry * Decimal::ONE_HUNDRED;
        prop_assert_eq!(got.contains(&SellReason::StopLoss), pnl <= -stop);
        prop_assert_eq!(got.contains(&SellReason::TakeProfit), pnl >= take);
    }
}

/// Any decimal at all, from the tiniest to the largest, either sign.
fn wild() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28
        )
            .prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(
                lo, mid, hi, negative, scale
            )),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
        Just(Decimal::new(1, 28)),
    ]
}

fn garbage_position(index: usize) -> impl Strategy<Value = PositionSnapshot> {
    (
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
        proptest::option::of(wild()),
        any::<bool>(),
    )
        .prop_map(
            move |(quantity, available, price, step, min, notional, avg, band)| PositionSnapshot {
                symbol: sym(&format!("G{index:02}-USD")),
                quantity: Quantity(quantity),
                available: Quantity(available),
                avg_entry_price: avg.map(Price),
                price: PriceObservation::Priced {
                    price: Price(price),
                    bid: band.then_some(Price(min)),
                    ask: band.then_some(Price(notional)),
                    observed_at: now(),
                },
                rules: Some(SizeRules {
                    min_size: Quantity(min),
                    size_increment: Quantity(step),
                    min_notional: Some(Usd(notional)),
                }),
                tradable: true,
                market_open: true,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Broker garbage (absurd quantities, prices, steps, totals; tracker entries and history from
    /// outside) gives a plan, never a panic (DESIGN R6), and never a sell above the plausible value.
    #[test]
    fn garbage_numbers_never_panic(
        positions in (0usize..6).prop_flat_map(|n| (0..n).map(garbage_position).collect::<Vec<_>>()),
        cash in wild(),
        total in proptest::option::of(wild()),
        previous in proptest::option::of(wild()),
        entry in wild(),
        peak in wild(),
        liquidation in wild(),
        fraction in wild(),
        force in any::<bool>(),
    ) {
        let mut p = params(1);
        p.max_liquidation_fraction = fraction;
        let mut snap = snapshot(positions);
        snap.cash.insert("USD".into(), Usd(cash));
        snap.cash.insert("USDC".into(), Usd(cash));
        snap.broker_total = total.map(Usd);
        for kind in [JobKind::Enforce, JobKind::ExitSweep] {
            let mut input = input(snap.clone(), kind, p.clone());
            input.job.force = force;
            input.previous_total = previous.map(Usd);
            input.tracker = snap
                .positions
                .iter()
                .map(|pos| TrackedPosition {
                    entry_price: Price(entry),
                    peak: Price(peak),
                    ..tracked(pos.symbol.as_str(), Decimal::ONE, Decimal::ONE, now())
                })
                .collect();
            input.recent_liquidations = vec![CapLiquidation { at: now(), usd_value: Usd(liquidation) }];
            let decision = crate::decide(&input).unwrap();
            for sell in &decision.plan.sells {
                prop_assert!(sell.usd_value <= crate::math::MAX_POSITION_USD);
                prop_assert!(sell.quantity > Quantity::ZERO);
            }
            material_count(&snap, &[], &p).unwrap();
        }
    }
}

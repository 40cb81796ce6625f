//! One test per failure of the original system that the policy must make impossible
//! (DESIGN §7, items 2, 5, 6, 9 and 10). Each test's name says which failure it rules out.

use chrono::Duration;
use nija_proto::ids::JobKind;
use nija_proto::plan::{AccountType, SellReason};
use nija_proto::state::{AdoptionStatus, EntryPriceSource, PositionSource};
use nija_proto::{AccountId, Pct, Price, Quantity, Usd};
use rust_decimal_macros::dec;

use crate::exits::{ExitInputs, fired};
use crate::snapshot::PriceObservation;
use crate::testkit::*;
use crate::{PolicyError, enforce, exit_sweep, material_count};

/// §7.2: a $1.00 fallback price ranked unpriceable holdings as dust; a later version valued them
/// at 0 and sold them first.
#[test]
fn unpriced_large_holding_is_never_ranked_as_dust_7_2() {
    let mut zero = priced_at("ZERO-USD", dec!(50000), dec!(0));
    zero.available = zero.quantity;
    let mut input = input(
        snapshot(vec![
            unpriced_position("WHALE-USD", dec!(1000000)),
            zero,
            priced_position("SMALL-USD", dec!(20)),
            priced_position("MID-USD", dec!(30)),
            priced_position("BIG-USD", dec!(500)),
        ]),
        JobKind::Enforce,
        params(3),
    );
    input.job.force = true;
    let decision = enforce(&input).unwrap();
    let plan = &decision.plan;
    // Both count toward the cap, neither is dust, blacklisted, ranked or sold.
    assert_eq!(plan.count_before, 5);
    assert!(plan.dust.is_empty());
    assert!(decision.changes.blacklist_additions.is_empty());
    let unpriced: Vec<(&str, &str)> = plan
        .unpriced
        .iter()
        .map(|u| (u.symbol.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(
        unpriced,
        [
            ("WHALE-USD", "price_fetch_failed"),
            ("ZERO-USD", "non_positive_price")
        ]
    );
    // The two smallest *priced* positions go; the unpriced ones stay, valued at nothing.
    let sold: Vec<&str> = plan.sells.iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(sold, ["SMALL-USD", "MID-USD"]);
    for symbol in ["WHALE-USD", "ZERO-USD"] {
        let kept = plan
            .kept
            .iter()
            .find(|k| k.symbol.as_str() == symbol)
            .unwrap();
        assert_eq!(kept.usd_value, None);
    }
    // Not adopted at a guessed price either.
    assert_eq!(decision.changes.pending_adoption.len(), 2);
}

/// §7.5: a stop-loss joined two conditions with AND; profit targets in percent were compared
/// with fractions.
#[test]
fn stop_loss_fires_on_either_condition_not_both_7_5() {
    let p = params(8);
    let judge = |entry, peak, price, held_hours| {
        fired(
            &ExitInputs {
                entry_price: Price(entry),
                entry_time: now() - Duration::hours(held_hours),
                peak: Price(peak),
                price: Price(price),
            },
            &p,
            now(),
        )
    };
    // The loss alone is enough: no drawdown from a higher peak, no time condition needed.
    let mut tight = p.clone();
    tight.trailing_stop_pct = Pct(dec!(50));
    let alone = fired(
        &ExitInputs {
            entry_price: Price(dec!(100)),
            entry_time: now(),
            peak: Price(dec!(100)),
            price: Price(dec!(96.5)),
        },
        &tight,
        now(),
    );
    assert_eq!(alone, [SellReason::StopLoss]);
    // Each other rule fires alone too.
    assert_eq!(
        judge(dec!(100), dec!(100), dec!(100), 30),
        [SellReason::MaxHold]
    );
    assert_eq!(
        judge(dec!(100), dec!(110), dec!(104), 1),
        [SellReason::TrailingStop]
    );
    assert_eq!(
        judge(dec!(100), dec!(100), dec!(109), 1),
        [SellReason::TakeProfit]
    );
    // 3.0 means three percent: a 0.1% dip is no stop-loss (it would be against the fraction 0.03),
    // and 8.0 means eight percent: +0.5% is no take-profit (it would be against 0.08).
    assert!(judge(dec!(100), dec!(100), dec!(99.9), 1).is_empty());
    assert!(judge(dec!(100), dec!(100.5), dec!(100.5), 1).is_empty());
}

/// §7.6: adoption ran every cycle and added the quantity again; entry prices were synthesised as
/// `current × 1.01`, which flagged every adopted position as a loser.
#[test]
fn adoption_is_idempotent_and_never_synthesises_entry_price_7_6() {
    let mut with_average = priced_at("AAPL-USD", dec!(10), dec!(190));
    with_average.avg_entry_price = Some(Price(dec!(185)));
    let mut input = input(
        snapshot(vec![with_average, priced_at("BTC-USD", dec!(2), dec!(100))]),
        JobKind::ExitSweep,
        params(8),
    );
    let first = exit_sweep(&input).unwrap();
    // The adoption price is the observed price, recorded as such; nothing fires on adoption.
    assert!(first.plan.sells.is_empty());
    let records = &first.changes.tracker_upserts;
    assert_eq!(records.len(), 2);
    let aapl = &records[0];
    assert_eq!(
        (aapl.entry_price, aapl.entry_price_source),
        (Price(dec!(185)), EntryPriceSource::BrokerAverage)
    );
    let btc = &records[1];
    assert_eq!(
        (btc.entry_price, btc.entry_price_source),
        (Price(dec!(100)), EntryPriceSource::AdoptionPrice)
    );
    assert!(
        records
            .iter()
            .all(|r| r.source == PositionSource::BrokerExisting
                && r.adoption_status == AdoptionStatus::Adopted
                && r.tracked)
    );

    // Persist, run again (and again): nothing more to adopt, quantities unchanged.
    first
        .changes
        .apply(&mut input.blacklist, &mut input.tracker);
    let once = input.tracker.clone();
    for minutes in 1..=3 {
        input.now = now() + Duration::minutes(minutes);
        for position in &mut input.snapshot.positions {
            if let PriceObservation::Priced { observed_at, .. } = &mut position.price {
                *observed_at = input.now;
            }
        }
        let again = exit_sweep(&input).unwrap();
        assert!(again.changes.adopted.is_empty());
        again
            .changes
            .apply(&mut input.blacklist, &mut input.tracker);
        assert_eq!(input.tracker, once);
    }
    assert_eq!(input.tracker[1].quantity, Quantity(dec!(2)));
}

/// §7.9: dust thresholds of $1, $3 and $5 and caps of 5, 7, 8 and 10 lived in different modules.
#[test]
fn one_parameter_set_read_in_one_place_7_9() {
    let mut p = params(2);
    p.dust_threshold = Usd(dec!(3.00));
    let mut snap = snapshot(vec![
        priced_position("TWO-USD", dec!(2.99)),
        priced_position("A-USD", dec!(3.00)),
        priced_position("B-USD", dec!(40)),
        priced_position("C-USD", dec!(50)),
    ]);
    // A USER account takes its cap from the parameters, not from a default of its own.
    snap.account_type = AccountType::User;
    let mut enforce_input = input(snap.clone(), JobKind::Enforce, p.clone());
    enforce_input.job.force = true;
    let enforced = enforce(&enforce_input).unwrap().plan;
    let swept = exit_sweep(&input(snap.clone(), JobKind::ExitSweep, p.clone()))
        .unwrap()
        .plan;
    // The same threshold and cap everywhere: enforce, exit sweep and verification.
    assert_eq!(enforced.dust[0].symbol.as_str(), "TWO-USD");
    assert_eq!(swept.dust[0].symbol.as_str(), "TWO-USD");
    assert_eq!(enforced.count_before, 3);
    assert_eq!(swept.count_before, 3);
    assert_eq!(material_count(&snap, &[], &p).unwrap(), 3);
    assert_eq!((enforced.max_allowed, swept.max_allowed), (2, 2));
    assert_eq!(enforced.sells[0].symbol.as_str(), "A-USD");
    // Changing the one parameter set changes every decision alike.
    p.dust_threshold = Usd(dec!(1.00));
    p.max_positions = 5;
    assert_eq!(material_count(&snap, &[], &p).unwrap(), 4);
    let plan = enforce(&input(snap, JobKind::Enforce, p)).unwrap().plan;
    assert_eq!(
        (plan.count_before, plan.max_allowed, plan.sells.len()),
        (4, 5, 0)
    );
}

/// §7.10: one blacklist shared by every account, keyed by symbol: dust BTC in one account hid a
/// large BTC position in another.
#[test]
fn state_is_keyed_by_account_7_10() {
    let other = AccountId::new("acct-2").unwrap();
    // Account 1 holds dust BTC and blacklists it.
    let dusty = input(
        snapshot(vec![priced_position("BTC-USD", dec!(0.40))]),
        JobKind::Enforce,
        params(8),
    );
    let entry = enforce(&dusty)
        .unwrap()
        .changes
        .blacklist_additions
        .remove(0);
    assert_eq!(entry.account, account());
    assert_eq!(entry.key(), "acct-1.BTC-USD");

    // Account 2 holds a large BTC position: its decision never sees account 1's entry.
    let mut snap = snapshot(vec![
        priced_at("BTC-USD", dec!(1), dec!(60000)),
        priced_position("ETH-USD", dec!(3000)),
    ]);
    snap.account = other.clone();
    let mut big = input(snap.clone(), JobKind::Enforce, params(1));
    big.job.force = true;
    let plan = enforce(&big).unwrap().plan;
    assert_eq!(plan.count_before, 2);
    assert!(plan.flagged.is_empty() && plan.dust.is_empty());
    assert_eq!(plan.sells[0].symbol.as_str(), "ETH-USD");
    // Handing it account 1's entry by mistake is refused, not silently applied.
    big.blacklist = vec![entry];
    assert!(matches!(
        enforce(&big),
        Err(PolicyError::ForeignState { found, expected, .. }) if found == account() && expected == other
    ));
    assert!(material_count(&snap, &big.blacklist, &params(1)).is_err());
    let mut foreign_tracker = tracked("BTC-USD", dec!(1), dec!(1), now());
    foreign_tracker.account = account();
    big.blacklist.clear();
    big.tracker = vec![foreign_tracker];
    assert!(matches!(
        exit_sweep(&big),
        Err(PolicyError::ForeignState {
            what: "tracker",
            ..
        })
    ));
    // Records this account writes carry its id and key prefix.
    big.tracker.clear();
    let adopted = enforce(&big).unwrap().changes.tracker_upserts;
    assert!(
        adopted
            .iter()
            .all(|r| r.account == other && r.key().starts_with("acct-2."))
    );
}

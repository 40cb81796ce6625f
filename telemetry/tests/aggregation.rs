//! Per-type figures are exact decimal sums over the fleet, converted once; scrapes running while
//! results arrive always see whole figures.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use nija_proto::plan::AccountType;
use nija_proto::{AccountId, Usd};
use nija_telemetry::{AccountFigures, AccountLabels, CoordinatorMetrics, render};
use prometheus::Registry;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn figures(cents: i64, positions: u32) -> AccountFigures {
    let usd = Usd(Decimal::new(cents, 2));
    AccountFigures {
        active_positions: positions,
        max_positions: 5,
        total_balance: Some(usd),
        position_value: Some(usd),
        free_capital: Some(Usd::ZERO),
        largest_position: Some(usd),
        smallest_position: Some(usd),
        ..AccountFigures::default()
    }
}

proptest! {
    #[test]
    fn sums_are_exact_decimals_converted_once(
        accounts in proptest::collection::vec((0i64..1_000_000_000, 0u32..20), 1..200)
    ) {
        let registry = Registry::new();
        let metrics = CoordinatorMetrics::register(&registry, AccountLabels::default()).unwrap();
        let mut total = Decimal::ZERO;
        let mut active = 0u64;
        for (i, (cents, positions)) in accounts.iter().enumerate() {
            let id = AccountId::new(format!("user-{i:04}")).unwrap();
            metrics.accounts.record(&id, AccountType::User, figures(*cents, *positions));
            total += Decimal::new(*cents, 2);
            active += u64::from(*positions);
        }
        let text = render(&registry);
        let expected = nija_telemetry::metrics::usd(Usd(total));
        prop_assert_eq!(sample(&text, r#"nija_balance_total_usd{account_type="user"}"#), Some(expected));
        prop_assert_eq!(sample(&text, r#"nija_positions_active{account_type="user"}"#), Some(active as f64));
        let over = accounts.iter().filter(|(_, p)| *p > 5).count();
        prop_assert_eq!(sample(&text, r#"nija_accounts_over_cap{account_type="user"}"#), Some(over as f64));
        let max = accounts.iter().map(|(c, _)| *c).max().unwrap();
        let min = accounts.iter().map(|(c, _)| *c).min().unwrap();
        prop_assert_eq!(
            sample(&text, r#"nija_position_largest_usd{account_type="user"}"#),
            Some(nija_telemetry::metrics::usd(Usd(Decimal::new(max, 2))))
        );
        prop_assert_eq!(
            sample(&text, r#"nija_position_smallest_usd{account_type="user"}"#),
            Some(nija_telemetry::metrics::usd(Usd(Decimal::new(min, 2))))
        );
    }
}

#[test]
fn scrapes_during_updates_see_every_account() {
    let registry = Registry::new();
    let metrics =
        Arc::new(CoordinatorMetrics::register(&registry, AccountLabels::default()).unwrap());
    let ids: Vec<AccountId> = (0..50)
        .map(|i| AccountId::new(format!("user-{i:04}")).unwrap())
        .collect();
    for id in &ids {
        metrics
            .accounts
            .record(id, AccountType::User, figures(100, 1));
    }
    std::thread::scope(|scope| {
        let writer = {
            let metrics = metrics.clone();
            let ids = ids.clone();
            scope.spawn(move || {
                for round in 0..200 {
                    for id in &ids {
                        metrics
                            .accounts
                            .record(id, AccountType::User, figures(100 + round, 1));
                    }
                }
            })
        };
        for _ in 0..200 {
            let text = render(&registry);
            // Every scrape sees all 50 accounts, never a half-reset set of gauges.
            assert_eq!(
                sample(&text, r#"nija_accounts{account_type="user"}"#),
                Some(50.0)
            );
            assert_eq!(
                sample(&text, r#"nija_positions_active{account_type="user"}"#),
                Some(50.0)
            );
        }
        writer.join().unwrap();
    });
}

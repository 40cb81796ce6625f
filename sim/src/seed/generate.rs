//! Generated fleets: `--accounts N --positions M --seed S`, deterministic for a seed.
//!
//! Accounts spread over the three brokers; some hold more positions than their cap and some hold
//! dust, so every policy path has something to do.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::scenario::{Scenario, ScenarioAccount, ScenarioHolding};
use crate::broker::Broker;
use crate::exchange::account::AccountType;
use crate::market::instruments::{AssetClass, default_universe};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generate {
    /// Number of accounts, the PLATFORM account (`platform`, on Kraken) included.
    pub accounts: usize,
    /// Mean number of positions per account.
    pub positions: usize,
    pub seed: u64,
}

fn random_decimal(rng: &mut StdRng, low_cents: i64, high_cents: i64) -> Decimal {
    Decimal::new(rng.random_range(low_cents..=high_cents), 2)
}

/// A scenario with `spec.accounts` accounts.
pub fn generate(spec: Generate) -> Scenario {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let universe = default_universe();
    let mut accounts = Vec::with_capacity(spec.accounts);
    for index in 0..spec.accounts {
        let (id, kind, broker) = if index == 0 {
            (
                "platform".to_string(),
                AccountType::Platform,
                Broker::Kraken,
            )
        } else {
            (
                format!("user-{index:04}"),
                AccountType::User,
                Broker::ALL[(index - 1) % 3],
            )
        };
        let listed: Vec<&(crate::market::instruments::Instrument, Decimal)> = universe
            .iter()
            .filter(|(i, _)| i.listed_at(broker))
            .collect();
        let spread = spec.positions / 2;
        let count = rng
            .random_range(spec.positions.saturating_sub(spread)..=spec.positions + spread)
            .min(listed.len());
        let mut picks: Vec<usize> = (0..listed.len()).collect();
        for i in 0..count {
            let j = rng.random_range(i..picks.len());
            picks.swap(i, j);
        }
        let mut holdings = Vec::with_capacity(count);
        for &pick in &picks[..count] {
            let (instrument, price) = listed[pick];
            let dust = rng.random_range(0..5) == 0;
            let value = if dust {
                random_decimal(&mut rng, 5, 95)
            } else {
                random_decimal(&mut rng, 500, 50_000)
            };
            let decimals = if instrument.class == AssetClass::UsEquity {
                4
            } else {
                8
            };
            let quantity = (value / price).round_dp(decimals);
            if quantity.is_zero() {
                continue;
            }
            let drift = Decimal::new(rng.random_range(-1000..=1000), 4);
            holdings.push(ScenarioHolding {
                asset: instrument.base.clone(),
                quantity: quantity.normalize(),
                avg_entry: Some((price * (Decimal::ONE + drift)).round_dp(8).normalize()),
            });
        }
        accounts.push(ScenarioAccount {
            id,
            kind,
            broker,
            cash: random_decimal(&mut rng, 10_000, 1_000_000),
            holdings,
        });
    }
    Scenario {
        seed: Some(spec.seed),
        accounts,
        ..Scenario::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let spec = Generate {
            accounts: 30,
            positions: 7,
            seed: 11,
        };
        let a = generate(spec);
        assert_eq!(a, generate(spec));
        assert_eq!(a.accounts[0].id, "platform");
        assert_eq!(a.accounts[1].id, "user-0001");
        let brokers: std::collections::BTreeSet<_> = a.accounts.iter().map(|x| x.broker).collect();
        assert_eq!(brokers.len(), 3);
        assert!(
            a.accounts
                .iter()
                .any(|x| x.kind == AccountType::User && x.holdings.len() > 5)
        );
        assert!(
            a.accounts
                .iter()
                .any(|x| x.kind == AccountType::User && x.holdings.len() <= 5)
        );
        let universe = default_universe();
        let dust = a.accounts.iter().flat_map(|x| &x.holdings).any(|h| {
            let price = universe
                .iter()
                .find(|(i, _)| i.base == h.asset)
                .map(|(_, p)| *p)
                .unwrap_or_default();
            h.quantity * price < Decimal::ONE
        });
        assert!(dust);
        assert_ne!(a, generate(Generate { seed: 12, ..spec }));
    }
}

//! Simulator fleets with a known answer: every holding's value is chosen, so a test knows exactly
//! which positions a correct enforce sells and which it blacklists, independently of the policy
//! code under test.

use std::collections::{BTreeMap, BTreeSet};

use nija_sim::{AccountType, Broker, Scenario, ScenarioAccount, ScenarioHolding};
use rust_decimal::Decimal;

/// Symbols used by the fleets, with their frozen prices (all crypto: listed at every broker and
/// tradable at any hour).
pub const PRICES: [(&str, i64); 12] = [
    ("BTC", 64000),
    ("ETH", 3400),
    ("SOL", 150),
    ("LTC", 80),
    ("LINK", 15),
    ("AVAX", 35),
    ("BCH", 450),
    ("AAVE", 95),
    ("DOT", 7),
    ("UNI", 8),
    ("ATOM", 9),
    ("NEAR", 5),
];

/// What a correct enforce round does to a fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Symbols sold per account (the smallest material positions beyond the cap).
    pub sells: BTreeMap<String, BTreeSet<String>>,
    /// Symbols blacklisted as dust per account.
    pub dust: BTreeMap<String, BTreeSet<String>>,
    /// The cap of each account.
    pub caps: BTreeMap<String, u32>,
    /// Quantity held of each (account, symbol).
    pub quantities: BTreeMap<(String, String), Decimal>,
}

/// `accounts` accounts (the first is `platform` on Kraken with cap 8, the others `user-NNNN`
/// round-robin over Coinbase, Kraken and Alpaca with cap 5), each holding three positions more
/// than its cap plus dust (two for users, one for the platform).
pub fn over_cap_with_dust(accounts: usize) -> (Scenario, Expected) {
    let mut scenario = Scenario {
        market_open: Some(true),
        ..Default::default()
    };
    for (base, price) in PRICES {
        scenario
            .prices
            .insert(format!("{base}-USD"), Decimal::from(price));
    }
    let mut expected = Expected::default();
    for i in 0..accounts {
        let (id, kind, broker, cap, dust_count) = if i == 0 {
            (
                "platform".to_string(),
                AccountType::Platform,
                Broker::Kraken,
                8u32,
                1usize,
            )
        } else {
            (
                format!("user-{i:04}"),
                AccountType::User,
                Broker::ALL[(i - 1) % 3],
                5u32,
                2usize,
            )
        };
        let material = cap as usize + 3;
        let mut holdings = Vec::new();
        for j in 0..material + dust_count {
            let (base, price) = PRICES[(i + j) % PRICES.len()];
            let price = Decimal::from(price);
            let value = if j < material {
                // Distinct values, $37 apart: the smallest three are unambiguous.
                Decimal::from(25 + 37 * j as i64 + (i % 7) as i64)
            } else {
                Decimal::new(30 + 40 * (j - material) as i64, 2) // $0.30, $0.70
            };
            let quantity =
                (value / price).round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero);
            let symbol = format!("{base}-USD");
            expected
                .quantities
                .insert((id.clone(), symbol.clone()), quantity);
            if j < 3 {
                expected
                    .sells
                    .entry(id.clone())
                    .or_default()
                    .insert(symbol.clone());
            }
            if j >= material {
                expected
                    .dust
                    .entry(id.clone())
                    .or_default()
                    .insert(symbol.clone());
            }
            holdings.push(ScenarioHolding {
                asset: base.to_string(),
                quantity,
                avg_entry: Some(price),
            });
        }
        expected.caps.insert(id.clone(), cap);
        scenario.accounts.push(ScenarioAccount {
            id,
            kind,
            broker,
            cash: Decimal::from(100),
            holdings,
        });
    }
    (scenario, expected)
}

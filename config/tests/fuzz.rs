//! Arbitrary configuration files never panic the loader, and every problem it reports names a key
//! (DESIGN R6: bad input is refused clearly).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use nija_config::{Config, MapEnv};
use proptest::prelude::*;
use toml::{Table, Value};

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "nats",
        &["url", "creds", "nkey", "tls_ca", "tls_cert", "tls_key"],
    ),
    (
        "policy",
        &[
            "max_positions",
            "user_max_positions",
            "dust_threshold_usd",
            "stop_loss_pct",
            "take_profit_pct",
            "trailing_stop_pct",
            "trailing_activation_pct",
            "max_hold_hours",
            "max_liquidation_fraction",
            "liquidation_window",
            "cash_assets",
        ],
    ),
    (
        "schedule",
        &["enforce_every", "exit_sweep_every", "job_deadline"],
    ),
    (
        "worker",
        &[
            "concurrency",
            "heartbeat_every",
            "lease_ttl",
            "connect_cooldown",
            "partitions",
            "max_price_age",
            "price_cache_ttl",
        ],
    ),
    (
        "coordinator",
        &["results_max_age", "jobs_duplicate_window", "jobs_max_age"],
    ),
    ("http", &["listen"]),
    ("tls", &["extra_ca"]),
    ("metrics", &["per_account"]),
];

const ACCOUNT_KEYS: &[&str] = &[
    "id",
    "type",
    "broker",
    "base_url",
    "data_url",
    "credentials",
    "mode",
    "max_positions",
    "user_max_positions",
    "dust_threshold_usd",
    "stop_loss_pct",
    "max_hold_hours",
    "cash_assets",
    "liquidation_window",
    "colour",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "off",
            "1s",
            "0s",
            "1h30m",
            "abc",
            "1.5",
            "-3",
            "0",
            "100",
            "USD",
            "usd",
            "nats://a:1",
            "http://127.0.0.1:1",
            "https://x.example/p",
            "ftp://x",
            ":9465",
            "user-1",
            "platform",
            "user",
            "kraken",
            "alpaca",
            "act",
            "observe",
            "a.b",
            "10years",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        (-5i64..200_000).prop_map(Value::Integer),
        prop::num::f64::NORMAL.prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["file", "env", "k8s_secret", "key", "x"]),
                inner,
                0..3
            )
            .prop_map(|m| Value::Table(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn section(keys: &'static [&'static str]) -> impl Strategy<Value = Table> {
    prop::collection::btree_map(prop::sample::select(keys.to_vec()), value(), 0..keys.len())
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn config_table() -> impl Strategy<Value = Table> {
    let sections: Vec<_> = SECTIONS
        .iter()
        .map(|(name, keys)| prop::option::of(section(keys)).prop_map(move |t| (*name, t)))
        .collect();
    (
        sections,
        prop::collection::vec(section(ACCOUNT_KEYS), 0..4),
        prop::option::of(scalar()),
    )
        .prop_map(|(sections, accounts, mode)| {
            let mut root = Table::new();
            for (name, table) in sections {
                if let Some(table) = table {
                    root.insert(name.to_string(), Value::Table(table));
                }
            }
            if !accounts.is_empty() {
                root.insert(
                    "accounts".into(),
                    Value::Array(accounts.into_iter().map(Value::Table).collect()),
                );
            }
            if let Some(mode) = mode {
                root.insert("mode".into(), mode);
            }
            root
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_files_are_loaded_or_refused_with_keyed_problems(table in config_table()) {
        let text = toml::to_string(&table).unwrap();
        match Config::from_toml_str(&text, Path::new("/etc/nija"), &MapEnv::new()) {
            Ok(loaded) => {
                // A loaded account always resolves to parameters within the documented ranges.
                for account in &loaded.config.accounts {
                    let params = loaded.config.policy_for(account);
                    prop_assert!(params.max_liquidation_fraction <= rust_decimal::Decimal::ONE);
                    prop_assert!(!params.cash_assets.is_empty());
                    prop_assert!(params.max_hold > chrono::Duration::zero());
                }
            }
            Err(errors) => {
                prop_assert!(!errors.errors.is_empty());
                for e in &errors.errors {
                    let key = e.key();
                    prop_assert!(key.is_some_and(|k| !k.is_empty()), "{e}");
                    let root = key.unwrap().split(['.', '[']).next().unwrap();
                    prop_assert!(
                        root == "mode" || root == "accounts" || SECTIONS.iter().any(|(s, _)| *s == root),
                        "problem outside the file's keys: {e}"
                    );
                }
            }
        }
    }
}

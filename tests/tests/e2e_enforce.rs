//! One enforce round over a fleet of 50 accounts above their cap with dust, through the real
//! coordinator and two real workers: every account ends compliant, the order log holds exactly the
//! expected sells (each once), dust is blacklisted, nothing else is sold, and the tracker records
//! every sold position as closed by nija.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions};
use nija_proto::ids::JobKind;
use nija_proto::messages::{ResultStatus, decode};
use nija_proto::names::{TRACKER_BUCKET, account_symbol_key};
use nija_proto::state::{AdoptionStatus, TrackedPosition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_enforce_round_brings_fifty_accounts_under_cap_and_blacklists_dust()
-> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(50);
    let stack = Stack::start(StackOptions::new(scenario)).await?;

    let results = stack
        .wait_results(
            Duration::from_secs(120),
            "an enforce result for all 50 accounts",
            |rs| Stack::latest_by_account(rs, JobKind::Enforce).len() == 50,
        )
        .await?;
    let latest = Stack::latest_by_account(&results, JobKind::Enforce);
    for (account, result) in &latest {
        assert_eq!(
            result.status,
            ResultStatus::Enforced,
            "{account}: {:?}\n{}",
            result.errors,
            stack.logs_tail()
        );
        let cap = expected.caps[account.as_str()];
        assert_eq!(result.max_allowed, cap, "{account}");
        assert_eq!(result.count_before, Some(cap + 3), "{account}");
        assert_eq!(
            result.count_after,
            Some(cap),
            "{account}: re-read after selling"
        );
        let sold: BTreeSet<String> = result.sold.iter().map(|s| s.symbol.to_string()).collect();
        assert_eq!(&sold, &expected.sells[account.as_str()], "{account}");
        let plan = result
            .plan
            .as_ref()
            .expect("an enforced result carries its plan");
        let dust: BTreeSet<String> = plan.dust.iter().map(|d| d.symbol.to_string()).collect();
        assert_eq!(&dust, &expected.dust[account.as_str()], "{account}");
        assert!(plan.dust.iter().all(|d| d.newly_blacklisted), "{account}");
    }

    // The exchange saw exactly the expected sells, each once, for the whole quantity.
    let log = stack.order_log();
    let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    for entry in &log {
        *seen
            .entry((entry.account.clone(), entry.order.symbol.clone()))
            .or_default() += 1;
        assert_eq!(entry.order.side, nija_sim::Side::Sell, "{entry:?}");
        let held = expected.quantities[&(entry.account.clone(), entry.order.symbol.clone())];
        assert_eq!(entry.order.quantity, held, "whole quantity sold: {entry:?}");
    }
    let expected_orders: BTreeSet<(String, String)> = expected
        .sells
        .iter()
        .flat_map(|(a, syms)| syms.iter().map(move |s| (a.clone(), s.clone())))
        .collect();
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        expected_orders
    );
    assert!(
        seen.values().all(|n| *n == 1),
        "an order placed twice: {seen:?}"
    );

    // Dust stays at the broker, untouched, and on the persistent blacklist.
    let js = async_nats::jetstream::new(stack.client.clone());
    let blacklist = js.get_key_value("nija-blacklist").await?;
    for (account, symbols) in &expected.dust {
        for symbol in symbols {
            let key = format!("{account}.{}", symbol);
            assert!(
                blacklist.get(&key).await?.is_some(),
                "{key} not blacklisted"
            );
        }
    }

    // Every position a job sold is closed in the tracker by that job, as nija's own doing.
    let tracker = js.get_key_value(TRACKER_BUCKET).await?;
    for result in latest.values() {
        for sold in &result.sold {
            let key = account_symbol_key(&result.account, &sold.symbol);
            let record: TrackedPosition = decode(
                &tracker
                    .get(&key)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("{key}: no tracker record"))?,
            )?;
            assert_eq!(
                record.adoption_status,
                AdoptionStatus::ClosedByNija,
                "{key}"
            );
            assert!(!record.tracked && record.closed_at.is_some(), "{key}");
        }
    }
    stack.shutdown().await;
    Ok(())
}

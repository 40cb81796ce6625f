//! Exit sweeps with scripted prices through real processes: stop-loss, take-profit, a trailing
//! stop whose peak survives a worker restart, a time exit, and a position that nothing touches.

use std::time::Duration;

use nija_e2e::fleets::PRICES;
use nija_e2e::{Stack, StackOptions};
use nija_proto::messages::ResultStatus;
use nija_proto::plan::SellReason;
use nija_proto::state::TrackedPosition;
use nija_proto::{AccountId, Partition};
use nija_sim::{AccountType, Broker, Scenario, ScenarioAccount, ScenarioHolding};
use rust_decimal::Decimal;
use toml::{Table, Value};

const WAIT: Duration = Duration::from_secs(90);

fn price(base: &str) -> Decimal {
    PRICES
        .iter()
        .find(|(b, _)| *b == base)
        .map(|(_, p)| Decimal::from(*p))
        .expect("a fleet symbol")
}

fn holding(base: &str, usd: i64) -> ScenarioHolding {
    ScenarioHolding {
        asset: base.into(),
        quantity: (Decimal::from(usd) / price(base)).round_dp(8),
        avg_entry: Some(price(base)),
    }
}

fn sold_for(
    stack_results: &[nija_proto::messages::JobResult],
    account: &str,
    symbol: &str,
) -> Option<SellReason> {
    stack_results
        .iter()
        .filter(|r| r.account.as_str() == account)
        .flat_map(|r| r.sold.iter())
        .find(|s| s.symbol.as_str() == symbol)
        .map(|s| s.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_fire_on_scripted_prices_and_a_peak_survives_a_worker_restart() -> anyhow::Result<()>
{
    let mut scenario = Scenario {
        market_open: Some(true),
        ..Default::default()
    };
    for (base, p) in PRICES {
        scenario
            .prices
            .insert(format!("{base}-USD"), Decimal::from(p));
    }
    // Under the cap (5): only exits can sell here.
    scenario.accounts.push(ScenarioAccount {
        id: "trader".into(),
        kind: AccountType::User,
        broker: Broker::Coinbase,
        cash: Decimal::from(100),
        holdings: vec![
            holding("SOL", 300),
            holding("LINK", 300),
            holding("AVAX", 300),
            holding("UNI", 300),
        ],
    });
    scenario.accounts.push(ScenarioAccount {
        id: "holder".into(),
        kind: AccountType::User,
        broker: Broker::Coinbase,
        cash: Decimal::from(100),
        holdings: vec![holding("DOT", 300)],
    });
    let mut options = StackOptions::new(scenario);
    options.exit_sweep_every = Some(Duration::from_millis(500));
    let mut holder = Table::new();
    // 0.002 h = 7.2 s: the holder's position reaches its maximum hold during the test.
    holder.insert("max_hold_hours".into(), Value::String("0.002".into()));
    options.account_overrides.insert("holder".into(), holder);
    let mut stack = Stack::start(options).await?;

    // Adopted at the broker's average entry price, then swept.
    let js = async_nats::jetstream::new(stack.client.clone());
    let tracker = js.get_key_value("nija-tracker").await?;
    stack
        .wait_results(WAIT, "sweeps of both accounts", |rs| {
            rs.iter()
                .filter(|r| r.account.as_str() == "trader" && r.status == ResultStatus::Compliant)
                .count()
                >= 2
        })
        .await?;

    let admin = stack.sim.admin();
    let pct = |base: &str, pct: i64| price(base) * (Decimal::from(100 + pct) / Decimal::from(100));
    admin.set_price("SOL-USD", pct("SOL", -4), true)?; // stop-loss at -3 %
    admin.set_price("LINK-USD", pct("LINK", 9), true)?; // take-profit at +8 %
    admin.set_price("AVAX-USD", pct("AVAX", 7), true)?; // a new peak, no exit yet
    let results = stack
        .wait_results(WAIT, "stop-loss and take-profit sells", |rs| {
            sold_for(rs, "trader", "SOL-USD").is_some()
                && sold_for(rs, "trader", "LINK-USD").is_some()
        })
        .await?;
    assert_eq!(
        sold_for(&results, "trader", "SOL-USD"),
        Some(SellReason::StopLoss)
    );
    assert_eq!(
        sold_for(&results, "trader", "LINK-USD"),
        Some(SellReason::TakeProfit)
    );
    // The AVAX peak is persisted before anything else happens to it.
    let peak_key = "trader.AVAX-USD";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let raw = tracker.get(peak_key).await?;
        let tracked: Option<TrackedPosition> =
            raw.map(|b| nija_proto::messages::decode(&b)).transpose()?;
        if tracked.is_some_and(|t| t.peak.value() == pct("AVAX", 7)) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "AVAX peak not persisted\n{}",
            stack.logs_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Restart the worker that holds the trader (kill -9, start again), then drop 6 % from the
    // peak: only the persisted peak can make the trailing stop fire (+0.58 % over entry).
    let partition = Partition::of(&AccountId::new("trader")?, stack.options.partitions).0;
    let settled = stack.wait_partitions_settled(2, WAIT).await?;
    let owner = settled
        .iter()
        .find(|(_, ps)| ps.contains(&partition))
        .map(|(w, _)| w.clone())
        .expect("a partition owner");
    let index = stack
        .workers
        .iter()
        .position(|w| w.name == owner)
        .expect("known worker");
    stack.workers[index].restart()?;
    stack.wait_partitions_settled(2, WAIT).await?;
    admin.set_price("AVAX-USD", pct("AVAX", 7) * Decimal::new(94, 2), true)?;
    let results = stack
        .wait_results(WAIT, "the trailing stop and the time exit", |rs| {
            sold_for(rs, "trader", "AVAX-USD").is_some()
                && sold_for(rs, "holder", "DOT-USD").is_some()
        })
        .await?;
    assert_eq!(
        sold_for(&results, "trader", "AVAX-USD"),
        Some(SellReason::TrailingStop)
    );
    assert_eq!(
        sold_for(&results, "holder", "DOT-USD"),
        Some(SellReason::MaxHold)
    );

    // Untouched: UNI never moved; every exit sold once.
    let log = stack.order_log();
    let mut sold: Vec<(String, String)> = log
        .iter()
        .map(|o| (o.account.clone(), o.order.symbol.clone()))
        .collect();
    sold.sort();
    assert_eq!(
        sold,
        vec![
            ("holder".to_string(), "DOT-USD".to_string()),
            ("trader".to_string(), "AVAX-USD".to_string()),
            ("trader".to_string(), "LINK-USD".to_string()),
            ("trader".to_string(), "SOL-USD".to_string()),
        ]
    );
    stack.shutdown().await;
    Ok(())
}

//! Adoption through real processes: positions found at the broker are adopted once, restarts of
//! every worker and the coordinator adopt nothing twice, and a position sold outside nija is
//! closed in the tracker without any nija order.

use std::collections::BTreeMap;
use std::time::Duration;

use nija_e2e::fleets::PRICES;
use nija_e2e::{Stack, StackOptions};
use nija_proto::messages::decode;
use nija_proto::state::{AdoptionStatus, PositionSource, TrackedPosition};
use nija_sim::{
    AccountType, Broker, ExternalTrade, OrderSource, Scenario, ScenarioAccount, ScenarioHolding,
    Side,
};
use rust_decimal::Decimal;

const WAIT: Duration = Duration::from_secs(90);
const SYMBOLS: [&str; 3] = ["SOL", "LINK", "AVAX"];

async fn tracked(
    kv: &async_nats::jetstream::kv::Store,
) -> anyhow::Result<BTreeMap<String, TrackedPosition>> {
    let mut out = BTreeMap::new();
    for base in SYMBOLS {
        let key = format!("adoptee.{base}-USD");
        if let Some(raw) = kv.get(&key).await? {
            out.insert(key, decode::<TrackedPosition>(&raw)?);
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_happens_once_survives_restarts_and_closes_positions_sold_outside()
-> anyhow::Result<()> {
    let mut scenario = Scenario {
        market_open: Some(true),
        ..Default::default()
    };
    for (base, p) in PRICES {
        scenario
            .prices
            .insert(format!("{base}-USD"), Decimal::from(p));
    }
    let quantity = |base: &str| {
        let p = PRICES
            .iter()
            .find(|(b, _)| *b == base)
            .map(|(_, p)| *p)
            .unwrap_or(1);
        (Decimal::from(200) / Decimal::from(p)).round_dp(8)
    };
    scenario.accounts.push(ScenarioAccount {
        id: "adoptee".into(),
        kind: AccountType::User,
        broker: Broker::Kraken,
        cash: Decimal::from(50),
        holdings: SYMBOLS
            .iter()
            .map(|b| ScenarioHolding {
                asset: (*b).into(),
                quantity: quantity(b),
                avg_entry: None,
            })
            .collect(),
    });
    let mut options = StackOptions::new(scenario);
    options.exit_sweep_every = Some(Duration::from_millis(500));
    let mut stack = Stack::start(options).await?;
    let js = async_nats::jetstream::new(stack.client.clone());
    let kv = js.get_key_value("nija-tracker").await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let adopted = loop {
        let now = tracked(&kv).await?;
        if now.len() == SYMBOLS.len() {
            break now;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not adopted\n{}",
            stack.logs_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (key, t) in &adopted {
        assert_eq!(t.source, PositionSource::BrokerExisting, "{key}");
        assert_eq!(t.adoption_status, AdoptionStatus::Adopted, "{key}");
        assert!(t.tracked, "{key}");
        assert_eq!(
            t.quantity.value(),
            quantity(t.symbol.base()),
            "{key}: the broker's quantity"
        );
    }

    // Restart everything nija runs; sweeps go on; nothing is adopted again or added to.
    let before = stack.results().await?.len();
    for w in &mut stack.workers {
        w.restart()?;
    }
    stack.coordinator()?.restart()?;
    stack
        .wait_results(WAIT, "sweeps after the restarts", |rs| {
            rs.len() >= before + 3
        })
        .await?;
    let after = tracked(&kv).await?;
    for (key, t) in &adopted {
        let now = &after[key];
        assert_eq!(now.entry_time, t.entry_time, "{key} adopted again");
        assert_eq!(now.entry_price, t.entry_price, "{key}");
        assert_eq!(now.entry_price_source, t.entry_price_source, "{key}");
        assert_eq!(now.quantity, t.quantity, "{key}: quantity added to");
    }

    // Sold outside nija: closed in the tracker, and nija placed no order at all.
    stack.sim.admin().external_trade(
        "adoptee",
        ExternalTrade {
            symbol: "LINK-USD".into(),
            side: Side::Sell,
            quantity: quantity("LINK"),
        },
    )?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = tracked(&kv).await?;
        if let Some(t) = now.get("adoptee.LINK-USD")
            && t.adoption_status == AdoptionStatus::ClosedExternally
        {
            assert!(!t.tracked);
            assert!(t.closed_at.is_some());
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "LINK not closed\n{}",
            stack.logs_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = stack.order_log();
    assert!(
        log.iter().all(|o| o.order.source == OrderSource::External),
        "nija orders: {log:?}"
    );
    assert_eq!(log.len(), 1);
    stack.shutdown().await;
    Ok(())
}

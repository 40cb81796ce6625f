//! Shared by the metrics tests: a job result with every figure set, and registries in which every
//! metric family has a series.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use nija_proto::ids::JobKind;
use nija_proto::messages::{FillStatus, JobResult, ResultStatus, SoldPosition, TriggeredBy};
use nija_proto::plan::{
    AccountType, DustPosition, KeptPosition, Mode, Plan, Reconciliation, ReferenceSource,
    SellReason, UnpricedPosition,
};
use nija_proto::{AccountId, ClientOrderId, JobId, Pct, Quantity, Symbol, Usd, WorkerId};
use nija_telemetry::{
    AccountLabels, CoordinatorMetrics, FenceRefusal, LeaseScope, Supervisor, SupervisorConfig,
    WaitReason, WorkerMetrics,
};
use prometheus::Registry;
use rust_decimal_macros::dec;
use std::time::Duration;

fn symbol(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// An enforce result that sold two cap positions, blacklisted one dust position, kept three
/// positions (one unpriced) and is still over its cap of 2.
pub fn enforce_result(account: &str, account_type: AccountType) -> JobResult {
    let account = AccountId::new(account).unwrap();
    let job_id = JobId::scheduled(JobKind::Enforce, &account, 7);
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let sold = |sym: &str, value, status| SoldPosition {
        symbol: symbol(sym),
        reason: SellReason::Cap,
        fired: vec![],
        quantity: Quantity(dec!(1)),
        filled_quantity: Quantity(dec!(1)),
        remainder: Quantity(dec!(0)),
        usd_value: Usd(value),
        average_fill_price: None,
        order_id: Some("o-1".into()),
        client_order_id: ClientOrderId::derive(&account, &job_id, &symbol(sym)),
        fill_status: status,
        already_placed: false,
    };
    let kept = |sym: &str, value: Option<rust_decimal::Decimal>| KeptPosition {
        symbol: symbol(sym),
        quantity: Quantity(dec!(1)),
        usd_value: value.map(Usd),
    };
    JobResult {
        job_id: job_id.clone(),
        kind: JobKind::Enforce,
        account: account.clone(),
        account_type,
        worker: WorkerId::new("w1").unwrap(),
        status: ResultStatus::Enforced,
        triggered_by: TriggeredBy::Schedule,
        mode: Mode::Act,
        dry_run: false,
        forced: false,
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(1500),
        count_before: Some(5),
        count_after: Some(3),
        max_allowed: 2,
        excess: 3,
        sold: vec![
            sold("DOGE-USD", dec!(10.50), FillStatus::Filled),
            sold("ADA-USD", dec!(12.25), FillStatus::PartiallyFilled),
            sold("XRP-USD", dec!(13), FillStatus::Rejected),
        ],
        plan: Some(Plan {
            account: account.clone(),
            job_id,
            kind: JobKind::Enforce,
            decided_at: at,
            count_before: 5,
            max_allowed: 2,
            excess: 3,
            sells: vec![],
            kept: vec![
                kept("BTC-USD", Some(dec!(1000.10))),
                kept("ETH-USD", Some(dec!(200.05))),
                kept("FOO-USD", None),
            ],
            dust: vec![
                DustPosition {
                    symbol: symbol("SHIB-USD"),
                    quantity: Quantity(dec!(3)),
                    usd_value: Usd(dec!(0.4)),
                    newly_blacklisted: true,
                },
                DustPosition {
                    symbol: symbol("PEPE-USD"),
                    quantity: Quantity(dec!(3)),
                    usd_value: Usd(dec!(0.2)),
                    newly_blacklisted: false,
                },
            ],
            unpriced: vec![UnpricedPosition {
                symbol: symbol("FOO-USD"),
                quantity: Quantity(dec!(1)),
                reason: "price_fetch_failed".into(),
            }],
            unsellable: vec![],
            flagged: vec![],
            cap_unreachable: false,
            guard_refusal: None,
            guard_overridden: false,
            reconciliation: Some(Reconciliation {
                cash_usd: Usd(dec!(500.01)),
                positions_usd: Usd(dec!(1200.15)),
                total_usd: Usd(dec!(1700.16)),
                reference_usd: Some(Usd(dec!(1680))),
                reference_source: Some(ReferenceSource::Broker),
                drift_pct: Some(Pct(dec!(-1.2))),
                drifted: true,
                unpriced_positions: 1,
            }),
        }),
        errors: vec![],
    }
}

/// A coordinator registry and a worker registry (with a supervisor whose task died once), every
/// family exercised once so that labelled families render.
pub async fn exercised_registries() -> (Registry, Registry, Supervisor) {
    let coordinator = Registry::new();
    let metrics = CoordinatorMetrics::register(&coordinator, AccountLabels::default()).unwrap();
    metrics.job_result(&enforce_result("platform", AccountType::Platform));
    let platform = AccountId::new("platform").unwrap();
    metrics
        .accounts
        .set_blacklist_size(&platform, AccountType::Platform, 1);
    metrics.set_heartbeat_age(&WorkerId::new("w1").unwrap(), Duration::from_secs(1));
    metrics.job_stalled(JobKind::Enforce);

    let worker = Registry::new();
    let w = WorkerMetrics::register(&worker).unwrap();
    w.lease_taken_over(LeaseScope::Account);
    w.fence_refused(FenceRefusal::LeaseLost);
    w.broker
        .request("kraken", "ticker", Duration::from_millis(5));
    w.broker.error("kraken", "transient");
    w.broker.retry("kraken");
    w.broker
        .waited("kraken", WaitReason::RateLimit, Duration::from_millis(5));
    w.broker
        .order_placed("kraken", false, Duration::from_millis(5));
    w.job_started();
    w.job_finished(
        JobKind::Enforce,
        nija_proto::messages::ResultStatus::Compliant,
    );
    w.heartbeat_sent();

    // A supervised task that dies once, so the supervision families have series.
    let supervisor = Supervisor::new(
        &worker,
        SupervisorConfig {
            initial_backoff: Duration::from_millis(1),
            ..SupervisorConfig::default()
        },
    )
    .unwrap();
    let (died_tx, mut died_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut first = true;
    supervisor.supervise("sample", move |live| {
        let fail = std::mem::replace(&mut first, false);
        let died = died_tx.clone();
        async move {
            if fail {
                return Err("first run fails");
            }
            let _ = died.send(());
            live.cancelled().await;
            Ok(())
        }
    });
    died_rx.recv().await.unwrap();

    (coordinator, worker, supervisor)
}

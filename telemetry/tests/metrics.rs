//! Metrics render under their documented names, and job results turn into the right figures.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::enforce_result;
use nija_proto::ids::JobKind;
use nija_proto::messages::ResultStatus;
use nija_proto::plan::AccountType;
use nija_proto::{AccountId, WorkerId};
use nija_telemetry::{AccountLabels, CoordinatorMetrics, WaitReason, WorkerMetrics, render};
use prometheus::Registry;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn coordinator_figures_render_per_type_and_only_for_labelled_accounts() {
    let registry = Registry::new();
    let allowed = AccountId::new("user-0002").unwrap();
    let metrics =
        CoordinatorMetrics::register(&registry, AccountLabels::new([allowed.clone()])).unwrap();

    metrics.job_published(JobKind::Enforce);
    metrics.job_result(&enforce_result("platform", AccountType::Platform));
    metrics.job_result(&enforce_result("user-0001", AccountType::User));
    metrics.job_result(&enforce_result("user-0002", AccountType::User));
    metrics.accounts.set_blacklist_size(
        &AccountId::new("platform").unwrap(),
        AccountType::Platform,
        4,
    );
    metrics.set_paused(true);
    metrics.set_workers_alive(2);
    metrics.set_heartbeat_age(
        &WorkerId::new("w1").unwrap(),
        std::time::Duration::from_millis(2500),
    );

    let text = render(&registry);
    let get = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("{series} missing in\n{text}"))
    };

    assert_eq!(
        get(r#"nija_build_info{service="coordinator",version="0.1.0"}"#),
        1.0
    );
    assert_eq!(get(r#"nija_jobs_published_total{kind="enforce"}"#), 1.0);
    assert_eq!(
        get(r#"nija_jobs_completed_total{kind="enforce",status="enforced"}"#),
        3.0
    );
    assert_eq!(get(r#"nija_jobs_failed_total{kind="enforce"}"#), 0.0);
    assert_eq!(
        get(r#"nija_job_duration_seconds_count{kind="enforce"}"#),
        3.0
    );
    assert_eq!(get(r#"nija_job_duration_seconds_sum{kind="enforce"}"#), 4.5);
    assert_eq!(get("nija_paused"), 1.0);
    assert_eq!(get("nija_workers_alive"), 2.0);
    assert_eq!(
        get(r#"nija_worker_heartbeat_age_seconds{worker="w1"}"#),
        2.5
    );

    // Per type: sums over the two user accounts, exact cents.
    assert_eq!(get(r#"nija_accounts{account_type="user"}"#), 2.0);
    assert_eq!(get(r#"nija_positions_active{account_type="user"}"#), 6.0);
    assert_eq!(get(r#"nija_positions_dust{account_type="user"}"#), 4.0);
    assert_eq!(get(r#"nija_positions_unpriced{account_type="user"}"#), 2.0);
    assert_eq!(
        get(r#"nija_balance_total_usd{account_type="user"}"#),
        3400.32
    );
    assert_eq!(
        get(r#"nija_position_value_usd{account_type="user"}"#),
        2400.3
    );
    assert_eq!(
        get(r#"nija_free_capital_usd{account_type="user"}"#),
        1000.02
    );
    assert_eq!(
        get(r#"nija_position_largest_usd{account_type="user"}"#),
        1000.1
    );
    assert_eq!(
        get(r#"nija_position_smallest_usd{account_type="user"}"#),
        200.05
    );
    assert_eq!(
        get(r#"nija_reconciliation_drift_ratio{account_type="user"}"#),
        0.012
    );
    assert_eq!(get(r#"nija_accounts_over_cap{account_type="user"}"#), 2.0);
    assert_eq!(get(r#"nija_blacklist_size{account_type="platform"}"#), 4.0);
    assert_eq!(get(r#"nija_dust_cleaned_total{account_type="user"}"#), 2.0);
    assert_eq!(
        get(r#"nija_cap_enforcements_total{account_type="user"}"#),
        2.0
    );
    // Filled and partially filled count as sold; the rejected order does not.
    assert_eq!(
        get(r#"nija_positions_sold_total{account_type="user",reason="cap"}"#),
        4.0
    );
    assert_eq!(
        get(r#"nija_positions_sold_total{account_type="user",reason="stop_loss"}"#),
        0.0
    );

    // Per account: the platform account and the allow-listed user, never the other user.
    for account in ["platform", "user-0002"] {
        let ty = if account == "platform" {
            "platform"
        } else {
            "user"
        };
        let series = |name: &str| format!(r#"{name}{{account="{account}",account_type="{ty}"}}"#);
        assert_eq!(get(&series("nija_account_positions_active")), 3.0);
        assert_eq!(get(&series("nija_account_positions_max")), 2.0);
        assert_eq!(get(&series("nija_account_over_cap")), 1.0);
        assert_eq!(get(&series("nija_account_balance_total_usd")), 1700.16);
        assert_eq!(get(&series("nija_account_free_capital_usd")), 500.01);
        assert_eq!(
            get(&series("nija_account_reconciliation_drift_ratio")),
            0.012
        );
        assert_eq!(get(&series("nija_account_dust_cleaned_total")), 1.0);
        assert_eq!(get(&series("nija_account_cap_enforcements_total")), 1.0);
        // Counters of a labelled account start at 0 for every reason.
        let stop_loss = format!(
            r#"nija_account_positions_sold_total{{account="{account}",account_type="{ty}",reason="stop_loss"}}"#
        );
        assert_eq!(get(&stop_loss), 0.0);
        assert_eq!(
            get(&series("nija_account_figures_timestamp_seconds")),
            Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 1)
                .unwrap()
                .timestamp() as f64
                + 0.5
        );
    }
    assert_eq!(
        get(r#"nija_account_blacklist_size{account="platform",account_type="platform"}"#),
        4.0
    );
    assert!(
        !text.contains("user-0001"),
        "unlabelled account leaked:\n{text}"
    );

    // Forgetting an account removes its series and its share of the sums.
    metrics.accounts.forget(&allowed);
    let text = render(&registry);
    assert!(!text.contains("user-0002"));
    assert_eq!(
        sample(&text, r#"nija_accounts{account_type="user"}"#),
        Some(1.0)
    );
}

#[test]
fn failed_snapshot_keeps_the_last_figures() {
    let registry = Registry::new();
    let metrics = CoordinatorMetrics::register(&registry, AccountLabels::default()).unwrap();
    metrics.job_result(&enforce_result("platform", AccountType::Platform));
    let mut failed = enforce_result("platform", AccountType::Platform);
    failed.status = ResultStatus::Failed;
    failed.plan = None;
    failed.sold.clear();
    failed.count_after = None;
    metrics.job_result(&failed);

    let text = render(&registry);
    assert_eq!(
        sample(&text, r#"nija_jobs_failed_total{kind="enforce"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"nija_account_positions_active{account="platform",account_type="platform"}"#
        ),
        Some(3.0)
    );
}

#[test]
fn restored_results_set_figures_without_counting_history_again() {
    let registry = Registry::new();
    let metrics = CoordinatorMetrics::register(&registry, AccountLabels::default()).unwrap();
    metrics.restore_result(&enforce_result("platform", AccountType::Platform));

    let text = render(&registry);
    let get = |series: &str| sample(&text, series).unwrap();
    assert_eq!(
        get(r#"nija_account_positions_active{account="platform",account_type="platform"}"#),
        3.0
    );
    assert_eq!(
        get(r#"nija_jobs_completed_total{kind="enforce",status="enforced"}"#),
        0.0
    );
    assert_eq!(
        get(r#"nija_positions_sold_total{account_type="platform",reason="cap"}"#),
        0.0
    );
    assert_eq!(
        get(r#"nija_dust_cleaned_total{account_type="platform"}"#),
        0.0
    );
}

#[test]
fn worker_and_broker_metrics_render() {
    let registry = Registry::new();
    let metrics = WorkerMetrics::register(&registry).unwrap();
    let ms = std::time::Duration::from_millis;
    metrics.job_started();
    metrics.job_started();
    metrics.job_finished(JobKind::ExitSweep, ResultStatus::Compliant);
    metrics.dead_lettered(None);
    metrics.broker.request("kraken", "ticker", ms(20));
    metrics.broker.request("kraken", "place_order", ms(80));
    metrics.broker.error("kraken", "rate_limited");
    metrics.broker.retry("kraken");
    metrics
        .broker
        .waited("kraken", WaitReason::Cooldown, ms(2000));
    metrics
        .broker
        .waited("kraken", WaitReason::RateLimit, ms(500));
    metrics
        .broker
        .waited("kraken", WaitReason::RateLimit, ms(250));
    metrics.broker.order_placed("kraken", false, ms(80));
    metrics.broker.order_failed("kraken", true);

    let text = render(&registry);
    let get = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("{series} missing in\n{text}"))
    };
    assert_eq!(
        get(r#"nija_build_info{service="worker",version="0.1.0"}"#),
        1.0
    );
    assert_eq!(get("nija_worker_jobs_in_flight"), 1.0);
    assert_eq!(
        get(r#"nija_worker_jobs_total{kind="exit_sweep",status="compliant"}"#),
        1.0
    );
    assert_eq!(get(r#"nija_dead_letters_total{kind="unknown"}"#), 1.0);
    assert_eq!(
        get(r#"nija_broker_requests_total{broker="kraken",operation="ticker"}"#),
        1.0
    );
    assert_eq!(
        get(r#"nija_broker_request_duration_seconds_count{broker="kraken"}"#),
        2.0
    );
    assert_eq!(
        get(r#"nija_broker_errors_total{broker="kraken",class="rate_limited"}"#),
        1.0
    );
    assert_eq!(get(r#"nija_broker_retries_total{broker="kraken"}"#), 1.0);
    assert_eq!(
        get(r#"nija_broker_waits_total{broker="kraken",reason="rate_limit"}"#),
        2.0
    );
    assert_eq!(
        get(r#"nija_broker_wait_seconds_total{broker="kraken",reason="rate_limit"}"#),
        0.75
    );
    assert_eq!(
        get(r#"nija_broker_wait_seconds_total{broker="kraken",reason="cooldown"}"#),
        2.0
    );
    assert_eq!(
        get(r#"nija_orders_total{broker="kraken",outcome="placed"}"#),
        1.0
    );
    assert_eq!(
        get(r#"nija_orders_total{broker="kraken",outcome="unknown"}"#),
        1.0
    );
    assert_eq!(
        get(r#"nija_order_placement_seconds_count{broker="kraken"}"#),
        1.0
    );
    assert_eq!(get(r#"nija_lease_takeovers_total{scope="partition"}"#), 0.0);
    assert_eq!(
        get(r#"nija_order_fence_refusals_total{reason="paused"}"#),
        0.0
    );

    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("nija_"),
            "metric outside the nija_ prefix: {line}"
        );
    }
}

#[test]
fn registering_a_role_twice_in_one_registry_is_a_clear_error() {
    let registry = Registry::new();
    WorkerMetrics::register(&registry).unwrap();
    let err = WorkerMetrics::register(&registry).err().unwrap();
    assert!(err.to_string().contains("already registered"), "{err}");
}

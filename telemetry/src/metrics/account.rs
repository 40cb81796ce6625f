//! Account figures: per account type always, per account only where allowed.
//!
//! The coordinator feeds every job result in ([`AccountMetrics::record_result`]). Gauges are
//! computed at scrape time from the last figures of each account, so sums over thousands of
//! accounts are exact decimals and cost one pass per scrape rather than one per result.
//!
//! Per-account series (`nija_account_*`, label `account`) exist only for platform accounts and the
//! allow-list of [`AccountLabels`]: an unbounded `account` label would grow Prometheus with the
//! fleet. Per-type series (label `account_type`, two values) always exist.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use nija_proto::messages::{FillStatus, JobResult};
use nija_proto::plan::{AccountType, SellReason};
use nija_proto::{AccountId, Pct, Usd};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use rust_decimal::Decimal;

use super::{decimal, usd};
use crate::error::TelemetryError;

const ACCOUNT_TYPES: [AccountType; 2] = [AccountType::Platform, AccountType::User];
const SELL_REASONS: [SellReason; 5] = [
    SellReason::Cap,
    SellReason::StopLoss,
    SellReason::TrailingStop,
    SellReason::TakeProfit,
    SellReason::MaxHold,
];

/// Which accounts get their own series: every platform account, plus an allow-list from config.
#[derive(Debug, Clone, Default)]
pub struct AccountLabels {
    allow: HashSet<AccountId>,
}

impl AccountLabels {
    pub fn new(allow: impl IntoIterator<Item = AccountId>) -> AccountLabels {
        AccountLabels {
            allow: allow.into_iter().collect(),
        }
    }

    /// Whether `account` gets `nija_account_*` series.
    pub fn labelled(&self, account: &AccountId, account_type: AccountType) -> bool {
        account_type == AccountType::Platform || self.allow.contains(account)
    }
}

/// One account's figures from one fresh snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFigures {
    /// Material positions (counted toward the cap), after the job's re-read when there was one.
    pub active_positions: u32,
    pub max_positions: u32,
    pub dust_positions: u32,
    pub unpriced_positions: u32,
    /// Cash plus priced positions; `None` when the job could not reconcile.
    pub total_balance: Option<Usd>,
    pub position_value: Option<Usd>,
    /// Cash (the configured cash assets).
    pub free_capital: Option<Usd>,
    pub largest_position: Option<Usd>,
    pub smallest_position: Option<Usd>,
    /// Reconciliation drift against the broker's total (or the previous snapshot).
    pub drift: Option<Pct>,
    /// When the snapshot was taken.
    pub at: Option<DateTime<Utc>>,
}

impl AccountFigures {
    /// The figures a result carries; `None` when the job had no fresh snapshot (a failed snapshot
    /// never replaces the last good figures with an empty account).
    pub fn from_result(result: &JobResult) -> Option<AccountFigures> {
        let plan = result.plan.as_ref()?;
        // Values of what the account still holds: kept priced positions and unsellable ones.
        let values = plan
            .kept
            .iter()
            .filter_map(|k| k.usd_value)
            .chain(plan.unsellable.iter().map(|u| u.usd_value));
        let (largest, smallest) =
            values.fold((None, None), |(max, min): (Option<Usd>, Option<Usd>), v| {
                (
                    Some(max.map_or(v, |m| m.max(v))),
                    Some(min.map_or(v, |m| m.min(v))),
                )
            });
        let reconciliation = plan.reconciliation.as_ref();
        Some(AccountFigures {
            active_positions: result.count_after.unwrap_or(plan.count_before),
            max_positions: result.max_allowed,
            dust_positions: u32::try_from(plan.dust.len()).unwrap_or(u32::MAX),
            unpriced_positions: u32::try_from(plan.unpriced.len()).unwrap_or(u32::MAX),
            total_balance: reconciliation.map(|r| r.total_usd),
            position_value: reconciliation.map(|r| r.positions_usd),
            free_capital: reconciliation.map(|r| r.cash_usd),
            largest_position: largest,
            smallest_position: smallest,
            drift: reconciliation.and_then(|r| r.drift_pct),
            at: Some(result.finished_at),
        })
    }

    /// More material positions than the cap allows.
    pub fn over_cap(&self) -> bool {
        self.active_positions > self.max_positions
    }

    fn drift_ratio(&self) -> Option<Decimal> {
        self.drift.map(|p| p.as_fraction().abs())
    }
}

/// What is known of one account.
#[derive(Debug, Clone)]
struct AccountState {
    account_type: AccountType,
    figures: Option<AccountFigures>,
    blacklist_size: Option<u64>,
}

/// Account figures and decision counters (held by [`super::CoordinatorMetrics`]).
#[derive(Clone)]
pub struct AccountMetrics {
    labels: Arc<AccountLabels>,
    gauges: FiguresCollector,
    dust_cleaned: IntCounterVec,
    cap_enforcements: IntCounterVec,
    sold: IntCounterVec,
    account_dust_cleaned: IntCounterVec,
    account_cap_enforcements: IntCounterVec,
    account_sold: IntCounterVec,
}

impl AccountMetrics {
    pub fn register(
        registry: &Registry,
        labels: AccountLabels,
    ) -> Result<AccountMetrics, TelemetryError> {
        let labels = Arc::new(labels);
        let gauges = FiguresCollector::new(labels.clone())?;
        registry.register(Box::new(gauges.clone()))?;
        let counter = |name: &str, help: &str, label_names: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), label_names)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, TelemetryError>(c)
        };
        let metrics = AccountMetrics {
            dust_cleaned: counter(
                "nija_dust_cleaned_total",
                "Positions newly put on the dust blacklist.",
                &["account_type"],
            )?,
            cap_enforcements: counter(
                "nija_cap_enforcements_total",
                "Jobs that sold positions to bring an account back under its cap.",
                &["account_type"],
            )?,
            sold: counter(
                "nija_positions_sold_total",
                "Positions sold (filled or partially filled), by reason.",
                &["account_type", "reason"],
            )?,
            account_dust_cleaned: counter(
                "nija_account_dust_cleaned_total",
                "Positions newly blacklisted as dust, per labelled account.",
                &["account", "account_type"],
            )?,
            account_cap_enforcements: counter(
                "nija_account_cap_enforcements_total",
                "Cap enforcements that sold, per labelled account.",
                &["account", "account_type"],
            )?,
            account_sold: counter(
                "nija_account_positions_sold_total",
                "Positions sold by reason, per labelled account.",
                &["account", "account_type", "reason"],
            )?,
            labels,
            gauges,
        };
        for ty in ACCOUNT_TYPES {
            metrics.dust_cleaned.with_label_values(&[ty.as_str()]);
            metrics.cap_enforcements.with_label_values(&[ty.as_str()]);
            for reason in SELL_REASONS {
                metrics
                    .sold
                    .with_label_values(&[ty.as_str(), reason.as_str()]);
            }
        }
        Ok(metrics)
    }

    /// Takes in everything a job result says about its account: figures (when the job had a fresh
    /// snapshot), dust cleaned, positions sold and cap enforcements.
    pub fn record_result(&self, result: &JobResult) {
        let account = &result.account;
        let ty = result.account_type;
        if let Some(figures) = AccountFigures::from_result(result) {
            self.record(account, ty, figures);
        }
        let newly_blacklisted = result
            .plan
            .iter()
            .flat_map(|p| p.dust.iter())
            .filter(|d| d.newly_blacklisted)
            .count();
        self.dust_cleaned(account, ty, newly_blacklisted as u64);
        let mut cap_sold = false;
        for sold in &result.sold {
            if matches!(
                sold.fill_status,
                FillStatus::Filled | FillStatus::PartiallyFilled
            ) {
                self.position_sold(account, ty, sold.reason);
                cap_sold |= sold.reason == SellReason::Cap;
            }
        }
        if cap_sold {
            self.cap_enforced(account, ty);
        }
    }

    /// The figures of a result read back at start-up; no counter moves (see
    /// [`super::CoordinatorMetrics::restore_result`]).
    pub fn restore_result(&self, result: &JobResult) {
        if let Some(figures) = AccountFigures::from_result(result) {
            self.record(&result.account, result.account_type, figures);
        }
    }

    /// Replaces the account's figures.
    pub fn record(&self, account: &AccountId, account_type: AccountType, figures: AccountFigures) {
        let mut state = self.gauges.state();
        let entry = state.entry(account.clone()).or_insert_with(|| {
            self.start_counters(account, account_type);
            AccountState {
                account_type,
                figures: None,
                blacklist_size: None,
            }
        });
        entry.account_type = account_type;
        entry.figures = Some(figures);
    }

    /// Sets the number of blacklist entries of the account (read from the blacklist bucket).
    pub fn set_blacklist_size(&self, account: &AccountId, account_type: AccountType, size: u64) {
        let mut state = self.gauges.state();
        let entry = state.entry(account.clone()).or_insert_with(|| {
            self.start_counters(account, account_type);
            AccountState {
                account_type,
                figures: None,
                blacklist_size: None,
            }
        });
        entry.blacklist_size = Some(size);
    }

    /// A labelled account's counters start at 0 when it is first seen, so its panels show zero
    /// rather than no data until the first sale.
    fn start_counters(&self, account: &AccountId, account_type: AccountType) {
        if !self.labels.labelled(account, account_type) {
            return;
        }
        let labels = [account.as_str(), account_type.as_str()];
        self.account_dust_cleaned.with_label_values(&labels);
        self.account_cap_enforcements.with_label_values(&labels);
        for reason in SELL_REASONS {
            self.account_sold.with_label_values(&[
                account.as_str(),
                account_type.as_str(),
                reason.as_str(),
            ]);
        }
    }

    /// Drops an account that left the configuration: its series disappear at the next scrape.
    pub fn forget(&self, account: &AccountId) {
        self.gauges.state().remove(account);
        for ty in ACCOUNT_TYPES {
            let labels = [account.as_str(), ty.as_str()];
            let _ = self.account_dust_cleaned.remove_label_values(&labels);
            let _ = self.account_cap_enforcements.remove_label_values(&labels);
            for reason in SELL_REASONS {
                let _ = self.account_sold.remove_label_values(&[
                    account.as_str(),
                    ty.as_str(),
                    reason.as_str(),
                ]);
            }
        }
    }

    pub fn dust_cleaned(&self, account: &AccountId, account_type: AccountType, count: u64) {
        if count == 0 {
            return;
        }
        self.dust_cleaned
            .with_label_values(&[account_type.as_str()])
            .inc_by(count);
        if self.labels.labelled(account, account_type) {
            self.account_dust_cleaned
                .with_label_values(&[account.as_str(), account_type.as_str()])
                .inc_by(count);
        }
    }

    pub fn position_sold(
        &self,
        account: &AccountId,
        account_type: AccountType,
        reason: SellReason,
    ) {
        self.sold
            .with_label_values(&[account_type.as_str(), reason.as_str()])
            .inc();
        if self.labels.labelled(account, account_type) {
            self.account_sold
                .with_label_values(&[account.as_str(), account_type.as_str(), reason.as_str()])
                .inc();
        }
    }

    pub fn cap_enforced(&self, account: &AccountId, account_type: AccountType) {
        self.cap_enforcements
            .with_label_values(&[account_type.as_str()])
            .inc();
        if self.labels.labelled(account, account_type) {
            self.account_cap_enforcements
                .with_label_values(&[account.as_str(), account_type.as_str()])
                .inc();
        }
    }
}

/// Gauges computed from the account states at scrape time.
#[derive(Clone)]
struct FiguresCollector(Arc<FiguresInner>);

struct FiguresInner {
    labels: Arc<AccountLabels>,
    state: Mutex<HashMap<AccountId, AccountState>>,
    by_type: TypeGauges,
    by_account: AccountGauges,
}

struct TypeGauges {
    accounts: GaugeVec,
    active: GaugeVec,
    dust: GaugeVec,
    unpriced: GaugeVec,
    total_balance: GaugeVec,
    position_value: GaugeVec,
    free_capital: GaugeVec,
    largest: GaugeVec,
    smallest: GaugeVec,
    drift: GaugeVec,
    blacklist: GaugeVec,
    over_cap: GaugeVec,
}

struct AccountGauges {
    active: GaugeVec,
    max: GaugeVec,
    dust: GaugeVec,
    unpriced: GaugeVec,
    total_balance: GaugeVec,
    position_value: GaugeVec,
    free_capital: GaugeVec,
    largest: GaugeVec,
    smallest: GaugeVec,
    drift: GaugeVec,
    blacklist: GaugeVec,
    over_cap: GaugeVec,
    updated: GaugeVec,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, TelemetryError> {
    Ok(GaugeVec::new(Opts::new(name, help), labels)?)
}

impl TypeGauges {
    fn new() -> Result<TypeGauges, TelemetryError> {
        let l = &["account_type"];
        Ok(TypeGauges {
            accounts: gauge(
                "nija_accounts",
                "Accounts with figures from a fresh snapshot.",
                l,
            )?,
            active: gauge(
                "nija_positions_active",
                "Material positions (counted toward the cap), summed over accounts.",
                l,
            )?,
            dust: gauge(
                "nija_positions_dust",
                "Dust positions, summed over accounts.",
                l,
            )?,
            unpriced: gauge(
                "nija_positions_unpriced",
                "Positions without a trustworthy price (never sold), summed over accounts.",
                l,
            )?,
            total_balance: gauge(
                "nija_balance_total_usd",
                "Cash plus priced positions in USD, summed over accounts.",
                l,
            )?,
            position_value: gauge(
                "nija_position_value_usd",
                "Priced position value in USD, summed over accounts.",
                l,
            )?,
            free_capital: gauge(
                "nija_free_capital_usd",
                "Cash in USD, summed over accounts.",
                l,
            )?,
            largest: gauge(
                "nija_position_largest_usd",
                "Largest held position in USD over all accounts of the type.",
                l,
            )?,
            smallest: gauge(
                "nija_position_smallest_usd",
                "Smallest held position in USD over all accounts of the type.",
                l,
            )?,
            drift: gauge(
                "nija_reconciliation_drift_ratio",
                "Largest reconciliation drift (|ours - reference| / reference) over accounts.",
                l,
            )?,
            blacklist: gauge(
                "nija_blacklist_size",
                "Dust blacklist entries, summed over accounts.",
                l,
            )?,
            over_cap: gauge(
                "nija_accounts_over_cap",
                "Accounts whose last fresh count exceeds their cap.",
                l,
            )?,
        })
    }

    fn all(&self) -> [&GaugeVec; 12] {
        [
            &self.accounts,
            &self.active,
            &self.dust,
            &self.unpriced,
            &self.total_balance,
            &self.position_value,
            &self.free_capital,
            &self.largest,
            &self.smallest,
            &self.drift,
            &self.blacklist,
            &self.over_cap,
        ]
    }
}

impl AccountGauges {
    fn new() -> Result<AccountGauges, TelemetryError> {
        let l = &["account", "account_type"];
        Ok(AccountGauges {
            active: gauge(
                "nija_account_positions_active",
                "Material positions of the account.",
                l,
            )?,
            max: gauge(
                "nija_account_positions_max",
                "The account's position cap.",
                l,
            )?,
            dust: gauge(
                "nija_account_positions_dust",
                "Dust positions of the account.",
                l,
            )?,
            unpriced: gauge(
                "nija_account_positions_unpriced",
                "Unpriced positions of the account.",
                l,
            )?,
            total_balance: gauge(
                "nija_account_balance_total_usd",
                "Cash plus priced positions in USD.",
                l,
            )?,
            position_value: gauge(
                "nija_account_position_value_usd",
                "Priced position value in USD.",
                l,
            )?,
            free_capital: gauge("nija_account_free_capital_usd", "Cash in USD.", l)?,
            largest: gauge(
                "nija_account_position_largest_usd",
                "Largest held position in USD.",
                l,
            )?,
            smallest: gauge(
                "nija_account_position_smallest_usd",
                "Smallest held position in USD.",
                l,
            )?,
            drift: gauge(
                "nija_account_reconciliation_drift_ratio",
                "Reconciliation drift of the account (0.01 = 1%).",
                l,
            )?,
            blacklist: gauge(
                "nija_account_blacklist_size",
                "Dust blacklist entries of the account.",
                l,
            )?,
            over_cap: gauge(
                "nija_account_over_cap",
                "1 when the account's last fresh count exceeds its cap.",
                l,
            )?,
            updated: gauge(
                "nija_account_figures_timestamp_seconds",
                "When the account's figures were last taken (Unix seconds).",
                l,
            )?,
        })
    }

    fn all(&self) -> [&GaugeVec; 13] {
        [
            &self.active,
            &self.max,
            &self.dust,
            &self.unpriced,
            &self.total_balance,
            &self.position_value,
            &self.free_capital,
            &self.largest,
            &self.smallest,
            &self.drift,
            &self.blacklist,
            &self.over_cap,
            &self.updated,
        ]
    }
}

/// Running totals for one account type.
#[derive(Default)]
struct TypeTotals {
    accounts: u64,
    active: u64,
    dust: u64,
    unpriced: u64,
    total_balance: Usd,
    position_value: Usd,
    free_capital: Usd,
    largest: Option<Usd>,
    smallest: Option<Usd>,
    drift: Option<Decimal>,
    blacklist: u64,
    over_cap: u64,
}

impl FiguresCollector {
    fn new(labels: Arc<AccountLabels>) -> Result<FiguresCollector, TelemetryError> {
        Ok(FiguresCollector(Arc::new(FiguresInner {
            labels,
            state: Mutex::new(HashMap::new()),
            by_type: TypeGauges::new()?,
            by_account: AccountGauges::new()?,
        })))
    }

    fn state(&self) -> MutexGuard<'_, HashMap<AccountId, AccountState>> {
        // The map is valid after any panic elsewhere: every update is a single insert.
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recomputes every gauge from `state`; the caller holds the state lock for the whole scrape,
    /// so two concurrent scrapes never see each other's half-reset gauges.
    fn refresh(&self, state: &HashMap<AccountId, AccountState>) {
        let inner = &self.0;
        for g in inner
            .by_type
            .all()
            .into_iter()
            .chain(inner.by_account.all())
        {
            g.reset();
        }
        let mut totals: HashMap<AccountType, TypeTotals> = HashMap::new();
        for ty in ACCOUNT_TYPES {
            totals.insert(ty, TypeTotals::default());
        }
        for (account, s) in state {
            let t = totals.entry(s.account_type).or_default();
            t.blacklist += s.blacklist_size.unwrap_or(0);
            let labelled = inner.labels.labelled(account, s.account_type);
            let values = [account.as_str(), s.account_type.as_str()];
            let g = &inner.by_account;
            if labelled && let Some(size) = s.blacklist_size {
                g.blacklist.with_label_values(&values).set(size as f64);
            }
            let Some(f) = &s.figures else { continue };
            t.accounts += 1;
            t.active += u64::from(f.active_positions);
            t.dust += u64::from(f.dust_positions);
            t.unpriced += u64::from(f.unpriced_positions);
            t.total_balance = t.total_balance + f.total_balance.unwrap_or(Usd::ZERO);
            t.position_value = t.position_value + f.position_value.unwrap_or(Usd::ZERO);
            t.free_capital = t.free_capital + f.free_capital.unwrap_or(Usd::ZERO);
            t.largest = max_opt(t.largest, f.largest_position);
            t.smallest = match (t.smallest, f.smallest_position) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            t.drift = max_opt(t.drift, f.drift_ratio());
            t.over_cap += u64::from(f.over_cap());
            if !labelled {
                continue;
            }
            g.active
                .with_label_values(&values)
                .set(f64::from(f.active_positions));
            g.max
                .with_label_values(&values)
                .set(f64::from(f.max_positions));
            g.dust
                .with_label_values(&values)
                .set(f64::from(f.dust_positions));
            g.unpriced
                .with_label_values(&values)
                .set(f64::from(f.unpriced_positions));
            g.over_cap
                .with_label_values(&values)
                .set(if f.over_cap() { 1.0 } else { 0.0 });
            let money = [
                (&g.total_balance, f.total_balance),
                (&g.position_value, f.position_value),
                (&g.free_capital, f.free_capital),
                (&g.largest, f.largest_position),
                (&g.smallest, f.smallest_position),
            ];
            for (gauge, value) in money {
                if let Some(value) = value {
                    gauge.with_label_values(&values).set(usd(value));
                }
            }
            if let Some(drift) = f.drift_ratio() {
                g.drift.with_label_values(&values).set(decimal(drift));
            }
            if let Some(at) = f.at {
                g.updated
                    .with_label_values(&values)
                    .set(at.timestamp_millis() as f64 / 1000.0);
            }
        }
        let g = &inner.by_type;
        for (ty, t) in totals {
            let l = [ty.as_str()];
            g.accounts.with_label_values(&l).set(t.accounts as f64);
            g.active.with_label_values(&l).set(t.active as f64);
            g.dust.with_label_values(&l).set(t.dust as f64);
            g.unpriced.with_label_values(&l).set(t.unpriced as f64);
            g.total_balance
                .with_label_values(&l)
                .set(usd(t.total_balance));
            g.position_value
                .with_label_values(&l)
                .set(usd(t.position_value));
            g.free_capital
                .with_label_values(&l)
                .set(usd(t.free_capital));
            g.blacklist.with_label_values(&l).set(t.blacklist as f64);
            g.over_cap.with_label_values(&l).set(t.over_cap as f64);
            g.drift
                .with_label_values(&l)
                .set(decimal(t.drift.unwrap_or(Decimal::ZERO)));
            if let Some(v) = t.largest {
                g.largest.with_label_values(&l).set(usd(v));
            }
            if let Some(v) = t.smallest {
                g.smallest.with_label_values(&l).set(usd(v));
            }
        }
    }
}

fn max_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl Collector for FiguresCollector {
    fn desc(&self) -> Vec<&Desc> {
        let inner = &self.0;
        inner
            .by_type
            .all()
            .into_iter()
            .chain(inner.by_account.all())
            .flat_map(|g| g.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let state = self.state();
        self.refresh(&state);
        let inner = &self.0;
        inner
            .by_type
            .all()
            .into_iter()
            .chain(inner.by_account.all())
            .flat_map(|g| g.collect())
            .collect()
    }
}

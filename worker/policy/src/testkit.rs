//! Builders for the policy's tests: one account, a fixed clock, the DESIGN's default parameters.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nija_proto::ids::JobKind;
use nija_proto::plan::AccountType;
use nija_proto::state::{
    AdoptionStatus, BlacklistEntry, BlacklistReason, EntryPriceSource, PositionSource,
    TrackedPosition,
};
use nija_proto::{AccountId, JobId, Pct, Price, Quantity, Symbol, Usd};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::params::PolicyParams;
use crate::snapshot::{
    AccountSnapshot, JobContext, PolicyInput, PositionSnapshot, PriceObservation, SizeRules,
};

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

pub fn account() -> AccountId {
    AccountId::new("acct-1").unwrap()
}

/// DESIGN §5 defaults with the given cap.
pub fn params(max_positions: u32) -> PolicyParams {
    PolicyParams {
        max_positions,
        dust_threshold: Usd(dec!(1.00)),
        stop_loss_pct: Pct(dec!(3.0)),
        take_profit_pct: Pct(dec!(8.0)),
        trailing_stop_pct: Pct(dec!(5.0)),
        trailing_activation_pct: Pct(dec!(0)),
        max_hold: Duration::hours(24),
        max_liquidation_fraction: dec!(0.5),
        liquidation_window: Duration::hours(24),
        cash_assets: ["USD", "USDC", "USDT", "USDP"].map(String::from).to_vec(),
        max_price_age: Duration::seconds(30),
    }
}

/// One unit priced at `price`, freshly observed, fine-grained size rules, tradable.
pub fn priced_at(symbol: &str, quantity: Decimal, price: Decimal) -> PositionSnapshot {
    PositionSnapshot {
        symbol: sym(symbol),
        quantity: Quantity(quantity),
        available: Quantity(quantity),
        avg_entry_price: None,
        price: PriceObservation::Priced {
            price: Price(price),
            bid: None,
            ask: None,
            observed_at: now(),
        },
        rules: Some(SizeRules {
            min_size: Quantity(dec!(0.0001)),
            size_increment: Quantity(dec!(0.0001)),
            min_notional: None,
        }),
        tradable: true,
        market_open: true,
    }
}

/// A position of quantity 1 worth `usd_value`.
pub fn priced_position(symbol: &str, usd_value: Decimal) -> PositionSnapshot {
    priced_at(symbol, Decimal::ONE, usd_value)
}

pub fn unpriced_position(symbol: &str, quantity: Decimal) -> PositionSnapshot {
    PositionSnapshot {
        price: PriceObservation::Unpriced {
            reason: "price_fetch_failed".into(),
        },
        ..priced_at(symbol, quantity, Decimal::ONE)
    }
}

pub fn snapshot(positions: Vec<PositionSnapshot>) -> AccountSnapshot {
    AccountSnapshot {
        account: account(),
        account_type: AccountType::Platform,
        taken_at: now(),
        cash: BTreeMap::new(),
        positions,
        broker_total: None,
    }
}

pub fn blacklisted(symbol: &str) -> BlacklistEntry {
    BlacklistEntry {
        account: account(),
        symbol: sym(symbol),
        usd_value: Usd(dec!(0.10)),
        reason: BlacklistReason::Dust,
        added_at: now() - Duration::days(1),
        added_by: None,
    }
}

/// An open record of quantity 1.
pub fn tracked(
    symbol: &str,
    entry: Decimal,
    peak: Decimal,
    entry_time: DateTime<Utc>,
) -> TrackedPosition {
    TrackedPosition {
        account: account(),
        symbol: sym(symbol),
        quantity: Quantity(Decimal::ONE),
        entry_price: Price(entry),
        entry_price_source: EntryPriceSource::BrokerAverage,
        entry_time,
        peak: Price(peak),
        source: PositionSource::BrokerExisting,
        adoption_status: AdoptionStatus::Adopted,
        tracked: true,
        closed_at: None,
    }
}

pub fn job(kind: JobKind) -> JobContext {
    JobContext {
        job_id: JobId::scheduled(kind, &account(), 1),
        kind,
        force: false,
        max_positions: None,
    }
}

pub fn input(snapshot: AccountSnapshot, kind: JobKind, params: PolicyParams) -> PolicyInput {
    PolicyInput {
        snapshot,
        blacklist: Vec::new(),
        tracker: Vec::new(),
        recent_liquidations: Vec::new(),
        previous_total: None,
        now: now(),
        job: job(kind),
        params,
    }
}

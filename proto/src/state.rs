//! Per-account state kept in JetStream KV: dust blacklist entries (`nija-blacklist`) and tracked
//! positions (`nija-tracker`), both under the key `<account>.<symbol-token>`.
//!
//! Every record carries its account: the original system keyed one blacklist by symbol only, so
//! dust BTC in one account hid a large BTC position in another (DESIGN §7.10). The policy refuses
//! a record whose account is not the one it is deciding for.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Symbol;
use crate::ids::AccountId;
use crate::messages::Message;
use crate::money::{Price, Quantity, Usd};
use crate::names::account_symbol_key;

/// Why a symbol is on an account's blacklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlacklistReason {
    /// The policy found the position worth less than the dust threshold.
    Dust,
    /// An operator added it (`nija blacklist add`).
    Operator,
}

impl BlacklistReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlacklistReason::Dust => "dust",
            BlacklistReason::Operator => "operator",
        }
    }
}

impl fmt::Display for BlacklistReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One blacklisted symbol of one account (DESIGN §3.2). It stays until an operator removes it,
/// even when the position's value later reaches the threshold (it is then counted and flagged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    pub account: AccountId,
    pub symbol: Symbol,
    /// The position's value when it was blacklisted.
    pub usd_value: Usd,
    pub reason: BlacklistReason,
    pub added_at: DateTime<Utc>,
    /// The operator who added it; `None` when the policy did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
}

impl BlacklistEntry {
    /// The KV key: `<account>.<symbol-token>`.
    pub fn key(&self) -> String {
        account_symbol_key(&self.account, &self.symbol)
    }
}

/// Where a tracked position's entry price came from. Recorded so that an adopted price is never
/// mistaken for a real fill (the original synthesised `current × 1.01`, DESIGN §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryPriceSource {
    /// The broker's own average entry price.
    BrokerAverage,
    /// The broker reported none: the market price at the moment of adoption.
    AdoptionPrice,
    /// Registered by a strategy (`nija track --entry-price`).
    Strategy,
}

/// Who opened a tracked position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// Found at the broker; nija did not open it.
    BrokerExisting,
    /// Registered by a strategy through nija.
    NijaStrategy,
}

/// Lifecycle of a tracked position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdoptionStatus {
    /// Found at the broker and adopted.
    Adopted,
    /// Registered by a strategy.
    Registered,
    /// Vanished at the broker without a nija sell (sold elsewhere, transferred out).
    ClosedExternally,
    /// Vanished after a sell this nija job placed (exit or cap).
    ClosedByNija,
}

impl AdoptionStatus {
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            AdoptionStatus::ClosedExternally | AdoptionStatus::ClosedByNija
        )
    }
}

/// A position nija manages: entry, peak and provenance, persisted so exits survive restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedPosition {
    pub account: AccountId,
    pub symbol: Symbol,
    /// The quantity last seen at the broker. Set from the broker, never added to.
    pub quantity: Quantity,
    pub entry_price: Price,
    pub entry_price_source: EntryPriceSource,
    pub entry_time: DateTime<Utc>,
    /// Highest trustworthy price seen since entry; persisted by the sweep that observes it.
    pub peak: Price,
    pub source: PositionSource,
    pub adoption_status: AdoptionStatus,
    /// False once closed; a closed record is history, not a position.
    pub tracked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
}

impl TrackedPosition {
    /// The KV key: `<account>.<symbol-token>`.
    pub fn key(&self) -> String {
        account_symbol_key(&self.account, &self.symbol)
    }

    /// Whether this record describes a position nija currently manages.
    pub fn is_open(&self) -> bool {
        self.tracked && !self.adoption_status.is_closed()
    }
}

impl Message for BlacklistEntry {}
impl Message for TrackedPosition {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    #[test]
    fn blacklist_entry_round_trips_as_json_with_its_account() {
        let entry = BlacklistEntry {
            account: AccountId::new("user-1").unwrap(),
            symbol: Symbol::new("BRK.B-USD").unwrap(),
            usd_value: Usd(dec!(0.42)),
            reason: BlacklistReason::Dust,
            added_at: at(),
            added_by: None,
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["account"], "user-1");
        assert_eq!(json["usd_value"], "0.42");
        assert_eq!(json["reason"], "dust");
        assert!(json.get("added_by").is_none());
        let back: BlacklistEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
        assert_eq!(entry.key(), "user-1.BRK=2EB-USD");
    }

    #[test]
    fn tracked_position_round_trips_with_its_provenance() {
        let tracked = TrackedPosition {
            account: AccountId::new("platform").unwrap(),
            symbol: Symbol::new("ETH-USD").unwrap(),
            quantity: Quantity(dec!(1.5)),
            entry_price: Price(dec!(3000)),
            entry_price_source: EntryPriceSource::AdoptionPrice,
            entry_time: at(),
            peak: Price(dec!(3100)),
            source: PositionSource::BrokerExisting,
            adoption_status: AdoptionStatus::Adopted,
            tracked: true,
            closed_at: None,
        };
        let json = serde_json::to_value(&tracked).unwrap();
        assert_eq!(json["entry_price_source"], "adoption_price");
        assert_eq!(json["source"], "broker_existing");
        assert_eq!(json["adoption_status"], "adopted");
        assert_eq!(json["peak"], "3100");
        let back: TrackedPosition = serde_json::from_value(json).unwrap();
        assert_eq!(back, tracked);
        assert!(back.is_open());
        assert_eq!(back.key(), "platform.ETH-USD");
    }

    #[test]
    fn closed_records_are_not_open() {
        let json = serde_json::json!({
            "account": "a", "symbol": "BTC-USD", "quantity": "0", "entry_price": "1",
            "entry_price_source": "strategy", "entry_time": "2026-11-26T12:00:00Z", "peak": "1",
            "source": "nija_strategy", "adoption_status": "closed_externally", "tracked": false,
            "closed_at": "2026-11-26T13:00:00Z"
        });
        let record: TrackedPosition = serde_json::from_value(json).unwrap();
        assert!(!record.is_open());
        assert!(record.closed_at.is_some());
    }
}

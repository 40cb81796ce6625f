//! The state a decision asks the worker to persist in KV: blacklist additions and tracker records
//! (adoptions, resizes, new peaks, closures). Whole records, one per key, so a put is idempotent.

use nija_proto::state::{BlacklistEntry, TrackedPosition};
use nija_proto::{Price, Symbol};
use serde::{Deserialize, Serialize};

use crate::adoption::{AdoptionOutcome, PendingAdoption};

/// A new high observed by an exit sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakUpdate {
    pub symbol: Symbol,
    pub previous: Price,
    pub peak: Price,
}

/// Everything to persist after a decision. Every record is complete: put it under its `key()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChanges {
    /// New dust entries (log each with `BLACKLISTED`).
    pub blacklist_additions: Vec<BlacklistEntry>,
    /// Open tracker records to put, one per symbol, sorted by symbol.
    pub tracker_upserts: Vec<TrackedPosition>,
    /// Closed tracker records to put, sorted by symbol.
    pub tracker_closures: Vec<TrackedPosition>,
    /// Symbols adopted by this decision (their records are in `tracker_upserts`).
    pub adopted: Vec<Symbol>,
    /// New peaks (their records are in `tracker_upserts`).
    pub new_peaks: Vec<PeakUpdate>,
    /// Held positions adoption could not record yet.
    pub pending_adoption: Vec<PendingAdoption>,
}

impl StateChanges {
    /// The tracker changes of an adoption (e.g. after the re-read, with the symbols the job sold).
    pub fn from_adoption(outcome: AdoptionOutcome) -> StateChanges {
        let mut changes = StateChanges {
            adopted: outcome.adopted.iter().map(|r| r.symbol.clone()).collect(),
            tracker_closures: outcome.closed,
            pending_adoption: outcome.pending,
            ..StateChanges::default()
        };
        for record in outcome.adopted.into_iter().chain(outcome.resized) {
            changes.upsert(record);
        }
        changes
    }

    /// Adds or replaces the open record of `record.symbol`.
    pub(crate) fn upsert(&mut self, record: TrackedPosition) {
        match self
            .tracker_upserts
            .binary_search_by(|r| r.symbol.cmp(&record.symbol))
        {
            Ok(i) => self.tracker_upserts[i] = record,
            Err(i) => self.tracker_upserts.insert(i, record),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blacklist_additions.is_empty()
            && self.tracker_upserts.is_empty()
            && self.tracker_closures.is_empty()
    }

    /// Applies the changes to in-memory copies of the account's state, exactly as KV puts under
    /// each record's key would (what the worker's cache and the tests use).
    pub fn apply(&self, blacklist: &mut Vec<BlacklistEntry>, tracker: &mut Vec<TrackedPosition>) {
        for entry in &self.blacklist_additions {
            put(blacklist, entry.clone(), |e| e.key());
        }
        for record in self.tracker_upserts.iter().chain(&self.tracker_closures) {
            put(tracker, record.clone(), |r| r.key());
        }
    }
}

fn put<T>(records: &mut Vec<T>, record: T, key: impl Fn(&T) -> String) {
    let k = key(&record);
    match records.iter_mut().find(|r| key(r) == k) {
        Some(slot) => *slot = record,
        None => records.push(record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use rust_decimal_macros::dec;

    #[test]
    fn applying_replaces_by_key_and_never_duplicates() {
        let record = tracked("BTC-USD", dec!(100), dec!(100), now());
        let mut changes = StateChanges::default();
        changes.upsert(record.clone());
        let higher = TrackedPosition {
            peak: Price(dec!(120)),
            ..record.clone()
        };
        changes.upsert(higher.clone());
        assert_eq!(changes.tracker_upserts.len(), 1);
        let mut tracker = vec![record];
        changes.apply(&mut Vec::new(), &mut tracker);
        changes.apply(&mut Vec::new(), &mut tracker);
        assert_eq!(tracker, [higher]);
    }
}

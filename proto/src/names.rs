//! Subject, stream, consumer and bucket names (DESIGN §5.1), defined once.
//!
//! Deployment files and NATS permissions use exactly these names; a test in `deploy/` checks that.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, JobKind, WorkerId};

pub const JOBS_STREAM: &str = "NIJA_JOBS";
pub const RESULTS_STREAM: &str = "NIJA_RESULTS";
pub const DLQ_STREAM: &str = "NIJA_DLQ";

pub const JOBS_PREFIX: &str = "nija.jobs";
pub const RESULTS_PREFIX: &str = "nija.results";
pub const DLQ_PREFIX: &str = "nija.dlq";
pub const HEARTBEAT_PREFIX: &str = "nija.hb";
pub const CONTROL_PREFIX: &str = "nija.ctl";

pub const BLACKLIST_BUCKET: &str = "nija-blacklist";
pub const TRACKER_BUCKET: &str = "nija-tracker";
pub const LEASES_BUCKET: &str = "nija-leases";
pub const CONTROL_BUCKET: &str = "nija-control";
pub const ACCOUNTS_BUCKET: &str = "nija-accounts";

/// Key in `nija-control` that pauses all order placement.
pub const PAUSED_KEY: &str = "paused";

/// A job partition. Accounts map to a fixed number of partitions by a stable hash of their id;
/// workers lease partitions and pull only their partitions' jobs (affinity, DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Partition(pub u16);

impl Partition {
    /// The partition of an account among `count` partitions. FNV-1a 64: stable across Rust
    /// versions and platforms, unlike `std`'s hasher, so every component agrees forever.
    pub fn of(account: &AccountId, count: u16) -> Partition {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in account.as_str().bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Partition((hash % u64::from(count.max(1))) as u16)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `nija.jobs.<partition>.<kind>.<account>`
pub fn job_subject(partition: Partition, kind: JobKind, account: &AccountId) -> String {
    format!("{JOBS_PREFIX}.{partition}.{kind}.{account}")
}

/// Every job subject of one partition: what a worker's consumer for that partition filters on.
pub fn partition_jobs_filter(partition: Partition) -> String {
    format!("{JOBS_PREFIX}.{partition}.>")
}

/// The durable consumer name of one partition.
pub fn partition_consumer(partition: Partition) -> String {
    format!("nija-jobs-p{partition}")
}

/// `nija.results.<kind>.<account>`
pub fn result_subject(kind: JobKind, account: &AccountId) -> String {
    format!("{RESULTS_PREFIX}.{kind}.{account}")
}

/// `nija.dlq.<kind>`; `kind` is `unknown` when the message could not be decoded far enough.
pub fn dlq_subject(kind: &str) -> String {
    format!("{DLQ_PREFIX}.{kind}")
}

/// `nija.hb.<worker>`
pub fn heartbeat_subject(worker: &WorkerId) -> String {
    format!("{HEARTBEAT_PREFIX}.{worker}")
}

/// `nija.ctl.<verb>`
pub fn control_subject(verb: &str) -> String {
    format!("{CONTROL_PREFIX}.{verb}")
}

/// Tracker and blacklist key: `<account>.<symbol-token>`.
pub fn account_symbol_key(account: &AccountId, symbol: &crate::Symbol) -> String {
    format!("{account}.{}", symbol.token())
}

/// The account and symbol of an [`account_symbol_key`]; `None` for a key nija did not write.
pub fn parse_account_symbol_key(key: &str) -> Option<(AccountId, crate::Symbol)> {
    let (account, token) = key.split_once('.')?;
    Some((
        AccountId::new(account).ok()?,
        crate::Symbol::from_token(token).ok()?,
    ))
}

/// Lease key of an account: `account.<id>`.
pub fn account_lease_key(account: &AccountId) -> String {
    format!("account.{account}")
}

/// Lease key of a partition: `partition.<n>`.
pub fn partition_lease_key(partition: Partition) -> String {
    format!("partition.{partition}")
}

/// Control key pausing one account: `paused.<account>`.
pub fn paused_account_key(account: &AccountId) -> String {
    format!("paused.{account}")
}

/// Control key quarantining one account: `quarantined.<account>`.
pub fn quarantined_account_key(account: &AccountId) -> String {
    format!("quarantined.{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_hash_is_stable_and_in_range() {
        let a = AccountId::new("user-0001").unwrap();
        let p = Partition::of(&a, 64);
        assert!(p.0 < 64);
        // Pinned: changing the hash would move every account's affinity on upgrade.
        assert_eq!(p, Partition(10));
    }

    #[test]
    fn subjects_follow_the_wire_map() {
        let a = AccountId::new("user-7").unwrap();
        assert_eq!(
            job_subject(Partition(3), JobKind::Enforce, &a),
            "nija.jobs.3.enforce.user-7"
        );
        assert_eq!(
            result_subject(JobKind::ExitSweep, &a),
            "nija.results.exit_sweep.user-7"
        );
        let s = crate::Symbol::new("BRK.B-USD").unwrap();
        assert_eq!(account_symbol_key(&a, &s), "user-7.BRK=2EB-USD");
        assert_eq!(parse_account_symbol_key("user-7.BRK=2EB-USD"), Some((a, s)));
        assert_eq!(parse_account_symbol_key("not-a-key"), None);
    }
}

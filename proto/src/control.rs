//! Control: the flags kept in the `nija-control` bucket, and the requests and replies between the
//! CLI and the coordinator on `nija.ctl.<verb>` (request/reply, JSON in the versioned envelope).
//!
//! Every reply is a [`Reply`]: `{"ok": ...}` or `{"error": {"code": ..., "message": ...}}`.
//! Answers that can grow with the fleet (status, normalization reports) are paged with
//! `offset`/`limit` and say where the next page starts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Symbol;
use crate::ids::{AccountId, JobId, JobKind, WorkerId};
use crate::messages::{JobResult, Message, ResultStatus};
use crate::money::{Price, Quantity, Usd};
use crate::names::Partition;
use crate::plan::AccountType;
use crate::state::{BlacklistEntry, TrackedPosition};

/// A pause or quarantine flag: who (operator) or why (quarantine reason), and when. The absence of
/// the key means the flag is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFlag {
    /// The operator who paused, or the reason of a quarantine.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// The verbs (`nija.ctl.<verb>`).
pub const VERB_STATUS: &str = "status";
pub const VERB_ENFORCE: &str = "enforce";
pub const VERB_NORMALIZE: &str = "normalize";
pub const VERB_NORMALIZE_REPORT: &str = "normalize_report";
pub const VERB_PAUSE: &str = "pause";
pub const VERB_RESUME: &str = "resume";
pub const VERB_BLACKLIST: &str = "blacklist";
pub const VERB_TRACK: &str = "track";

/// Default and largest page sizes.
pub const DEFAULT_PAGE: u32 = 500;
pub const MAX_PAGE: u32 = 2000;

/// A reply: the answer or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    Error(ControlError),
}

/// What went wrong with a control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be decoded or is invalid.
    BadRequest,
    /// The account is not configured.
    UnknownAccount,
    /// No result before the coordinator's wait ended (the job may still finish; see status).
    Timeout,
    /// The coordinator could not reach NATS state (KV, streams).
    Internal,
    /// No such normalization run.
    UnknownRun,
}

impl ControlError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ControlError {
        ControlError {
            code,
            message: message.into(),
        }
    }
}

/// `status`: the workers, the global pause and one page of accounts (ordered by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    #[serde(default)]
    pub offset: u32,
    /// Accounts per page (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]); 0 = none, totals only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    pub coordinator_started_at: DateTime<Utc>,
    pub mode: String,
    pub paused: Option<ControlFlag>,
    pub workers: Vec<WorkerSummary>,
    pub totals: Totals,
    pub accounts: Vec<AccountSummary>,
    pub offset: u32,
    /// Where the next page starts; `None` on the last page.
    pub next_offset: Option<u32>,
}

/// Fleet-wide counts. Status maps are keyed by `ResultStatus::as_str`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub accounts: u32,
    pub workers_alive: u32,
    pub jobs_in_flight: u32,
    /// Jobs past their deadline without a result since the coordinator started.
    pub stalls: u64,
    /// Results received since the coordinator started (rebuilt last results included), by status.
    pub results_by_status: BTreeMap<String, u64>,
    /// Accounts by the status of their last enforce (or normalize) result.
    pub accounts_by_last_status: BTreeMap<String, u32>,
    pub paused_accounts: u32,
    pub quarantined_accounts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSummary {
    pub worker: WorkerId,
    pub alive: bool,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub partitions: Vec<Partition>,
    pub leased_accounts: u32,
    pub jobs_in_flight: u32,
    pub draining: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub account: AccountId,
    pub account_type: AccountType,
    pub broker: String,
    pub partition: Partition,
    pub in_flight: Option<InFlightJob>,
    /// The last result of each kind.
    pub last: Vec<LastResult>,
    pub results_by_status: BTreeMap<String, u64>,
    pub stalls: u64,
    pub paused: Option<ControlFlag>,
    pub quarantined: Option<ControlFlag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightJob {
    pub job_id: JobId,
    pub kind: JobKind,
    pub published_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub kind: JobKind,
    pub job_id: JobId,
    pub status: ResultStatus,
    pub worker: WorkerId,
    pub finished_at: DateTime<Utc>,
    pub count_before: Option<u32>,
    pub count_after: Option<u32>,
    pub max_allowed: u32,
    pub sold: u32,
    pub errors: u32,
}

impl LastResult {
    pub fn of(result: &JobResult) -> LastResult {
        LastResult {
            kind: result.kind,
            job_id: result.job_id.clone(),
            status: result.status,
            worker: result.worker.clone(),
            finished_at: result.finished_at,
            count_before: result.count_before,
            count_after: result.count_after,
            max_allowed: result.max_allowed,
            sold: u32::try_from(result.sold.len()).unwrap_or(u32::MAX),
            errors: u32::try_from(result.errors.len()).unwrap_or(u32::MAX),
        }
    }
}

/// `enforce`: one enforce job for one account, now; the reply waits for its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforceRequest {
    pub account: AccountId,
    #[serde(default)]
    pub dry_run: bool,
    /// Pass the liquidation guard.
    #[serde(default)]
    pub force: bool,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforceReply {
    pub job_id: JobId,
    pub result: JobResult,
}

/// `normalize`: one normalize job per account (all configured accounts when `accounts` is
/// absent). The reply names a run; its report is read with `normalize_report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountId>>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_positions: Option<u32>,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeStarted {
    pub run_id: String,
    pub accounts: u32,
}

/// `normalize_report`: the progress, the summary and one page of results of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeReportRequest {
    pub run_id: String,
    #[serde(default)]
    pub offset: u32,
    /// Results per page (default 100, at most [`MAX_PAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeReport {
    pub run_id: String,
    pub operator: String,
    pub dry_run: bool,
    pub max_positions: Option<u32>,
    pub started_at: DateTime<Utc>,
    pub accounts: u32,
    pub finished: u32,
    /// Accounts whose job passed its deadline without a result (counted as failures).
    pub stalled: Vec<AccountId>,
    pub summary: NormalizeSummary,
    /// Results in account order, one page.
    pub results: Vec<JobResult>,
    pub offset: u32,
    pub next_offset: Option<u32>,
}

impl NormalizeReport {
    pub fn is_done(&self) -> bool {
        self.finished + u32::try_from(self.stalled.len()).unwrap_or(u32::MAX) >= self.accounts
    }
}

/// Sums over every finished result of a run (not only the page): what is actually there after a
/// fresh re-read, never the configured cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeSummary {
    pub by_status: BTreeMap<String, u32>,
    pub positions_before: u64,
    pub positions_after: u64,
    /// Accounts whose count after the run is unknown (failed re-read or snapshot).
    pub unknown_after: u32,
    pub sold: u64,
    pub sold_usd: Usd,
    /// Positions newly blacklisted as dust.
    pub dust_cleaned: u64,
    pub unpriced: u64,
    pub unsellable: u64,
}

impl NormalizeSummary {
    pub fn add(&mut self, result: &JobResult) {
        *self
            .by_status
            .entry(result.status.as_str().to_string())
            .or_default() += 1;
        self.positions_before += u64::from(result.count_before.unwrap_or(0));
        match result.count_after {
            Some(n) => self.positions_after += u64::from(n),
            None => self.unknown_after += 1,
        }
        self.sold += result.sold.len() as u64;
        self.sold_usd = self.sold_usd + result.sold.iter().map(|s| s.usd_value).sum();
        if let Some(plan) = &result.plan {
            self.dust_cleaned += plan.dust.iter().filter(|d| d.newly_blacklisted).count() as u64;
            self.unpriced += plan.unpriced.len() as u64;
            self.unsellable += plan.unsellable.len() as u64;
        }
    }
}

/// `pause` / `resume`: all order placement, or one account. Resuming an account also lifts its
/// quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseReply {
    pub account: Option<AccountId>,
    /// True when paused after the request, false when resumed.
    pub paused: bool,
}

/// `blacklist`: list, add, remove or clear one account's blacklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistRequest {
    pub account: AccountId,
    pub op: BlacklistOp,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BlacklistOp {
    List,
    Add {
        symbol: Symbol,
        /// The position's value if known (recorded, not used to decide).
        #[serde(default)]
        usd_value: Usd,
    },
    Remove {
        symbol: Symbol,
    },
    Clear,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistReply {
    pub account: AccountId,
    /// Entries removed or added by this request.
    pub changed: u32,
    /// The blacklist after the request.
    pub entries: Vec<BlacklistEntry>,
}

/// `track`: register a strategy-opened position (`source = nija_strategy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRequest {
    pub account: AccountId,
    pub symbol: Symbol,
    pub entry_price: Price,
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_time: Option<DateTime<Utc>>,
    /// Default: zero; the next snapshot sets it from the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackReply {
    pub position: TrackedPosition,
    /// True when an open record for the symbol existed and was replaced.
    pub replaced: bool,
}

impl Message for ControlFlag {}
impl Message for StatusRequest {}
impl Message for StatusReply {}
impl Message for EnforceRequest {}
impl Message for EnforceReply {}
impl Message for NormalizeRequest {}
impl Message for NormalizeStarted {}
impl Message for NormalizeReportRequest {}
impl Message for NormalizeReport {}
impl Message for PauseRequest {}
impl Message for PauseReply {}
impl Message for BlacklistRequest {}
impl Message for BlacklistReply {}
impl Message for TrackRequest {}
impl Message for TrackReply {}
/// An externally tagged enum: `{"ok": …}` or `{"error": …}`, an object like every message.
impl<T: Serialize> Message for Reply<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{decode, encode};

    #[test]
    fn replies_round_trip_in_the_envelope() {
        let ok: Reply<PauseReply> = Reply::Ok(PauseReply {
            account: None,
            paused: true,
        });
        let bytes = encode(&ok);
        assert_eq!(decode::<Reply<PauseReply>>(&bytes).expect("test data"), ok);
        let err: Reply<PauseReply> =
            Reply::Error(ControlError::new(ErrorCode::UnknownAccount, "no user-9"));
        let text = String::from_utf8(encode(&err)).expect("test data");
        assert!(text.contains("\"unknown_account\""), "{text}");
        assert_eq!(
            decode::<Reply<PauseReply>>(text.as_bytes()).expect("test data"),
            err
        );
    }

    #[test]
    fn blacklist_ops_are_tagged() {
        let req = BlacklistRequest {
            account: AccountId::new("a").expect("test data"),
            op: BlacklistOp::Remove {
                symbol: Symbol::new("BTC-USD").expect("test data"),
            },
            operator: "ops".into(),
        };
        let bytes = encode(&req);
        assert!(String::from_utf8_lossy(&bytes).contains("\"op\":{\"op\":\"remove\""));
        assert_eq!(decode::<BlacklistRequest>(&bytes).expect("test data"), req);
    }
}

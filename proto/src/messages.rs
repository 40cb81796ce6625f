//! Versioned messages: jobs, results, heartbeats and dead letters.
//!
//! Every message is an [`Envelope`] carrying `"schema": "MAJOR.MINOR"`. Readers accept any minor
//! version of their major (new optional fields), and refuse another major with
//! [`DecodeError::UnsupportedVersion`] — never a panic, never a silent default.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Symbol;
use crate::ids::{AccountId, ClientOrderId, JobId, JobKind, WorkerId};
use crate::money::{Price, Quantity, Usd};
use crate::names::Partition;
use crate::plan::{AccountType, Mode, Plan, SellReason};

/// The schema this build writes.
pub const SCHEMA_MAJOR: u16 = 1;
pub const SCHEMA_MINOR: u16 = 0;

/// `MAJOR.MINOR` of a message's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub major: u16,
    pub minor: u16,
}

impl SchemaVersion {
    pub const CURRENT: SchemaVersion = SchemaVersion {
        major: SCHEMA_MAJOR,
        minor: SCHEMA_MINOR,
    };
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for SchemaVersion {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        let bad = || DecodeError::BadVersion(s.to_string());
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        Ok(SchemaVersion {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a message could not be decoded. The worker dead-letters the message with this text.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("message is not valid JSON or lacks required fields: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "message has no \"schema\" field; every nija message carries \"schema\": \"MAJOR.MINOR\""
    )]
    MissingVersion,
    #[error("schema version {0:?} is malformed; expected \"MAJOR.MINOR\"")]
    BadVersion(String),
    #[error(
        "unsupported schema version {found} (this build reads {supported}.x): upgrade the reader or \
         republish with a compatible writer"
    )]
    UnsupportedVersion {
        found: SchemaVersion,
        supported: u16,
    },
}

/// A message with its schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub schema: SchemaVersion,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Envelope<T> {
    pub fn new(body: T) -> Envelope<T> {
        Envelope {
            schema: SchemaVersion::CURRENT,
            body,
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    schema: Option<String>,
}

/// A type that travels in nija's envelope: a struct, serialised as a JSON object (the envelope
/// adds `"schema"` beside its fields), so encoding cannot fail.
pub trait Message: Serialize {}

/// Serialises a message in the current schema.
pub fn encode<T: Message>(body: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a, T> {
        schema: SchemaVersion,
        #[serde(flatten)]
        body: &'a T,
    }
    // Serialising plain data with string keys cannot fail.
    serde_json::to_vec(&Out {
        schema: SchemaVersion::CURRENT,
        body,
    })
    .unwrap_or_default()
}

/// Decodes a message: checks the schema's major version first, then the body.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(bytes)?;
    let version: SchemaVersion = probe.schema.ok_or(DecodeError::MissingVersion)?.parse()?;
    if version.major != SCHEMA_MAJOR {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: SCHEMA_MAJOR,
        });
    }
    let envelope: Envelope<T> = serde_json::from_slice(bytes)?;
    Ok(envelope.body)
}

/// Who asked for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "name", rename_all = "snake_case")]
pub enum TriggeredBy {
    Schedule,
    Operator(String),
}

impl fmt::Display for TriggeredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggeredBy::Schedule => f.write_str("schedule"),
            TriggeredBy::Operator(name) => write!(f, "operator:{name}"),
        }
    }
}

/// A unit of work for one account, published on `nija.jobs.<partition>.<kind>.<account>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub kind: JobKind,
    pub account: AccountId,
    pub partition: Partition,
    pub scheduled_at: DateTime<Utc>,
    /// The job must end (result published) before this instant.
    pub deadline: DateTime<Utc>,
    pub triggered_by: TriggeredBy,
    /// Pass the liquidation guard (`nija enforce --force`).
    #[serde(default)]
    pub force: bool,
    /// Plan and report, place nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Overrides the account's cap for this job (`nija normalize --max-positions N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_positions: Option<u32>,
}

/// The outcome of a job (DESIGN §3.4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Compliant,
    Enforced,
    Partial,
    CapUnreachable,
    RefusedByGuard,
    Paused,
    ObserveOnly,
    Failed,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Compliant => "compliant",
            ResultStatus::Enforced => "enforced",
            ResultStatus::Partial => "partial",
            ResultStatus::CapUnreachable => "cap_unreachable",
            ResultStatus::RefusedByGuard => "refused_by_guard",
            ResultStatus::Paused => "paused",
            ResultStatus::ObserveOnly => "observe_only",
            ResultStatus::Failed => "failed",
        }
    }

    /// Whether the job did what it should (the CLI's exit code counts the others as failures).
    pub fn is_success(self) -> bool {
        !matches!(self, ResultStatus::Failed | ResultStatus::Partial)
    }
}

/// How a placed order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillStatus {
    Filled,
    PartiallyFilled,
    Cancelled,
    Rejected,
    Expired,
    /// Still working when the job's deadline came.
    Open,
    /// The broker could not say whether the order exists; it was not re-sent.
    Unknown,
}

/// One sell the job carried out (or tried to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldPosition {
    pub symbol: Symbol,
    pub reason: SellReason,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<SellReason>,
    /// Quantity ordered.
    pub quantity: Quantity,
    pub filled_quantity: Quantity,
    /// `quantity − filled_quantity`: reported, never re-sold blindly.
    pub remainder: Quantity,
    /// Value at the plan's price.
    pub usd_value: Usd,
    pub average_fill_price: Option<Price>,
    pub order_id: Option<String>,
    pub client_order_id: ClientOrderId,
    pub fill_status: FillStatus,
    /// True when the order already existed at the broker (a re-run job found it by client id).
    #[serde(default)]
    pub already_placed: bool,
}

/// An error met during a job, classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// `snapshot`, `price`, `order`, `verify`, `lease`, `deadline`, or a broker error class.
    pub class: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<Symbol>,
}

/// The result of one job, published on `nija.results.<kind>.<account>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    pub job_id: JobId,
    pub kind: JobKind,
    pub account: AccountId,
    pub account_type: AccountType,
    pub worker: WorkerId,
    pub status: ResultStatus,
    pub triggered_by: TriggeredBy,
    pub mode: Mode,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub forced: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Material positions before (from the fresh snapshot); `None` when the snapshot failed.
    pub count_before: Option<u32>,
    /// Material positions after, from a fresh re-read (never from the cap).
    pub count_after: Option<u32>,
    pub max_allowed: u32,
    pub excess: u32,
    pub sold: Vec<SoldPosition>,
    /// The plan the job carried out; `None` when it never got that far.
    pub plan: Option<Plan>,
    pub errors: Vec<JobError>,
}

/// A worker's liveness report, on core NATS `nija.hb.<worker>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub worker: WorkerId,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    pub partitions: Vec<Partition>,
    /// Accounts whose lease and broker session this worker holds.
    pub leased_accounts: Vec<AccountId>,
    pub jobs_in_flight: u32,
    pub last_job_finished_at: Option<DateTime<Utc>>,
    /// Whether the worker is draining (SIGTERM received).
    #[serde(default)]
    pub draining: bool,
}

/// A message that could not be processed, on `nija.dlq.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subject: String,
    pub error: String,
    /// The raw payload as UTF-8 (lossy: undecodable bytes become U+FFFD).
    pub raw: String,
    pub worker: Option<WorkerId>,
    pub received_at: DateTime<Utc>,
}

impl Message for Job {}
impl Message for JobResult {}
impl Message for Heartbeat {}
impl Message for DeadLetter {}

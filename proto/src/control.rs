//! Control: the flags kept in the `nija-control` bucket, and the requests and replies between the
//! CLI and the coordinator on `nija.ctl.<verb>` (request/reply, JSON in the versioned envelope).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A pause or quarantine flag: who (operator) or why (quarantine reason), and when. The absence of
/// the key means the flag is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFlag {
    /// The operator who paused, or the reason of a quarantine.
    pub by: String,
    pub at: DateTime<Utc>,
}

//! The nija worker: executes per-account jobs (enforce, normalize, exit sweep) against brokers.
//!
//! - [`worker`]: the process's life — connect, follow state, heartbeat, claim partitions, drain.
//! - [`partitions`] and [`membership`]: which partitions this worker pulls (fair share of the
//!   live workers, leases in KV).
//! - [`dispatch`]: one job message from pull to ack (DLQ for garbage, in-progress acks).
//! - [`session`]: per-account broker sessions, account leases, quarantine.
//! - [`execute`]: snapshot → plan → act → verify → result.
//! - [`market`]: prices, rules and market hours shared by all accounts of a worker.
//! - [`state`]: live views of the blacklist and tracker buckets.
//! - [`liquidations`]: the guard window's history, read from results.

pub mod context;
pub mod dispatch;
pub mod execute;
pub mod liquidations;
pub mod market;
pub mod membership;
pub mod metered;
pub mod partitions;
pub mod session;
pub mod state;
pub mod worker;

pub use worker::{WorkerError, run};

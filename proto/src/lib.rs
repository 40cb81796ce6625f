//! The wire contract of nija.
//!
//! Everything that crosses NATS between the coordinator, the workers and the CLI is defined here
//! once: identifiers as validated newtypes, money as decimals, subject/stream/bucket names, and the
//! versioned message envelopes. The policy crate builds on the same value types, so a plan travels
//! into a result unchanged.
//!
//! This crate has no async runtime, HTTP or NATS dependency on purpose: it is plain data.

pub mod control;
pub mod ids;
pub mod messages;
pub mod money;
pub mod names;
pub mod plan;
pub mod state;

pub use ids::{AccountId, ClientOrderId, IdError, JobId, WorkerId};
pub use ids::{Symbol, SymbolError};
pub use money::{Pct, Price, Quantity, Usd};
pub use names::Partition;

//! The nija coordinator: schedules enforce and exit-sweep jobs per account (at most one in flight
//! each), aggregates results, supervises workers through their heartbeats, and answers the
//! operator's control API. It holds no state that is not rebuilt from NATS on start.
//!
//! - [`schedule`]: when jobs are due, deterministic ids per slot, one in flight, stalls (pure).
//! - [`fleet`]: per-account results and worker liveness (pure).
//! - [`runs`]: normalization runs and their exact reports (pure).
//! - `core`: the above behind one lock, with operators waiting for results.
//! - [`service`]: start-up, rebuild, the supervised tasks, `/metrics`.
//! - `control`: the `nija.ctl.<verb>` request handlers.
//! - [`settings`]: the configuration file resolved into [`Settings`].

mod control;
mod core;
pub mod fleet;
pub mod runs;
pub mod schedule;
pub mod service;
pub mod settings;

pub use service::{Running, Settings, StartError, run, start};

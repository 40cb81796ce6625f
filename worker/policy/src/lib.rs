//! The pure safety policy of nija: a snapshot in, a plan out.
//!
//! No async runtime, no I/O, no clock of its own (time is an argument). Everything here is a
//! function of its inputs, which is what makes it property-testable.
//!
//! - [`decide`] / [`enforce`] / [`exit_sweep`]: a [`PolicyInput`] in, a [`Decision`] out (the
//!   [`Plan`](nija_proto::plan::Plan) to carry out and the [`StateChanges`] to persist).
//! - [`adopt`]: the tracker brought in line with a snapshot (also after the re-read, with the
//!   symbols the job sold).
//! - [`verify()`] / [`material_count`]: the count of a fresh re-read.
//!
//! Choices the callers should know:
//! - Staleness (`max_price_age`, bid/ask band) applies to exits and to adoption prices; cap
//!   ranking and dust use any positive fetched price. A zero or negative price, or a value above
//!   [`math::MAX_POSITION_USD`], is no price at all (unpriced).
//! - A cap sell must take its position below the dust threshold (else `remainder_stays_material`),
//!   so the plan's count after selling is exact; an exit sells the available quantity regardless.
//! - Blacklist and tracker records of another account are refused ([`PolicyError::ForeignState`]).
//! - Holdings of cash assets (`USDC-USD`) are cash at 1:1; zero or negative quantities are not
//!   positions.

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap; library code may not

pub mod adoption;
mod cap;
pub mod changes;
mod decide;
mod dust;
pub mod error;
pub mod exits;
pub mod guard;
pub mod math;
pub mod params;
pub mod reconcile;
mod sellable;
pub mod snapshot;
pub mod verify;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod regressions;
#[cfg(test)]
mod testkit;

pub use adoption::{AdoptionOutcome, PendingAdoption, adopt};
pub use changes::{PeakUpdate, StateChanges};
pub use decide::{Decision, decide, enforce, exit_sweep};
pub use error::PolicyError;
pub use params::PolicyParams;
pub use snapshot::{
    AccountSnapshot, CapLiquidation, JobContext, PolicyInput, PositionSnapshot, PriceObservation,
    SizeRules,
};
pub use verify::{Verification, material_count, verify};

//! The pure safety policy of nija: a snapshot in, a plan out.
//!
//! No async runtime, no I/O, no clock of its own (time is an argument). Everything here is a
//! function of its inputs, which is what makes it property-testable.

pub mod params;

pub use params::PolicyParams;

//! Broker adapters behind one [`Broker`] trait.
//!
//! Each venue has its own folder: the raw HTTP client that speaks the venue's wire protocol and
//! authentication, and the domain-level adapter that maps it onto [`Broker`] with nija's canonical
//! symbols and decimal money. Everything here is I/O at the edge; the policy never sees a broker.

pub mod broker;
pub mod error;

pub use broker::*;
pub use error::{BrokerError, ErrorClass};

//! Broker adapters behind one [`Broker`] trait.
//!
//! Each venue has its own folder: `http/` speaks the venue's wire protocol and authentication
//! (raw requests, response types, error classification), beside it the domain-level adapter maps
//! that onto [`Broker`] with nija's canonical symbols and decimal money. `common/` holds what the
//! venues share (HTTP client, retries, rate limits, nonces, clock checks). Everything here is I/O
//! at the edge; the policy never sees a broker.
//!
//! The worker opens a session with [`build_broker`] from [`BrokerSettings`] and [`Credentials`],
//! then [`Broker::connect`] (authentication, symbol mapping, clock check).

pub mod alpaca;
pub mod broker;
pub mod coinbase;
pub mod common;
pub mod credentials;
pub mod error;
pub mod kraken;
pub mod settings;

pub use broker::*;
pub use common::http::Timeouts;
pub use common::observe::{BrokerObserver, set_observer};
pub use common::rate_limit::RateLimit;
pub use common::resolve::LookupSettings;
pub use common::retry::RetryPolicy;
pub use credentials::{Credentials, CredentialsError, K8sApiSettings, K8sSecretError};
pub use error::{BrokerError, ErrorClass};
pub use settings::{BrokerSettings, build_broker};

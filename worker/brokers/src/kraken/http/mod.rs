//! The raw Kraken client: API-Sign authentication, nonces, endpoints, response types and error
//! classification.

pub mod auth;
pub mod client;
pub mod errors;
pub mod models;

/// Live REST host.
pub const LIVE_URL: &str = "https://api.kraken.com";

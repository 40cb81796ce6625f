//! The raw Coinbase client: JWT authentication, endpoints, response types and error
//! classification.

pub mod auth;
pub mod client;
pub mod errors;
pub mod models;

/// Live REST host.
pub const LIVE_URL: &str = "https://api.coinbase.com";
/// Path prefix of every brokerage endpoint.
pub const API_PREFIX: &str = "/api/v3/brokerage";

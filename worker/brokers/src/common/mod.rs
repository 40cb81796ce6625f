//! Pieces every venue shares: the HTTP client, retries, rate limiting, nonces, clock checks,
//! decimal parsing and the metrics hooks. Nothing here knows a venue's wire format.

pub mod clock;
pub mod http;
pub mod nonce;
pub mod observe;
pub mod parse;
pub mod rate_limit;
pub mod resolve;
pub mod retry;

//! The raw Alpaca client: key headers, endpoints, response types and error classification.

pub mod client;
pub mod errors;
pub mod models;

/// Live trading host.
pub const LIVE_URL: &str = "https://api.alpaca.markets";
/// Paper trading host (separate account and keys).
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Market data host, for live and paper alike.
pub const DATA_URL: &str = "https://data.alpaca.markets";
/// Key id header.
pub const KEY_ID_HEADER: &str = "APCA-API-KEY-ID";
/// Secret key header.
pub const SECRET_KEY_HEADER: &str = "APCA-API-SECRET-KEY";

/// The market data host for a trading base URL: Alpaca's own hosts use [`DATA_URL`]; anything
/// else (a simulator) serves data itself.
pub fn default_data_url(base_url: &str) -> String {
    let own = reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.ends_with("alpaca.markets")))
        .unwrap_or(false);
    if own {
        DATA_URL.to_string()
    } else {
        base_url.to_string()
    }
}

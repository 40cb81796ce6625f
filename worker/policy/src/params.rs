//! The policy parameters of one account, fully resolved (defaults, environment overrides and
//! per-account keys already applied by `nija-config`). One type, read in one place (DESIGN §7.9).

use chrono::Duration;
use nija_proto::{Pct, Usd};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyParams {
    /// Material positions allowed (PLATFORM default 8, USER default 5).
    pub max_positions: u32,
    /// Strictly below this USD value a priced position is dust (1.00 exactly is not dust).
    pub dust_threshold: Usd,
    pub stop_loss_pct: Pct,
    pub take_profit_pct: Pct,
    pub trailing_stop_pct: Pct,
    pub trailing_activation_pct: Pct,
    /// Maximum hold time (`max_hold_hours` is a decimal number of hours in the file).
    pub max_hold: Duration,
    /// Largest fraction (0..=1) of the account's priced material value that cap liquidation may
    /// sell in one run or within `liquidation_window`, unless forced.
    pub max_liquidation_fraction: Decimal,
    pub liquidation_window: Duration,
    /// Canonical names of the cash assets (`USD`, `USDC`, ...): cash, never positions.
    pub cash_assets: Vec<String>,
    /// A price older than this is stale and treated as unpriced for exits.
    pub max_price_age: Duration,
}

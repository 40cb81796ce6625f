//! The policy's output as plain data: what to sell and why, what is kept, dust, unpriced or
//! unsellable. Results, logs and reports carry these values unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Symbol;
use crate::ids::{AccountId, ClientOrderId, JobId, JobKind};
use crate::money::{Pct, Price, Quantity, Usd};

/// PLATFORM or USER account (they have different default caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    Platform,
    User,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Platform => "platform",
            AccountType::User => "user",
        }
    }
}

/// `act` places orders; `observe` runs everything but places none (DESIGN R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Act,
    Observe,
}

/// Why a position is sold. The exit reasons are listed in their precedence order (DESIGN §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellReason {
    StopLoss,
    TrailingStop,
    TakeProfit,
    MaxHold,
    Cap,
}

impl SellReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SellReason::StopLoss => "stop_loss",
            SellReason::TrailingStop => "trailing_stop",
            SellReason::TakeProfit => "take_profit",
            SellReason::MaxHold => "max_hold",
            SellReason::Cap => "cap",
        }
    }

    /// The words operators grep the logs for.
    pub fn log_words(self) -> &'static str {
        match self {
            SellReason::StopLoss => "STOP LOSS",
            SellReason::TrailingStop => "TRAILING",
            SellReason::TakeProfit => "TAKE PROFIT",
            SellReason::MaxHold => "TIME EXIT",
            SellReason::Cap => "OVER CAP",
        }
    }
}

/// One market sell the plan asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSell {
    pub symbol: Symbol,
    /// The whole available quantity, rounded down to the broker's size increment.
    pub quantity: Quantity,
    pub price: Price,
    pub usd_value: Usd,
    /// The winning reason.
    pub reason: SellReason,
    /// Every exit rule that fired, in precedence order (empty for cap sells).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<SellReason>,
    pub client_order_id: ClientOrderId,
}

/// A position the plan keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPosition {
    pub symbol: Symbol,
    pub quantity: Quantity,
    /// `None` for an unpriced position.
    pub usd_value: Option<Usd>,
}

/// A position below the dust threshold (DESIGN §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DustPosition {
    pub symbol: Symbol,
    pub quantity: Quantity,
    pub usd_value: Usd,
    /// True when this run put it on the blacklist ("dust cleaned" counts these).
    pub newly_blacklisted: bool,
}

/// A position without a trustworthy price (DESIGN §3.3): counted, never sold or blacklisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpricedPosition {
    pub symbol: Symbol,
    pub quantity: Quantity,
    /// `price_fetch_failed`, `unknown_symbol`, `stale`, `outside_band`, ...
    pub reason: String,
}

/// Why a material position cannot be sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsellableReason {
    /// The broker has disabled trading in the product (delisted, cancel-only, ...).
    NotTradable,
    /// An equity outside market hours (Alpaca): no market orders then.
    MarketClosed,
    /// The broker's size rules for the product are unknown, so no order size can be trusted.
    NoProductRules,
    /// The available quantity, floored to the size increment, is below the broker's minimum size
    /// or minimum order value.
    BelowMinimumOrder,
    /// Selling the available quantity would leave a remainder still worth at least the dust
    /// threshold (quantity held by open orders, or a coarse size increment), so a cap sell would
    /// not reduce the count.
    RemainderStaysMaterial,
}

impl UnsellableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnsellableReason::NotTradable => "not_tradable",
            UnsellableReason::MarketClosed => "market_closed",
            UnsellableReason::NoProductRules => "no_product_rules",
            UnsellableReason::BelowMinimumOrder => "below_minimum_order",
            UnsellableReason::RemainderStaysMaterial => "remainder_stays_material",
        }
    }
}

/// A material position that cannot be sold (below the broker minimum, market closed, product not
/// tradable): counted, never sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsellablePosition {
    pub symbol: Symbol,
    pub quantity: Quantity,
    pub usd_value: Usd,
    pub reason: UnsellableReason,
    /// Exit rules that fired on it although it cannot be sold (exit sweeps), in precedence order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_fired: Vec<SellReason>,
}

/// A blacklisted symbol whose value reached the dust threshold again: it counts toward the cap and
/// is flagged for an operator (it stays on the list until removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlaggedBlacklisted {
    pub symbol: Symbol,
    pub usd_value: Usd,
}

/// Why the liquidation guard refused a cap plan (DESIGN §3.4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardRefusal {
    /// Value the plan wanted to sell.
    pub planned_usd: Usd,
    /// Value already sold by cap liquidation within the window.
    pub window_sold_usd: Usd,
    /// Priced material position value of the account.
    pub material_usd: Usd,
    /// `max_liquidation_fraction × material_usd`.
    pub allowed_usd: Usd,
    /// The cap sells it held back (absent from the plan's `sells`).
    #[serde(default)]
    pub refused_sells: Vec<PlannedSell>,
}

/// Balance reconciliation (DESIGN §3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub cash_usd: Usd,
    pub positions_usd: Usd,
    pub total_usd: Usd,
    /// The broker's own total, else the previous snapshot's total.
    pub reference_usd: Option<Usd>,
    pub reference_source: Option<ReferenceSource>,
    /// `|total − reference| / reference × 100`; `None` without a reference or when it is zero.
    pub drift_pct: Option<Pct>,
    /// Drift above 1% (or any total against a zero reference).
    pub drifted: bool,
    /// Positions left out of `positions_usd` because they have no price: a drift may come from them.
    #[serde(default)]
    pub unpriced_positions: u32,
}

/// What a reconciliation total was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// The broker's own account total (Alpaca `equity`).
    Broker,
    /// The total of the account's previous snapshot.
    PreviousSnapshot,
}

/// What the policy decided for one account and one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub account: AccountId,
    pub job_id: JobId,
    pub kind: JobKind,
    pub decided_at: DateTime<Utc>,
    /// Material positions (priced non-dust + unpriced, flagged blacklisted included).
    pub count_before: u32,
    pub max_allowed: u32,
    pub excess: u32,
    pub sells: Vec<PlannedSell>,
    pub kept: Vec<KeptPosition>,
    pub dust: Vec<DustPosition>,
    pub unpriced: Vec<UnpricedPosition>,
    pub unsellable: Vec<UnsellablePosition>,
    pub flagged: Vec<FlaggedBlacklisted>,
    /// Not enough sellable positions to reach the cap.
    pub cap_unreachable: bool,
    /// Set when the liquidation guard refused the cap sells (they are then absent from `sells`).
    pub guard_refusal: Option<GuardRefusal>,
    /// The job was forced and its cap sells exceed what the guard would have allowed.
    #[serde(default)]
    pub guard_overridden: bool,
    pub reconciliation: Option<Reconciliation>,
}

/// A plan is golden-tested on its own, in the envelope like any message.
impl crate::messages::Message for Plan {}

//! What the policy decides from: one fresh account snapshot plus the account's persisted state,
//! the job, the parameters and the current time. Plain values; the worker fills them from the
//! broker and KV, the policy never fetches anything.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use nija_proto::ids::JobKind;
use nija_proto::messages::Job;
use nija_proto::plan::AccountType;
use nija_proto::state::{BlacklistEntry, TrackedPosition};
use nija_proto::{AccountId, JobId, Price, Quantity, Symbol, Usd};
use serde::{Deserialize, Serialize};

use crate::params::PolicyParams;

/// A fresh read of one account at its broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub account: AccountId,
    pub account_type: AccountType,
    pub taken_at: DateTime<Utc>,
    /// Cash balances by canonical asset (`USD`, `USDC`, ...), valued 1:1 in USD.
    pub cash: BTreeMap<String, Usd>,
    pub positions: Vec<PositionSnapshot>,
    /// The broker's own account total in USD, where it reports one.
    pub broker_total: Option<Usd>,
}

/// One non-cash holding with its price and trading rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionSnapshot {
    pub symbol: Symbol,
    /// Everything held of the base asset.
    pub quantity: Quantity,
    /// What can be sold now: balance minus holds and open orders.
    pub available: Quantity,
    /// The broker's average entry price, where it reports one.
    pub avg_entry_price: Option<Price>,
    pub price: PriceObservation,
    /// The broker's size rules, when known.
    pub rules: Option<SizeRules>,
    /// False when the broker has disabled trading in the product.
    pub tradable: bool,
    /// False for an equity outside market hours.
    pub market_open: bool,
}

/// The price of a position as fetched, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PriceObservation {
    Priced {
        price: Price,
        bid: Option<Price>,
        ask: Option<Price>,
        observed_at: DateTime<Utc>,
    },
    /// The fetch failed (unknown pair, mapping miss, timeout): never replaced by a guess.
    Unpriced { reason: String },
}

/// Why a price cannot be trusted for an exit (DESIGN §3.5), or is no price at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// No price was fetched; the fetch's reason.
    Unpriced(String),
    /// Zero or negative: broker garbage, never a value (a zero price once ranked holdings as dust).
    NonPositive,
    /// Older than `max_price_age`.
    Stale,
    /// Outside the best bid/ask band.
    OutsideBand,
    /// `quantity × price` overflows or exceeds [`MAX_POSITION_USD`](crate::math::MAX_POSITION_USD).
    ImplausibleValue,
}

impl Untrusted {
    /// The reason reported in a plan's `unpriced` list.
    pub fn reason(&self) -> String {
        match self {
            Untrusted::Unpriced(reason) => reason.clone(),
            Untrusted::NonPositive => "non_positive_price".to_string(),
            Untrusted::Stale => "stale".to_string(),
            Untrusted::OutsideBand => "outside_band".to_string(),
            Untrusted::ImplausibleValue => "implausible_value".to_string(),
        }
    }
}

impl PriceObservation {
    /// The price to value and rank a position by: any positive fetched price.
    pub fn value_price(&self) -> Result<Price, Untrusted> {
        match self {
            PriceObservation::Unpriced { reason } => Err(Untrusted::Unpriced(reason.clone())),
            PriceObservation::Priced { price, .. }
                if price.0.is_sign_positive() && !price.is_zero() =>
            {
                Ok(*price)
            }
            PriceObservation::Priced { .. } => Err(Untrusted::NonPositive),
        }
    }

    /// The price exits and adoption may use: positive, no older than `max_age` at `now`, and
    /// within the best bid/ask band when the broker gave both sides.
    pub fn fresh_price(&self, now: DateTime<Utc>, max_age: Duration) -> Result<Price, Untrusted> {
        let price = self.value_price()?;
        let PriceObservation::Priced {
            bid,
            ask,
            observed_at,
            ..
        } = self
        else {
            return Err(Untrusted::NonPositive);
        };
        if now - *observed_at > max_age {
            return Err(Untrusted::Stale);
        }
        if let (Some(bid), Some(ask)) = (bid, ask)
            && (price < *bid || price > *ask)
        {
            return Err(Untrusted::OutsideBand);
        }
        Ok(price)
    }
}

/// A broker's order-size rules for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeRules {
    /// Smallest order size in base units.
    pub min_size: Quantity,
    /// Quantities are floored to a multiple of this.
    pub size_increment: Quantity,
    /// Smallest order value, where the broker has one.
    pub min_notional: Option<Usd>,
}

/// A cap liquidation already carried out (from earlier results), for the rolling guard window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapLiquidation {
    pub at: DateTime<Utc>,
    pub usd_value: Usd,
}

/// The job a decision is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobContext {
    pub job_id: JobId,
    pub kind: JobKind,
    /// Pass the liquidation guard.
    pub force: bool,
    /// Overrides the account's cap for this job.
    pub max_positions: Option<u32>,
}

impl From<&Job> for JobContext {
    fn from(job: &Job) -> JobContext {
        JobContext {
            job_id: job.job_id.clone(),
            kind: job.kind,
            force: job.force,
            max_positions: job.max_positions,
        }
    }
}

/// Everything one decision reads. The blacklist and tracker must be this account's only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub snapshot: AccountSnapshot,
    pub blacklist: Vec<BlacklistEntry>,
    pub tracker: Vec<TrackedPosition>,
    /// Cap liquidations of this account; those outside `liquidation_window` are ignored.
    pub recent_liquidations: Vec<CapLiquidation>,
    /// The reconciliation total of the previous snapshot, the reference when the broker has none.
    pub previous_total: Option<Usd>,
    pub now: DateTime<Utc>,
    pub job: JobContext,
    pub params: PolicyParams,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn priced(
        price: Price,
        bid: Option<Price>,
        ask: Option<Price>,
        age_s: i64,
    ) -> (PriceObservation, DateTime<Utc>) {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let obs = PriceObservation::Priced {
            price,
            bid,
            ask,
            observed_at: now - Duration::seconds(age_s),
        };
        (obs, now)
    }

    #[test]
    fn a_price_older_than_the_max_age_is_stale() {
        let (obs, now) = priced(Price(dec!(100)), None, None, 31);
        assert_eq!(
            obs.fresh_price(now, Duration::seconds(30)),
            Err(Untrusted::Stale)
        );
        let (obs, now) = priced(Price(dec!(100)), None, None, 30);
        assert_eq!(
            obs.fresh_price(now, Duration::seconds(30)),
            Ok(Price(dec!(100)))
        );
        // Staleness matters for exits only: the value price stays usable.
        let (obs, _) = priced(Price(dec!(100)), None, None, 3600);
        assert_eq!(obs.value_price(), Ok(Price(dec!(100))));
    }

    #[test]
    fn a_price_outside_bid_ask_is_untrusted() {
        let band = (Some(Price(dec!(99))), Some(Price(dec!(101))));
        for (p, ok) in [
            (dec!(98.99), false),
            (dec!(99), true),
            (dec!(101), true),
            (dec!(101.01), false),
        ] {
            let (obs, now) = priced(Price(p), band.0, band.1, 0);
            let got = obs.fresh_price(now, Duration::seconds(30));
            assert_eq!(got.is_ok(), ok, "price {p}");
            if !ok {
                assert_eq!(got, Err(Untrusted::OutsideBand));
            }
        }
    }

    #[test]
    fn zero_or_negative_prices_are_never_values() {
        for p in [dec!(0), dec!(-1)] {
            let (obs, now) = priced(Price(p), None, None, 0);
            assert_eq!(obs.value_price(), Err(Untrusted::NonPositive));
            assert_eq!(
                obs.fresh_price(now, Duration::seconds(30)),
                Err(Untrusted::NonPositive)
            );
        }
        let unpriced = PriceObservation::Unpriced {
            reason: "unknown_symbol".into(),
        };
        assert_eq!(
            unpriced.value_price().unwrap_err().reason(),
            "unknown_symbol"
        );
    }
}

//! The policy keys: `[policy]` defaults, the same keys overridden per account, and their
//! resolution into one [`PolicyParams`] per account (DESIGN §5, §7.9: one policy configuration,
//! read in one place).

use std::collections::BTreeSet;
use std::time::Duration;

use nija_policy::PolicyParams;
use nija_proto::plan::AccountType;
use nija_proto::{Pct, Usd};
use rust_decimal::Decimal;

use crate::read::{MAX_DURATION, Problems, Section};

/// Default caps (DESIGN §1).
pub const DEFAULT_PLATFORM_MAX_POSITIONS: u32 = 8;
pub const DEFAULT_USER_MAX_POSITIONS: u32 = 5;
/// The largest cap accepted; beyond it a value is a typo.
pub const MAX_POSITIONS_LIMIT: u32 = 100_000;

/// The `[policy]` section, resolved with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDefaults {
    /// PLATFORM accounts' cap from the file (`max_positions`, default 8).
    pub max_positions: u32,
    /// USER accounts' cap (`user_max_positions`, default 5).
    pub user_max_positions: u32,
    /// `MAX_POSITIONS_ALLOWED`: the PLATFORM default, above `max_positions` of the file.
    pub env_platform_max_positions: Option<u32>,
    pub dust_threshold: Usd,
    pub stop_loss_pct: Pct,
    pub take_profit_pct: Pct,
    pub trailing_stop_pct: Pct,
    pub trailing_activation_pct: Pct,
    /// `max_hold_hours` (a decimal number of hours in the file).
    pub max_hold: Duration,
    pub max_liquidation_fraction: Decimal,
    pub liquidation_window: Duration,
    pub cash_assets: Vec<String>,
}

impl Default for PolicyDefaults {
    fn default() -> PolicyDefaults {
        PolicyDefaults {
            max_positions: DEFAULT_PLATFORM_MAX_POSITIONS,
            user_max_positions: DEFAULT_USER_MAX_POSITIONS,
            env_platform_max_positions: None,
            dust_threshold: Usd(Decimal::ONE),
            stop_loss_pct: Pct(Decimal::from(3)),
            take_profit_pct: Pct(Decimal::from(8)),
            trailing_stop_pct: Pct(Decimal::from(5)),
            trailing_activation_pct: Pct(Decimal::ZERO),
            max_hold: Duration::from_secs(24 * 3600),
            max_liquidation_fraction: Decimal::new(5, 1),
            liquidation_window: Duration::from_secs(24 * 3600),
            cash_assets: ["USD", "USDC", "USDT", "USDP"].map(String::from).to_vec(),
        }
    }
}

/// The policy keys one account sets for itself; `None` takes the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    /// Applies whatever the account type.
    pub max_positions: Option<u32>,
    pub dust_threshold: Option<Usd>,
    pub stop_loss_pct: Option<Pct>,
    pub take_profit_pct: Option<Pct>,
    pub trailing_stop_pct: Option<Pct>,
    pub trailing_activation_pct: Option<Pct>,
    pub max_hold: Option<Duration>,
    pub max_liquidation_fraction: Option<Decimal>,
    pub liquidation_window: Option<Duration>,
    pub cash_assets: Option<Vec<String>>,
}

impl PolicyDefaults {
    /// The cap of an account type before any per-account key: for PLATFORM the environment's
    /// `MAX_POSITIONS_ALLOWED` wins over the file.
    pub fn default_cap(&self, account_type: AccountType) -> u32 {
        match account_type {
            AccountType::Platform => self
                .env_platform_max_positions
                .unwrap_or(self.max_positions),
            AccountType::User => self.user_max_positions,
        }
    }

    /// Resolves one account's parameters: per-account key > environment > `[policy]`.
    pub fn resolve(
        &self,
        account_type: AccountType,
        o: &PolicyOverrides,
        max_price_age: Duration,
    ) -> PolicyParams {
        PolicyParams {
            max_positions: o
                .max_positions
                .unwrap_or_else(|| self.default_cap(account_type)),
            dust_threshold: o.dust_threshold.unwrap_or(self.dust_threshold),
            stop_loss_pct: o.stop_loss_pct.unwrap_or(self.stop_loss_pct),
            take_profit_pct: o.take_profit_pct.unwrap_or(self.take_profit_pct),
            trailing_stop_pct: o.trailing_stop_pct.unwrap_or(self.trailing_stop_pct),
            trailing_activation_pct: o
                .trailing_activation_pct
                .unwrap_or(self.trailing_activation_pct),
            max_hold: chrono_duration(o.max_hold.unwrap_or(self.max_hold)),
            max_liquidation_fraction: o
                .max_liquidation_fraction
                .unwrap_or(self.max_liquidation_fraction),
            liquidation_window: chrono_duration(
                o.liquidation_window.unwrap_or(self.liquidation_window),
            ),
            cash_assets: o
                .cash_assets
                .clone()
                .unwrap_or_else(|| self.cash_assets.clone()),
            max_price_age: chrono_duration(max_price_age),
        }
    }
}

/// Every duration accepted by the reader is at most ten years, which chrono represents exactly.
pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Reads `[policy]`.
pub(crate) fn read_defaults(sec: &mut Section<'_>, p: &mut Problems) -> PolicyDefaults {
    let d = PolicyDefaults::default();
    let user_max_positions = sec
        .uint("user_max_positions", 0, MAX_POSITIONS_LIMIT.into(), p)
        .map(|n| n as u32);
    let o = read_overrides(sec, p);
    PolicyDefaults {
        max_positions: o.max_positions.unwrap_or(d.max_positions),
        user_max_positions: user_max_positions.unwrap_or(d.user_max_positions),
        env_platform_max_positions: None,
        dust_threshold: o.dust_threshold.unwrap_or(d.dust_threshold),
        stop_loss_pct: o.stop_loss_pct.unwrap_or(d.stop_loss_pct),
        take_profit_pct: o.take_profit_pct.unwrap_or(d.take_profit_pct),
        trailing_stop_pct: o.trailing_stop_pct.unwrap_or(d.trailing_stop_pct),
        trailing_activation_pct: o
            .trailing_activation_pct
            .unwrap_or(d.trailing_activation_pct),
        max_hold: o.max_hold.unwrap_or(d.max_hold),
        max_liquidation_fraction: o
            .max_liquidation_fraction
            .unwrap_or(d.max_liquidation_fraction),
        liquidation_window: o.liquidation_window.unwrap_or(d.liquidation_window),
        cash_assets: o.cash_assets.unwrap_or(d.cash_assets),
    }
}

/// Reads the policy keys shared by `[policy]` and `[[accounts]]`.
pub(crate) fn read_overrides(sec: &mut Section<'_>, p: &mut Problems) -> PolicyOverrides {
    PolicyOverrides {
        max_positions: sec
            .uint("max_positions", 0, MAX_POSITIONS_LIMIT.into(), p)
            .map(|n| n as u32),
        dust_threshold: amount(sec, "dust_threshold_usd", Bound::NonNegative, p).map(Usd),
        stop_loss_pct: amount(sec, "stop_loss_pct", Bound::Percent, p).map(Pct),
        take_profit_pct: amount(sec, "take_profit_pct", Bound::Positive, p).map(Pct),
        trailing_stop_pct: amount(sec, "trailing_stop_pct", Bound::Percent, p).map(Pct),
        trailing_activation_pct: amount(sec, "trailing_activation_pct", Bound::NonNegative, p)
            .map(Pct),
        max_hold: hours(sec, "max_hold_hours", p),
        max_liquidation_fraction: amount(sec, "max_liquidation_fraction", Bound::Fraction, p),
        liquidation_window: sec.duration("liquidation_window", false, p),
        cash_assets: cash_assets(sec, p),
    }
}

/// The range a decimal key must fall in.
#[derive(Clone, Copy)]
enum Bound {
    NonNegative,
    Positive,
    /// A loss or drawdown percentage: above 0, at most 100.
    Percent,
    /// A fraction of value: 0 to 1.
    Fraction,
}

fn amount(
    sec: &mut Section<'_>,
    name: &'static str,
    bound: Bound,
    p: &mut Problems,
) -> Option<Decimal> {
    let v = sec.decimal(name, p)?;
    let hundred = Decimal::ONE_HUNDRED;
    let (ok, rule) = match bound {
        Bound::NonNegative => (v >= Decimal::ZERO, "must be zero or more"),
        Bound::Positive => (v > Decimal::ZERO, "must be more than zero"),
        Bound::Percent => (
            v > Decimal::ZERO && v <= hundred,
            "must be a percentage above 0 and at most 100 (3.0 means three percent)",
        ),
        Bound::Fraction => (
            v >= Decimal::ZERO && v <= Decimal::ONE,
            "must be a fraction between 0 and 1 (0.5 means half)",
        ),
    };
    if ok {
        Some(v)
    } else {
        p.invalid(sec.key(name), v, rule);
        None
    }
}

fn hours(sec: &mut Section<'_>, name: &'static str, p: &mut Problems) -> Option<Duration> {
    let h = sec.number(name, p)?;
    let max_hours = Decimal::from(MAX_DURATION.as_secs() / 3600);
    if h <= Decimal::ZERO || h > max_hours {
        p.invalid(
            sec.key(name),
            h,
            format!("must be more than 0 and at most {max_hours} hours"),
        );
        return None;
    }
    let nanos = (h * Decimal::from(3_600_000_000_000u64)).trunc();
    match u64::try_from(nanos) {
        Ok(n) => Some(Duration::from_nanos(n)),
        Err(_) => {
            p.invalid(sec.key(name), h, "not a representable number of hours");
            None
        }
    }
}

fn cash_assets(sec: &mut Section<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let list = sec.string_list("cash_assets", p)?;
    let key = sec.key("cash_assets");
    let mut ok = true;
    if list.is_empty() {
        p.invalid(
            key.clone(),
            "[]",
            "list at least one cash asset, e.g. [\"USD\"]",
        );
        ok = false;
    }
    let mut seen = BTreeSet::new();
    for (i, asset) in list.iter().enumerate() {
        let canonical = !asset.is_empty()
            && asset.len() <= 16
            && asset
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !canonical {
            p.invalid(
                format!("{key}[{i}]"),
                asset,
                "not a canonical asset name: upper-case letters and digits, e.g. \"USD\"",
            );
            ok = false;
        } else if !seen.insert(asset.as_str()) {
            p.invalid(format!("{key}[{i}]"), asset, "listed twice");
            ok = false;
        }
    }
    ok.then_some(list)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_per_account_cap_beats_the_environment_which_beats_the_file() {
        let mut d = PolicyDefaults {
            max_positions: 7,
            ..PolicyDefaults::default()
        };
        let none = PolicyOverrides::default();
        let age = Duration::from_secs(30);
        assert_eq!(
            d.resolve(AccountType::Platform, &none, age).max_positions,
            7
        );
        d.env_platform_max_positions = Some(12);
        assert_eq!(
            d.resolve(AccountType::Platform, &none, age).max_positions,
            12
        );
        // The environment sets the PLATFORM default only.
        assert_eq!(d.resolve(AccountType::User, &none, age).max_positions, 5);
        let own = PolicyOverrides {
            max_positions: Some(3),
            ..PolicyOverrides::default()
        };
        assert_eq!(d.resolve(AccountType::Platform, &own, age).max_positions, 3);
        assert_eq!(d.resolve(AccountType::User, &own, age).max_positions, 3);
    }
}

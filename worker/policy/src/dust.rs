//! Sorting a snapshot's holdings into cash, dust, unpriced and material positions (DESIGN §3.1–3.3).
//! Every plan and the post-sell verification start from this one classification.
//!
//! - cash assets are not positions;
//! - dust ⇔ priced and `usd_value < dust_threshold` (strictly);
//! - a position without a usable price is unpriced: it counts, but is never valued, ranked,
//!   blacklisted or sold — there is no fallback price;
//! - a blacklisted symbol that reached the threshold counts again and is flagged.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use nija_proto::plan::{DustPosition, FlaggedBlacklisted, UnpricedPosition};
use nija_proto::state::{BlacklistEntry, BlacklistReason};
use nija_proto::{AccountId, Price, Quantity, Symbol, Usd};

use crate::math::{saturating_sum, value};
use crate::params::PolicyParams;
use crate::snapshot::{AccountSnapshot, PositionSnapshot, Untrusted};

/// A position with a usable value price.
#[derive(Debug, Clone)]
pub(crate) struct Valued<'a> {
    pub position: &'a PositionSnapshot,
    pub price: Price,
    pub usd_value: Usd,
}

/// A position counted toward the cap without a price.
#[derive(Debug, Clone)]
pub(crate) struct Unvalued<'a> {
    pub position: &'a PositionSnapshot,
    pub why: Untrusted,
}

impl Unvalued<'_> {
    pub fn report(&self) -> UnpricedPosition {
        UnpricedPosition {
            symbol: self.position.symbol.clone(),
            quantity: self.position.quantity,
            reason: self.why.reason(),
        }
    }
}

/// The classification of one snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Classified<'a> {
    /// Cash balances plus holdings of cash assets, 1:1 in USD.
    pub cash_usd: Usd,
    /// Priced positions at or above the threshold, flagged blacklisted ones included, sorted by
    /// symbol.
    pub material: Vec<Valued<'a>>,
    /// Sorted by symbol.
    pub unpriced: Vec<Unvalued<'a>>,
    /// Sorted by symbol.
    pub dust: Vec<DustPosition>,
    pub flagged: Vec<FlaggedBlacklisted>,
    /// Blacklist entries this snapshot adds (dust not yet on the list).
    pub new_blacklist: Vec<BlacklistEntry>,
    /// Σ value of every priced position, dust included (for reconciliation).
    pub priced_usd: Usd,
}

impl Classified<'_> {
    /// Material positions: priced non-dust + unpriced (DESIGN §3.4.1).
    pub fn count(&self) -> u32 {
        u32::try_from(self.material.len() + self.unpriced.len()).unwrap_or(u32::MAX)
    }

    /// Σ value of the priced material positions: the guard's base.
    pub fn material_usd(&self) -> Usd {
        saturating_sum(self.material.iter().map(|v| v.usd_value))
    }
}

/// Whether `symbol` names a cash asset (`USDC-USD` is cash, not a position).
pub(crate) fn is_cash(symbol: &Symbol, params: &PolicyParams) -> bool {
    params.cash_assets.iter().any(|c| c == symbol.base())
}

/// Classifies `snapshot` against the account's blacklist. Holdings with a zero or negative
/// quantity are not positions (nija manages long positions only).
pub(crate) fn classify<'a>(
    snapshot: &'a AccountSnapshot,
    blacklist: &[BlacklistEntry],
    params: &PolicyParams,
    now: DateTime<Utc>,
) -> Classified<'a> {
    let listed: BTreeSet<&Symbol> = blacklist.iter().map(|e| &e.symbol).collect();
    let mut out = Classified {
        cash_usd: saturating_sum(snapshot.cash.values().copied()),
        material: Vec::new(),
        unpriced: Vec::new(),
        dust: Vec::new(),
        flagged: Vec::new(),
        new_blacklist: Vec::new(),
        priced_usd: Usd::ZERO,
    };
    let mut positions: Vec<&PositionSnapshot> = snapshot.positions.iter().collect();
    positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    for position in positions {
        if position.quantity <= Quantity::ZERO {
            continue;
        }
        if is_cash(&position.symbol, params) {
            out.cash_usd = Usd(out.cash_usd.0.saturating_add(position.quantity.0));
            continue;
        }
        let price = match position.price.value_price() {
            Ok(price) => price,
            Err(why) => {
                out.unpriced.push(Unvalued { position, why });
                continue;
            }
        };
        let Some(usd_value) = value(position.quantity, price) else {
            out.unpriced.push(Unvalued {
                position,
                why: Untrusted::ImplausibleValue,
            });
            continue;
        };
        out.priced_usd = out.priced_usd + usd_value;
        let blacklisted = listed.contains(&position.symbol);
        if usd_value < params.dust_threshold {
            out.dust.push(DustPosition {
                symbol: position.symbol.clone(),
                quantity: position.quantity,
                usd_value,
                newly_blacklisted: !blacklisted,
            });
            if !blacklisted {
                out.new_blacklist.push(dust_entry(
                    &snapshot.account,
                    &position.symbol,
                    usd_value,
                    now,
                ));
            }
            continue;
        }
        if blacklisted {
            out.flagged.push(FlaggedBlacklisted {
                symbol: position.symbol.clone(),
                usd_value,
            });
        }
        out.material.push(Valued {
            position,
            price,
            usd_value,
        });
    }
    out
}

fn dust_entry(
    account: &AccountId,
    symbol: &Symbol,
    usd_value: Usd,
    now: DateTime<Utc>,
) -> BlacklistEntry {
    BlacklistEntry {
        account: account.clone(),
        symbol: symbol.clone(),
        usd_value,
        reason: BlacklistReason::Dust,
        added_at: now,
        added_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use rust_decimal_macros::dec;

    #[test]
    fn guide_dust_values_strictly_below_one_dollar() {
        let snap = snapshot(vec![
            priced_position("A-USD", dec!(0.50)),
            priced_position("B-USD", dec!(0.25)),
            priced_position("C-USD", dec!(0.75)),
            priced_position("D-USD", dec!(10.00)),
            priced_position("E-USD", dec!(50.00)),
            priced_position("F-USD", dec!(1.00)),
        ]);
        let c = classify(&snap, &[], &params(8), now());
        let dust: Vec<&str> = c.dust.iter().map(|d| d.symbol.as_str()).collect();
        assert_eq!(dust, ["A-USD", "B-USD", "C-USD"]);
        let material: Vec<&str> = c
            .material
            .iter()
            .map(|v| v.position.symbol.as_str())
            .collect();
        assert_eq!(
            material,
            ["D-USD", "E-USD", "F-USD"],
            "exactly 1.00 is not dust"
        );
        assert_eq!(c.count(), 3);
        assert!(c.dust.iter().all(|d| d.newly_blacklisted));
        assert_eq!(c.new_blacklist.len(), 3);
        assert!(
            c.new_blacklist
                .iter()
                .all(|e| e.reason == BlacklistReason::Dust && e.account == snap.account)
        );
    }

    #[test]
    fn cash_assets_are_never_positions() {
        let mut snap = snapshot(vec![
            priced_at("USDC-USD", dec!(500), dec!(1)),
            priced_position("BTC-USD", dec!(100)),
        ]);
        snap.cash.insert("USD".into(), Usd(dec!(250)));
        let c = classify(&snap, &[], &params(8), now());
        assert_eq!(c.count(), 1);
        assert_eq!(c.cash_usd, Usd(dec!(750)));
    }

    #[test]
    fn already_blacklisted_dust_is_not_added_again() {
        let snap = snapshot(vec![priced_position("A-USD", dec!(0.50))]);
        let listed = [blacklisted("A-USD")];
        let c = classify(&snap, &listed, &params(8), now());
        assert_eq!(c.count(), 0);
        assert!(!c.dust[0].newly_blacklisted);
        assert!(c.new_blacklist.is_empty());
    }

    #[test]
    fn blacklisted_symbol_back_above_threshold_counts_and_is_flagged() {
        let snap = snapshot(vec![priced_position("A-USD", dec!(1.00))]);
        let c = classify(&snap, &[blacklisted("A-USD")], &params(8), now());
        assert_eq!(c.count(), 1);
        assert_eq!(c.flagged.len(), 1);
        assert_eq!(c.flagged[0].usd_value, Usd(dec!(1.00)));
    }

    #[test]
    fn zero_quantity_holdings_are_not_positions() {
        let mut p = priced_position("A-USD", dec!(10));
        p.quantity = Quantity::ZERO;
        let snap = snapshot(vec![p]);
        let c = classify(&snap, &[], &params(8), now());
        assert_eq!(c.count(), 0);
        assert!(c.dust.is_empty());
    }
}

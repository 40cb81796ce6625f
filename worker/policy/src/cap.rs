//! Position-cap selection (DESIGN §3.4.2–4): over the cap, the smallest priced material positions
//! are sold — sorted by USD value ascending, ties by symbol — skipping the unsellable ones and
//! taking the next; unpriced positions are never candidates. When the sellable candidates run out
//! first, the cap is unreachable.

use nija_proto::plan::UnsellableReason;
use nija_proto::{Quantity, Usd};

use crate::dust::Valued;
use crate::sellable::sell_quantity;

/// Indices into the material list given to [`select`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapSelection {
    /// In selling order (smallest first), with the quantity to sell.
    pub sells: Vec<(usize, Quantity)>,
    /// Every unsellable material position, in candidate order.
    pub unsellable: Vec<(usize, UnsellableReason)>,
    /// Fewer sellable candidates than the excess.
    pub unreachable: bool,
}

/// Picks `excess` positions to sell from `material`. A sell must take a position below
/// `dust_threshold`, so that it really leaves the count.
pub(crate) fn select(material: &[Valued<'_>], excess: u32, dust_threshold: Usd) -> CapSelection {
    let mut order: Vec<usize> = (0..material.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&material[a], &material[b]);
        a.usd_value
            .cmp(&b.usd_value)
            .then_with(|| a.position.symbol.cmp(&b.position.symbol))
    });
    let wanted = usize::try_from(excess).unwrap_or(usize::MAX);
    let mut selection = CapSelection {
        sells: Vec::new(),
        unsellable: Vec::new(),
        unreachable: false,
    };
    for i in order {
        let candidate = &material[i];
        match sell_quantity(candidate.position, candidate.price, Some(dust_threshold)) {
            Ok(quantity) if selection.sells.len() < wanted => selection.sells.push((i, quantity)),
            Ok(_) => {}
            Err(reason) => selection.unsellable.push((i, reason)),
        }
    }
    selection.unreachable = selection.sells.len() < wanted;
    selection
}

//! Adoption (DESIGN §3.6): bring the tracker in line with what the broker holds.
//!
//! - A held position with no open tracker record is adopted: `source = broker_existing`,
//!   `adoption_status = adopted`, entry price = the broker's average entry price, else the fresh
//!   market price at adoption (`entry_price_source = adoption_price`), entry time = now. Without
//!   either there is nothing honest to record, so the position waits (`pending`) — an entry price
//!   is never synthesised.
//! - A tracked position still held keeps its entry and provenance; its quantity is *set* to the
//!   broker's, never added to.
//! - A tracked position gone from the broker is closed: `closed_by_nija` when this job sold it,
//!   else `closed_externally`.
//!
//! Applying the outcome and adopting again against the same snapshot changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use nija_proto::state::{AdoptionStatus, EntryPriceSource, PositionSource, TrackedPosition};
use nija_proto::{Price, Quantity, Symbol};
use serde::{Deserialize, Serialize};

use crate::dust::is_cash;
use crate::params::PolicyParams;
use crate::snapshot::{AccountSnapshot, PositionSnapshot};

/// A held position adoption could not record yet, and why. Retried at the next snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAdoption {
    pub symbol: Symbol,
    pub quantity: Quantity,
    /// Why no entry price is known (the price's untrusted reason).
    pub reason: String,
}

/// What adoption changes in the tracker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptionOutcome {
    /// New records for positions found at the broker.
    pub adopted: Vec<TrackedPosition>,
    /// Open records whose quantity changed at the broker (entry untouched).
    pub resized: Vec<TrackedPosition>,
    /// Records of positions gone from the broker, now closed.
    pub closed: Vec<TrackedPosition>,
    pub pending: Vec<PendingAdoption>,
}

/// Adopts, resizes and closes against `snapshot`. `tracker` is this account's records;
/// `sold_by_job` the symbols this job sold (their disappearance is nija's doing).
pub fn adopt(
    snapshot: &AccountSnapshot,
    tracker: &[TrackedPosition],
    sold_by_job: &[Symbol],
    params: &PolicyParams,
    now: DateTime<Utc>,
) -> AdoptionOutcome {
    let open: BTreeMap<&Symbol, &TrackedPosition> = tracker
        .iter()
        .filter(|t| t.is_open())
        .map(|t| (&t.symbol, t))
        .collect();
    let mut held: BTreeMap<&Symbol, &PositionSnapshot> = BTreeMap::new();
    for position in &snapshot.positions {
        if position.quantity > Quantity::ZERO && !is_cash(&position.symbol, params) {
            held.insert(&position.symbol, position);
        }
    }
    let mut out = AdoptionOutcome::default();
    for (symbol, position) in &held {
        match open.get(symbol) {
            Some(record) if record.quantity == position.quantity => {}
            Some(record) => out.resized.push(TrackedPosition {
                quantity: position.quantity,
                ..(*record).clone()
            }),
            None => match adopted_record(snapshot, position, params, now) {
                Ok(record) => out.adopted.push(record),
                Err(reason) => out.pending.push(PendingAdoption {
                    symbol: (*symbol).clone(),
                    quantity: position.quantity,
                    reason,
                }),
            },
        }
    }
    let sold: BTreeSet<&Symbol> = sold_by_job.iter().collect();
    for (symbol, record) in open {
        if held.contains_key(symbol) {
            continue;
        }
        let status = if sold.contains(symbol) {
            AdoptionStatus::ClosedByNija
        } else {
            AdoptionStatus::ClosedExternally
        };
        out.closed.push(TrackedPosition {
            adoption_status: status,
            tracked: false,
            closed_at: Some(now),
            ..record.clone()
        });
    }
    out
}

fn adopted_record(
    snapshot: &AccountSnapshot,
    position: &PositionSnapshot,
    params: &PolicyParams,
    now: DateTime<Utc>,
) -> Result<TrackedPosition, String> {
    let market = position.price.fresh_price(now, params.max_price_age);
    let broker_average = position
        .avg_entry_price
        .filter(|p| p.0 > rust_decimal::Decimal::ZERO);
    let (entry_price, entry_price_source) = match (broker_average, &market) {
        (Some(avg), _) => (avg, EntryPriceSource::BrokerAverage),
        (None, Ok(price)) => (*price, EntryPriceSource::AdoptionPrice),
        (None, Err(why)) => return Err(why.reason()),
    };
    let peak = match market {
        Ok(price) => entry_price.max(price),
        Err(_) => entry_price,
    };
    Ok(TrackedPosition {
        account: snapshot.account.clone(),
        symbol: position.symbol.clone(),
        quantity: position.quantity,
        entry_price,
        entry_price_source,
        entry_time: now,
        peak,
        source: PositionSource::BrokerExisting,
        adoption_status: AdoptionStatus::Adopted,
        tracked: true,
        closed_at: None,
    })
}

/// A record whose peak is `max(old peak, price)`, or `None` when `price` is no new high.
pub(crate) fn raise_peak(record: &TrackedPosition, price: Price) -> Option<TrackedPosition> {
    (price > record.peak).then(|| TrackedPosition {
        peak: price,
        ..record.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::StateChanges;
    use crate::snapshot::PriceObservation;
    use crate::testkit::*;
    use chrono::Duration;
    use rust_decimal_macros::dec;

    #[test]
    fn broker_average_is_the_entry_price_where_reported() {
        let mut p = priced_position("AAPL-USD", dec!(200));
        p.avg_entry_price = Some(Price(dec!(150)));
        let out = adopt(&snapshot(vec![p]), &[], &[], &params(8), now());
        let record = &out.adopted[0];
        assert_eq!(record.entry_price, Price(dec!(150)));
        assert_eq!(record.entry_price_source, EntryPriceSource::BrokerAverage);
        assert_eq!(
            record.peak,
            Price(dec!(200)),
            "the current price is already a high since entry"
        );
        assert_eq!(record.source, PositionSource::BrokerExisting);
        assert_eq!(record.adoption_status, AdoptionStatus::Adopted);
        assert!(record.tracked);
        assert_eq!(record.entry_time, now());
    }

    #[test]
    fn without_a_broker_average_the_adoption_price_is_recorded_as_such() {
        let out = adopt(
            &snapshot(vec![priced_position("BTC-USD", dec!(90))]),
            &[],
            &[],
            &params(8),
            now(),
        );
        assert_eq!(out.adopted[0].entry_price, Price(dec!(90)));
        assert_eq!(
            out.adopted[0].entry_price_source,
            EntryPriceSource::AdoptionPrice
        );
    }

    #[test]
    fn no_price_and_no_average_waits_instead_of_guessing() {
        let mut stale = priced_position("ETH-USD", dec!(90));
        stale.price = PriceObservation::Priced {
            price: Price(dec!(90)),
            bid: None,
            ask: None,
            observed_at: now() - Duration::minutes(5),
        };
        let out = adopt(
            &snapshot(vec![unpriced_position("XYZ-USD", dec!(1000)), stale]),
            &[],
            &[],
            &params(8),
            now(),
        );
        assert!(out.adopted.is_empty());
        let reasons: Vec<&str> = out.pending.iter().map(|p| p.reason.as_str()).collect();
        assert_eq!(reasons, ["stale", "price_fetch_failed"]);
    }

    #[test]
    fn held_positions_keep_their_entry_and_take_the_broker_quantity() {
        let snap = snapshot(vec![priced_position("BTC-USD", dec!(120))]);
        let mut record = tracked("BTC-USD", dec!(100), dec!(130), now() - Duration::hours(3));
        record.quantity = Quantity(dec!(3));
        let out = adopt(&snap, std::slice::from_ref(&record), &[], &params(8), now());
        assert!(out.adopted.is_empty());
        assert_eq!(out.resized.len(), 1);
        let r = &out.resized[0];
        assert_eq!(
            r.quantity,
            Quantity(dec!(1)),
            "set from the broker, not 3 + 1"
        );
        assert_eq!(
            (r.entry_price, r.peak, r.entry_time),
            (record.entry_price, record.peak, record.entry_time)
        );
    }

    #[test]
    fn vanished_positions_are_closed_by_whoever_removed_them() {
        let records = [
            tracked("BTC-USD", dec!(100), dec!(100), now()),
            tracked("ETH-USD", dec!(100), dec!(100), now()),
        ];
        let sold = [sym("ETH-USD")];
        let out = adopt(&snapshot(vec![]), &records, &sold, &params(8), now());
        let statuses: Vec<(&str, AdoptionStatus)> = out
            .closed
            .iter()
            .map(|c| (c.symbol.as_str(), c.adoption_status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("BTC-USD", AdoptionStatus::ClosedExternally),
                ("ETH-USD", AdoptionStatus::ClosedByNija)
            ]
        );
        assert!(
            out.closed
                .iter()
                .all(|c| !c.tracked && c.closed_at == Some(now()))
        );
    }

    #[test]
    fn a_closed_symbol_that_reappears_is_adopted_afresh() {
        let mut old = tracked("BTC-USD", dec!(50), dec!(60), now() - Duration::days(9));
        old.tracked = false;
        old.adoption_status = AdoptionStatus::ClosedExternally;
        let out = adopt(
            &snapshot(vec![priced_position("BTC-USD", dec!(100))]),
            &[old],
            &[],
            &params(8),
            now(),
        );
        assert_eq!(out.adopted.len(), 1);
        assert_eq!(out.adopted[0].entry_price, Price(dec!(100)));
    }

    #[test]
    fn adopting_after_applying_changes_nothing() {
        let snap = snapshot(vec![
            priced_position("BTC-USD", dec!(100)),
            priced_position("ETH-USD", dec!(50)),
        ]);
        let first = adopt(&snap, &[], &[], &params(8), now());
        let mut tracker = Vec::new();
        StateChanges::from_adoption(first).apply(&mut Vec::new(), &mut tracker);
        let later = now() + Duration::minutes(1);
        assert_eq!(
            adopt(&snap, &tracker, &[], &params(8), later),
            AdoptionOutcome::default()
        );
    }
}

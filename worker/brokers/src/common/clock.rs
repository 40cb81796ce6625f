//! Comparing our clock with the broker's (DESIGN §5.2): Coinbase tokens carry a 2-minute window
//! and Kraken nonces are time-derived, so a drifting host fails in confusing ways. A session warns
//! when the skew exceeds the threshold.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::broker::BrokerKind;

/// The broker's clock minus ours, taking the midpoint of the round trip as "our time of the
/// reading". `resolution` is the granularity of the broker's clock (Kraken reports whole
/// seconds, truncated): half of it is added to centre the reading.
pub fn skew(
    server: DateTime<Utc>,
    sent: DateTime<Utc>,
    received: DateTime<Utc>,
    resolution: Duration,
) -> TimeDelta {
    let midpoint = sent + (received - sent) / 2;
    let centre = TimeDelta::from_std(resolution / 2).unwrap_or_default();
    server + centre - midpoint
}

/// Logs a warning when `skew` exceeds `threshold` (plus the broker clock's own resolution);
/// returns whether it did.
pub fn warn_on_skew(
    broker: BrokerKind,
    skew: TimeDelta,
    threshold: Duration,
    resolution: Duration,
) -> bool {
    let limit = TimeDelta::from_std(threshold + resolution / 2).unwrap_or(TimeDelta::MAX);
    if skew.abs() > limit {
        tracing::warn!(
            broker = %broker,
            skew_ms = skew.num_milliseconds(),
            threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX),
            "clock skew against the broker exceeds the threshold: check NTP on this host \
             (signed requests and nonces depend on it)"
        );
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    #[test]
    fn skew_uses_the_round_trip_midpoint() {
        let s = skew(at(10_500), at(10_000), at(11_000), Duration::ZERO);
        assert_eq!(s, TimeDelta::zero());
        let s = skew(at(13_000), at(10_000), at(11_000), Duration::ZERO);
        assert_eq!(s, TimeDelta::milliseconds(2_500));
    }

    #[test]
    fn whole_second_clocks_are_centred() {
        // Server says 10 s (truncated from 10.4 s); we read at 10.4 s.
        let s = skew(at(10_000), at(10_400), at(10_400), Duration::from_secs(1));
        assert_eq!(s, TimeDelta::milliseconds(100));
    }

    #[test]
    fn warns_only_beyond_the_threshold() {
        let one = Duration::from_secs(1);
        assert!(!warn_on_skew(
            BrokerKind::Kraken,
            TimeDelta::milliseconds(900),
            one,
            Duration::ZERO
        ));
        assert!(warn_on_skew(
            BrokerKind::Kraken,
            TimeDelta::milliseconds(-1_200),
            one,
            Duration::ZERO
        ));
        assert!(!warn_on_skew(
            BrokerKind::Kraken,
            TimeDelta::milliseconds(1_200),
            one,
            one
        ));
    }
}

//! The live-worker view: who else is out there, from their heartbeats on `nija.hb.*`.
//!
//! A worker claims up to `ceil(partitions / live workers)` partitions, so each one needs to know
//! how many live workers there are. A worker is live while its last heartbeat is younger than
//! three heartbeat intervals (the coordinator's rule too) and it is not draining.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nija_proto::WorkerId;
use nija_proto::messages::{Heartbeat, decode};
use nija_proto::names::HEARTBEAT_PREFIX;
use nija_telemetry::Liveness;

/// Why following the heartbeats stopped.
#[derive(Debug, thiserror::Error)]
#[error("cannot follow heartbeats: {0}")]
pub struct MembershipError(String);

struct Seen {
    at: Instant,
    draining: bool,
}

/// Other workers' last heartbeats.
#[derive(Clone)]
pub struct Membership {
    me: WorkerId,
    dead_after: Duration,
    seen: Arc<Mutex<HashMap<WorkerId, Seen>>>,
}

impl Membership {
    /// An empty view; [`Membership::follow`] fills it.
    pub fn new(me: WorkerId, heartbeat_every: Duration) -> Membership {
        Membership {
            me,
            dead_after: heartbeat_every * 3,
            seen: Arc::default(),
        }
    }

    /// Subscribes to heartbeats and follows them (a supervised task): returns at shutdown, or an
    /// error when the subscription fails or ends, so the supervisor subscribes again.
    pub async fn follow(
        &self,
        client: async_nats::Client,
        live: Liveness,
    ) -> Result<(), MembershipError> {
        let mut subscription = client
            .subscribe(format!("{HEARTBEAT_PREFIX}.*"))
            .await
            .map_err(|e| MembershipError(e.to_string()))?;
        let mut ticks = tokio::time::interval(self.dead_after);
        loop {
            tokio::select! {
                _ = live.cancelled() => return Ok(()),
                _ = ticks.tick() => live.tick(),
                message = subscription.next() => {
                    let Some(message) = message else {
                        return Err(MembershipError("the heartbeat subscription ended".into()));
                    };
                    match decode::<Heartbeat>(&message.payload) {
                        Ok(hb) if hb.worker != self.me => self.saw(hb.worker, hb.draining),
                        Ok(_) => {}
                        Err(err) => {
                            tracing::debug!(subject = %message.subject, error = %err, "unreadable heartbeat ignored")
                        }
                    }
                }
            }
        }
    }

    fn saw(&self, worker: WorkerId, draining: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(
            worker,
            Seen {
                at: Instant::now(),
                draining,
            },
        );
    }

    /// Live workers including this one (at least 1).
    pub fn live_workers(&self) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, s| s.at.elapsed() < self.dead_after * 4);
        1 + seen
            .values()
            .filter(|s| s.at.elapsed() < self.dead_after && !s.draining)
            .count()
    }
}

/// The fair share of `partitions` among `workers`: `ceil(partitions / workers)`.
pub fn fair_share(partitions: u16, workers: usize) -> usize {
    let workers = workers.max(1);
    (usize::from(partitions)).div_ceil(workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_share_covers_every_partition() {
        assert_eq!(fair_share(64, 1), 64);
        assert_eq!(fair_share(64, 3), 22);
        assert_eq!(fair_share(64, 64), 1);
        assert_eq!(fair_share(4, 10), 1);
        for workers in 1..20 {
            assert!(fair_share(64, workers) * workers >= 64);
        }
    }
}

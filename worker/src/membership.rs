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
    /// Subscribes to heartbeats and follows them until the client closes.
    pub async fn start(
        client: &async_nats::Client,
        me: WorkerId,
        heartbeat_every: Duration,
    ) -> Result<Membership, async_nats::SubscribeError> {
        let mut subscription = client.subscribe(format!("{HEARTBEAT_PREFIX}.*")).await?;
        let membership = Membership {
            me,
            dead_after: heartbeat_every * 3,
            seen: Arc::default(),
        };
        let view = membership.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                match decode::<Heartbeat>(&message.payload) {
                    Ok(hb) if hb.worker != view.me => view.saw(hb.worker, hb.draining),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::debug!(subject = %message.subject, error = %err, "unreadable heartbeat ignored")
                    }
                }
            }
        });
        Ok(membership)
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

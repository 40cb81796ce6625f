//! Partition ownership (DESIGN §2 affinity): claim free or expired partitions up to the fair
//! share, renew them, hand extras back when workers join, and run one pull loop per held
//! partition. Losing a partition stops its loop, lets its in-flight jobs finish, drops its
//! accounts' sessions and releases their leases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nija_proto::Partition;
use nija_runtime::lease::{Acquire, Lease};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::Context;
use crate::dispatch;
use crate::membership::{Membership, fair_share};

/// Fewest messages asked for in one pull request: a few may wait briefly for a job slot, which
/// costs far less than a pull round trip per message under load.
const MIN_BATCH: usize = 16;
/// Most messages asked for in one pull request.
const MAX_BATCH: usize = 256;
/// How long one pull request waits for messages.
const PULL_WAIT: Duration = Duration::from_secs(1);

struct Held {
    lease: Lease,
    /// The lease's expiry (Unix ms), shared with the pull loop: it stops pulling the moment the
    /// lease is past it (a worker resumed after SIGSTOP), before the next renewal notices.
    expires_ms: Arc<AtomicI64>,
    stop: CancellationToken,
    jobs: TaskTracker,
    puller: tokio::task::JoinHandle<()>,
}

/// The partitions this worker holds.
pub struct Partitions {
    ctx: Arc<Context>,
    held: Mutex<BTreeMap<Partition, Held>>,
    /// Partitions handed back or lost whose jobs are still finishing: not claimed meanwhile.
    draining: Arc<Mutex<BTreeSet<Partition>>>,
    drains: TaskTracker,
    /// Where this worker starts looking for free partitions (spreads contenders apart).
    offset: u16,
}

impl Partitions {
    pub fn new(ctx: Arc<Context>) -> Partitions {
        let count = ctx.config.worker.partitions.max(1);
        let offset = (ctx
            .id
            .as_str()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % u32::from(count)) as u16;
        Partitions {
            ctx,
            held: Mutex::new(BTreeMap::new()),
            draining: Arc::default(),
            drains: TaskTracker::new(),
            offset,
        }
    }

    pub async fn held(&self) -> Vec<Partition> {
        self.held.lock().await.keys().copied().collect()
    }

    /// One round: renew what is held (dropping what was lost), then claim up to the fair share
    /// or hand back what exceeds it.
    pub async fn tick(&self, membership: &Membership) {
        let lost = self.renew().await;
        for partition in lost {
            self.drop_partition(partition, false).await;
        }
        let count = self.ctx.config.worker.partitions.max(1);
        let share = fair_share(count, membership.live_workers());
        let held = self.held.lock().await.len();
        if held < share {
            self.claim(count, share - held).await;
        } else if held > share {
            let extras: Vec<Partition> = {
                let held = self.held.lock().await;
                let mut order: Vec<Partition> = held.keys().copied().collect();
                // Keep the ones nearest our offset: contenders then converge on disjoint sets.
                order.sort_by_key(|p| (p.0 + count - self.offset) % count);
                order.split_off(share)
            };
            for partition in extras {
                tracing::info!(partition = %partition, share, "handing a partition back (rebalance)");
                self.drop_partition(partition, true).await;
            }
        }
    }

    async fn renew(&self) -> Vec<Partition> {
        let mut held = self.held.lock().await;
        let mut lost = Vec::new();
        for (partition, h) in held.iter_mut() {
            let renewed = self.ctx.leases.renew(&mut h.lease).await;
            h.expires_ms
                .store(h.lease.expires_at().timestamp_millis(), Ordering::Relaxed);
            if let Err(err) = renewed {
                match err {
                    nija_runtime::lease::LeaseError::Lost { .. } => {
                        tracing::warn!(partition = %partition, error = %err, "partition lease lost");
                        lost.push(*partition);
                    }
                    other => {
                        tracing::warn!(partition = %partition, error = %other, "partition lease renewal failed; retrying")
                    }
                }
            }
        }
        lost
    }

    async fn claim(&self, count: u16, mut wanted: usize) {
        for i in 0..count {
            if wanted == 0 {
                return;
            }
            let partition = Partition((self.offset + i) % count);
            if self.held.lock().await.contains_key(&partition)
                || self.draining.lock().await.contains(&partition)
            {
                continue;
            }
            match self.ctx.leases.acquire_partition(partition).await {
                Ok(Acquire::Acquired(lease)) => {
                    if lease.took_over() {
                        self.ctx
                            .metrics
                            .lease_taken_over(nija_telemetry::LeaseScope::Partition);
                    }
                    match self.ctx.topology.partition_consumer(partition).await {
                        Ok(consumer) => {
                            self.start(partition, lease, consumer).await;
                            wanted -= 1;
                        }
                        Err(err) => {
                            tracing::warn!(partition = %partition, error = %err, "partition consumer missing; not claiming it");
                            let _ = self.ctx.leases.release(lease).await;
                        }
                    }
                }
                Ok(Acquire::HeldBy { .. }) => {}
                Err(err) => {
                    tracing::warn!(partition = %partition, error = %err, "partition lease not acquired")
                }
            }
        }
    }

    async fn start(
        &self,
        partition: Partition,
        lease: Lease,
        consumer: async_nats::jetstream::consumer::PullConsumer,
    ) {
        let stop = CancellationToken::new();
        let jobs = TaskTracker::new();
        let expires_ms = Arc::new(AtomicI64::new(lease.expires_at().timestamp_millis()));
        let puller = tokio::spawn(pull(
            self.ctx.clone(),
            partition,
            consumer,
            Pulling {
                stop: stop.clone(),
                expires_ms: expires_ms.clone(),
            },
            jobs.clone(),
        ));
        tracing::info!(partition = %partition, "partition claimed");
        self.held.lock().await.insert(
            partition,
            Held {
                lease,
                expires_ms,
                stop,
                jobs,
                puller,
            },
        );
    }

    /// Stops pulling a partition and drains it in the background (see [`drain`]); renewals of
    /// the other partitions never wait for it.
    async fn drop_partition(&self, partition: Partition, release: bool) {
        let Some(held) = self.held.lock().await.remove(&partition) else {
            return;
        };
        self.draining.lock().await.insert(partition);
        let ctx = self.ctx.clone();
        let draining = self.draining.clone();
        self.drains.spawn(async move {
            drain(&ctx, partition, held, release).await;
            draining.lock().await.remove(&partition);
        });
    }

    /// Hands every partition back and waits for them to drain (shutdown).
    pub async fn release_all(&self) {
        let all = self.held().await;
        // Stop every loop first so no new job starts while earlier partitions drain.
        for h in self.held.lock().await.values() {
            h.stop.cancel();
        }
        for partition in all {
            self.drop_partition(partition, true).await;
        }
        self.drains.close();
        self.drains.wait().await;
    }
}

/// Stops the pull loop, waits (up to a job deadline) for the partition's jobs, drops its
/// sessions and, when `release`, releases its lease — renewing it meanwhile, so nobody else pulls
/// the partition while its jobs still run. A lost lease (`release` false) is not renewed.
async fn drain(ctx: &Context, partition: Partition, held: Held, release: bool) {
    let Held {
        mut lease,
        stop,
        jobs,
        puller,
        ..
    } = held;
    stop.cancel();
    let _ = puller.await;
    jobs.close();
    let deadline = tokio::time::sleep(ctx.job_deadline() + Duration::from_secs(1));
    tokio::pin!(deadline);
    let mut renewals = tokio::time::interval(ctx.leases.renew_every());
    renewals.tick().await;
    let mut renewing = release;
    loop {
        tokio::select! {
            _ = jobs.wait() => break,
            _ = &mut deadline => {
                tracing::warn!(partition = %partition, "jobs still running after a deadline; leaving them unacknowledged");
                break;
            }
            _ = renewals.tick(), if renewing => {
                if let Err(err) = ctx.leases.renew(&mut lease).await {
                    tracing::warn!(partition = %partition, error = %err, "partition lease not renewed while draining");
                    renewing = !matches!(err, nija_runtime::lease::LeaseError::Lost { .. });
                }
            }
        }
    }
    ctx.sessions.drop_partition(ctx, partition).await;
    if release && let Err(err) = ctx.leases.release(lease).await {
        tracing::warn!(partition = %partition, error = %err, "partition lease not released; it will expire");
    }
    tracing::info!(partition = %partition, "partition released");
}

/// What a pull loop watches: its stop signal and its partition lease's expiry.
struct Pulling {
    stop: CancellationToken,
    expires_ms: Arc<AtomicI64>,
}

/// The pull loop of one partition: asks for as many messages as there are free job slots and
/// runs each on the partition's task tracker. On stop, messages already received are handed back
/// at once (nak) so the next owner gets them without waiting for `ack_wait`.
async fn pull(
    ctx: Arc<Context>,
    partition: Partition,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    pulling: Pulling,
    jobs: TaskTracker,
) {
    let Pulling { stop, expires_ms } = pulling;
    let lease_valid = || chrono::Utc::now().timestamp_millis() < expires_ms.load(Ordering::Relaxed);
    ctx.pulling.fetch_add(1, Ordering::Relaxed);
    let mut pause = Duration::from_millis(100);
    while !stop.is_cancelled() {
        if !lease_valid() {
            // Not ours any more (or not yet renewed after a freeze): pull nothing until the
            // next renewal says otherwise.
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        }
        // Each partition asks for its share of the free job slots, so messages rarely wait for a
        // slot while their ack_wait runs.
        let pulling = ctx.pulling.load(Ordering::Relaxed).max(1) as usize;
        let want = (ctx.permits.available_permits() / pulling).clamp(MIN_BATCH, MAX_BATCH);
        let batch = consumer
            .batch()
            .max_messages(want)
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(partition = %partition, error = %err, "pull request failed; retrying");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    tracing::debug!(partition = %partition, error = %err, "pull batch ended with an error");
                    break;
                }
            };
            if stop.is_cancelled() || !lease_valid() {
                let _ = message
                    .ack_with(async_nats::jetstream::AckKind::Nak(None))
                    .await;
                continue;
            }
            let permit = tokio::select! {
                permit = ctx.permits.clone().acquire_owned() => permit,
                _ = stop.cancelled() => {
                    let _ = message.ack_with(async_nats::jetstream::AckKind::Nak(None)).await;
                    continue;
                }
            };
            let Ok(permit) = permit else { break };
            let ctx = ctx.clone();
            jobs.spawn(async move {
                dispatch::handle(&ctx, message).await;
                drop(permit);
            });
        }
    }
    ctx.pulling.fetch_sub(1, Ordering::Relaxed);
}

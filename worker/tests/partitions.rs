//! Partition ownership across workers: fair shares, hand-over when a worker joins or leaves, and
//! every lease released on a graceful stop.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use nija_proto::ids::JobKind;
use nija_proto::messages::ResultStatus;
use nija_proto::{Partition, WorkerId};
use nija_runtime::lease::Leases;
use serde_json::json;
use support::Harness;

/// Current owner of each partition (unexpired leases only).
async fn owners(h: &Harness) -> BTreeMap<u16, String> {
    let leases = Leases::new(
        h.topology.leases.clone(),
        WorkerId::new("observer").unwrap(),
        Duration::from_secs(1),
    );
    let mut out = BTreeMap::new();
    for n in 0..h.config.worker.partitions {
        if let Some(value) = leases.partition_holder(Partition(n)).await.unwrap()
            && !value.is_expired(chrono::Utc::now())
        {
            out.insert(n, value.owner.to_string());
        }
    }
    out
}

fn count(owners: &BTreeMap<u16, String>, worker: &str) -> usize {
    owners.values().filter(|o| o.as_str() == worker).count()
}

/// Waits until `check` holds for the partition owners (bounded, so a broken rebalance fails).
async fn until(h: &Harness, what: &str, check: impl Fn(&BTreeMap<u16, String>) -> bool) {
    for _ in 0..300 {
        if check(&owners(h).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: owners are {:?}", owners(h).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_shared_handed_over_and_released() {
    let mut h = Harness::start(json!({"accounts": [
        {"id": "a1", "type": "user", "broker": "kraken", "cash": "10",
         "holdings": [{"asset": "BTC", "quantity": "0.001"}]}
    ]}))
    .await;
    let w1 = h.spawn_worker("w1");
    until(&h, "w1 holds every partition", |o| count(o, "w1") == 4).await;
    let first = h.run(&h.job(JobKind::Enforce, "a1")).await;
    assert_eq!(first.status, ResultStatus::Compliant, "{first:#?}");
    assert_eq!(first.worker.as_str(), "w1");

    let w2 = h.spawn_worker("w2");
    until(&h, "two workers share the partitions", |o| {
        count(o, "w1") == 2 && count(o, "w2") == 2
    })
    .await;
    // Whoever holds the account's partition now runs its jobs.
    let partition = h.config.partition_of(&Harness::account("a1")).0;
    let holder = owners(&h).await[&partition].clone();
    let second = h.run(&h.job(JobKind::Enforce, "a1")).await;
    assert_eq!(second.status, ResultStatus::Compliant, "{second:#?}");
    assert_eq!(second.worker.as_str(), holder);

    // w2 leaves gracefully: its partitions come back to w1.
    w2.stop().await;
    until(&h, "w1 takes everything back", |o| count(o, "w1") == 4).await;
    let third = h.run(&h.job(JobKind::Enforce, "a1")).await;
    assert_eq!(third.worker.as_str(), "w1");

    // A graceful stop releases every partition and account lease.
    w1.stop().await;
    assert!(owners(&h).await.is_empty());
    let leases = Leases::new(
        h.topology.leases.clone(),
        WorkerId::new("observer").unwrap(),
        Duration::from_secs(1),
    );
    let kept = leases
        .account_holder(&Harness::account("a1"))
        .await
        .unwrap()
        .unwrap();
    assert!(kept.released && kept.is_expired(chrono::Utc::now()));
}

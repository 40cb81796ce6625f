//! Faults across real processes: a worker killed or frozen in the middle of a job, a restarted
//! nats-server and coordinator, workers joining and leaving. In every case each intended order
//! reaches the exchange exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nija_e2e::fleets::{Expected, over_cap_with_dust};
use nija_e2e::{Stack, StackOptions};
use nija_proto::ids::JobKind;
use nija_proto::messages::{JobResult, ResultStatus};
use nija_proto::{AccountId, Partition};
use nija_sim::{FaultSpec, LoggedOrder};

const WAIT: Duration = Duration::from_secs(120);
const SLOW: &str = "user-0001";

/// Each expected sell appears exactly once in the order log, and nothing else.
fn assert_each_sell_once(log: &[LoggedOrder], expected: &Expected) {
    let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    for o in log {
        *seen
            .entry((o.account.clone(), o.order.symbol.clone()))
            .or_default() += 1;
    }
    let want: BTreeSet<(String, String)> = expected
        .sells
        .iter()
        .flat_map(|(a, s)| s.iter().map(move |s| (a.clone(), s.clone())))
        .collect();
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "orders: {seen:?}"
    );
    assert!(
        seen.values().all(|n| *n == 1),
        "an order placed twice: {seen:?}"
    );
}

fn enforced(results: &[JobResult], account: &str) -> bool {
    results.iter().any(|r| {
        r.kind == JobKind::Enforce
            && r.account.as_str() == account
            && r.status == ResultStatus::Enforced
    })
}

/// Options for the interrupted-job tests: deadlines long enough for a redelivery to finish.
fn interrupted_options(accounts: usize) -> (StackOptions, Expected) {
    let (scenario, expected) = over_cap_with_dust(accounts);
    let mut options = StackOptions::new(scenario);
    options.job_deadline = Duration::from_secs(30);
    (options, expected)
}

/// The worker holding `account`'s partition.
async fn owner_of(stack: &Stack, account: &str) -> anyhow::Result<usize> {
    let settled = stack
        .wait_partitions_settled(stack.workers.len(), WAIT)
        .await?;
    let partition = Partition::of(&AccountId::new(account)?, stack.options.partitions).0;
    let owner = settled
        .iter()
        .find(|(_, ps)| ps.contains(&partition))
        .map(|(w, _)| w.clone())
        .ok_or_else(|| anyhow::anyhow!("nobody holds partition {partition}"))?;
    stack
        .workers
        .iter()
        .position(|w| w.name == owner)
        .ok_or_else(|| anyhow::anyhow!("unknown worker {owner}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_leaves_it_to_another_and_no_order_is_placed_twice()
-> anyhow::Result<()> {
    let (options, expected) = interrupted_options(6);
    // The slow account's job takes seconds: every call to the exchange waits 400 ms.
    let mut stack = Stack::start_with(options, |sim| {
        sim.admin().set_faults(FaultSpec {
            account: Some(SLOW.into()),
            latency_ms: Some(400),
            ..Default::default()
        });
        Ok::<(), anyhow::Error>(())
    })
    .await?;
    let owner = owner_of(&stack, SLOW).await?;
    let before_kill = stack
        .wait_orders(WAIT, "the slow account's first sell", |log| {
            log.iter().any(|o| o.account == SLOW)
        })
        .await?;
    stack.workers[owner].kill();
    let sold_before_kill = before_kill.iter().filter(|o| o.account == SLOW).count() as u32;
    stack.sim.admin().clear_faults();

    let results = stack
        .wait_results(
            WAIT,
            "the slow account enforced by the other worker",
            |rs| enforced(rs, SLOW) && Stack::latest_by_account(rs, JobKind::Enforce).len() == 6,
        )
        .await?;
    let done = results
        .iter()
        .find(|r| r.account.as_str() == SLOW && r.status == ResultStatus::Enforced)
        .expect("checked above");
    assert_ne!(
        done.worker.as_str(),
        stack.workers[owner].name,
        "finished by the survivor"
    );
    // The redelivered job planned from a fresh snapshot: what was sold before the kill is gone
    // (or, if its fill raced the kill, found by its client order id), never sold again.
    let cap = expected.caps[SLOW];
    let fresh = done.sold.iter().filter(|s| !s.already_placed).count() as u32;
    assert_eq!(done.count_after, Some(cap));
    assert!(
        done.count_before == Some(cap + 3 - sold_before_kill)
            || done.sold.iter().any(|s| s.already_placed),
        "count_before {:?} after {sold_before_kill} sells before the kill: {:?}",
        done.count_before,
        done.sold
    );
    assert_eq!(fresh + sold_before_kill, 3, "{:?}", done.sold);
    assert_each_sell_once(&stack.order_log(), &expected);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_lease_holder_is_declared_dead_replaced_and_places_nothing_when_resumed()
-> anyhow::Result<()> {
    let (options, expected) = interrupted_options(6);
    let mut stack = Stack::start_with(options, |sim| {
        sim.admin().set_faults(FaultSpec {
            account: Some(SLOW.into()),
            latency_ms: Some(400),
            ..Default::default()
        });
        Ok::<(), anyhow::Error>(())
    })
    .await?;
    let owner = owner_of(&stack, SLOW).await?;
    let frozen = stack.workers[owner].name.clone();
    stack
        .wait_orders(WAIT, "the slow account's first sell", |log| {
            log.iter().any(|o| o.account == SLOW)
        })
        .await?;
    stack.workers[owner].freeze()?;
    stack.sim.admin().clear_faults();

    stack
        .wait_results(WAIT, "the slow account enforced by another worker", |rs| {
            rs.iter().any(|r| {
                r.account.as_str() == SLOW
                    && r.status == ResultStatus::Enforced
                    && r.worker.as_str() != frozen
            })
        })
        .await?;
    let coordinator_log = stack.coordinator()?.log();
    assert!(
        coordinator_log
            .lines()
            .any(|l| l.contains("heartbeat fail") && l.contains(&frozen)),
        "the coordinator did not log the frozen worker's missed heartbeats"
    );
    let before_resume = stack.order_log().len();

    stack.workers[owner].resume()?;
    // The resumed worker comes back and finishes (or drops) what it was doing.
    stack
        .wait_heartbeat(&frozen, WAIT, |hb| hb.jobs_in_flight == 0)
        .await?;
    assert_eq!(
        stack.order_log().len(),
        before_resume,
        "the resumed worker placed an order"
    );
    assert_each_sell_once(&stack.order_log(), &expected);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_nats_and_the_coordinator_keeps_state_and_places_nothing_twice()
-> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(6);
    let mut options = StackOptions::new(scenario);
    options.enforce_every = Duration::from_secs(3);
    let mut stack = Stack::start(options).await?;
    stack
        .wait_results(WAIT, "every account enforced", |rs| {
            expected.sells.keys().all(|a| enforced(rs, a))
        })
        .await?;
    let js = async_nats::jetstream::new(stack.client.clone());
    let snapshot = |bucket: &'static str| {
        let js = js.clone();
        async move {
            let kv = js.get_key_value(bucket).await?;
            let mut keys = futures::StreamExt::boxed(kv.keys().await?);
            let mut out = BTreeMap::new();
            while let Some(key) = futures::StreamExt::next(&mut keys).await {
                let key = key?;
                let value = kv.get(&key).await?;
                out.insert(key, value);
            }
            Ok::<_, anyhow::Error>(out)
        }
    };
    let blacklist = snapshot("nija-blacklist").await?;
    assert!(!blacklist.is_empty());
    let tracker = snapshot("nija-tracker").await?;
    let results_before = stack.results().await?.len();

    stack.nats.restart()?;
    stack.coordinator()?.restart()?;
    let js = async_nats::jetstream::new(async_nats::connect(stack.nats.url()).await?);
    // Work resumes: new scheduled enforce results for every account, all compliant now.
    let results = stack
        .wait_results(WAIT, "compliant enforce results after the restarts", |rs| {
            let after = &rs[results_before.min(rs.len())..];
            expected.sells.keys().all(|a| {
                after.iter().any(|r| {
                    r.account.as_str() == a
                        && r.kind == JobKind::Enforce
                        && r.status == ResultStatus::Compliant
                })
            })
        })
        .await?;
    assert!(results.len() > results_before);
    let kv = js.get_key_value("nija-blacklist").await?;
    for (key, value) in &blacklist {
        assert_eq!(&kv.get(key).await?, value, "blacklist entry {key} changed");
    }
    let kv = js.get_key_value("nija-tracker").await?;
    for key in tracker.keys() {
        assert!(kv.get(key).await?.is_some(), "tracker entry {key} lost");
    }
    assert_each_sell_once(&stack.order_log(), &expected);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_when_workers_join_and_leave_with_one_owner_per_account()
-> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(8);
    let mut options = StackOptions::new(scenario);
    options.workers = 1;
    options.enforce_every = Duration::from_secs(2);
    let mut stack = Stack::start(options).await?;
    let alone = stack.wait_partitions_settled(1, WAIT).await?;
    assert_eq!(alone.values().next().map(Vec::len), Some(8));

    stack.add_worker()?;
    let two = stack.wait_partitions_settled(2, WAIT).await?;
    assert!(two.values().all(|ps| ps.len() == 4), "fair share: {two:?}");
    let partition_owner: BTreeMap<u16, String> = two
        .iter()
        .flat_map(|(w, ps)| ps.iter().map(move |p| (*p, w.clone())))
        .collect();
    // Every account lease is held by the worker that holds the account's partition.
    let js = async_nats::jetstream::new(stack.client.clone());
    let leases = js.get_key_value("nija-leases").await?;
    stack
        .wait_results(WAIT, "enforce rounds after the join", |rs| {
            expected.sells.keys().all(|a| {
                rs.iter()
                    .any(|r| r.account.as_str() == a && r.kind == JobKind::Enforce)
            })
        })
        .await?;
    for account in expected.sells.keys() {
        let partition = Partition::of(&AccountId::new(account.as_str())?, 8).0;
        if let Some(raw) = leases.get(format!("account.{account}")).await? {
            let lease: serde_json::Value = serde_json::from_slice(&raw)?;
            let expires: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(lease["expires_at"].clone())?;
            if expires > chrono::Utc::now() {
                assert_eq!(
                    lease["owner"].as_str(),
                    Some(partition_owner[&partition].as_str()),
                    "{account} leased by a worker that does not hold partition {partition}"
                );
            }
        }
    }

    // One worker leaves gracefully: the other takes every partition and the work goes on.
    stack.workers[0].terminate(Duration::from_secs(30)).await?;
    let one = stack.wait_partitions_settled(1, WAIT).await?;
    assert_eq!(one.keys().next().map(String::as_str), Some("worker-1"));
    assert_eq!(one.values().next().map(Vec::len), Some(8));
    let before = stack.results().await?.len();
    stack
        .wait_results(
            WAIT,
            "every account handled by the remaining worker",
            |rs| {
                let after = &rs[before.min(rs.len())..];
                expected.sells.keys().all(|a| {
                    after.iter().any(|r| {
                        r.account.as_str() == a
                            && r.worker.as_str() == "worker-1"
                            && r.status.is_success()
                    })
                })
            },
        )
        .await?;
    assert_each_sell_once(&stack.order_log(), &expected);
    stack.shutdown().await;
    Ok(())
}

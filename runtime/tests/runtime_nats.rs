//! The runtime against a real nats-server: topology is idempotent, per-account maps are isolated,
//! control flags reach a live view, and jobs are de-duplicated by id.

use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use nija_e2e::NatsServer;
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, TriggeredBy};
use nija_proto::{AccountId, JobId, Partition, Symbol};
use nija_runtime::connect::{ConnectError, NatsSettings, connect};
use nija_runtime::stores::{AccountSymbolMap, Block, ControlStore, Publisher, scan_keys};
use nija_runtime::topology::{TopologySettings, ensure_topology, open_topology, wait_for_topology};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

impl nija_proto::messages::Message for Note {}

fn settings(partitions: u16) -> TopologySettings {
    TopologySettings {
        partitions,
        job_deadline: Duration::from_secs(3),
        ..Default::default()
    }
}

#[tokio::test]
async fn unreachable_server_error_names_what_was_tried() {
    let port = nija_e2e::free_port();
    let urls = vec![
        format!("nats://127.0.0.1:{port}"),
        format!("nats://127.0.0.1:{}", nija_e2e::free_port()),
    ];
    let err = connect(&NatsSettings::new(urls.clone()), "test")
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, ConnectError::Unreachable { .. }));
    let text = err.to_string();
    assert!(text.contains(&urls[0]) && text.contains(&urls[1]), "{text}");
    assert!(text.contains("NATS_URL"), "{text}");
    assert!(matches!(
        connect(&NatsSettings::new(Vec::<String>::new()), "test").await,
        Err(ConnectError::NoUrl)
    ));
}

#[tokio::test]
async fn topology_is_idempotent_and_updates_in_place() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    // Several URLs, one of them dead: the client uses the live one.
    let dead = format!("nats://127.0.0.1:{}", nija_e2e::free_port());
    let client = connect(&NatsSettings::new([server.url(), dead]), "test").await?;
    let js = jetstream::new(client);
    assert!(open_topology(&js).await.is_err());

    let waiter = tokio::spawn({
        let js = js.clone();
        async move { wait_for_topology(&js, Duration::from_millis(50)).await }
    });
    ensure_topology(&js, &settings(4)).await?;
    let mut changed = settings(6);
    changed.results_max_age = Duration::from_secs(3600);
    let topology = ensure_topology(&js, &changed).await?;
    tokio::time::timeout(Duration::from_secs(10), waiter).await??;

    let mut results = topology.results.clone();
    assert_eq!(
        results.info().await?.config.max_age,
        Duration::from_secs(3600)
    );
    for n in 0..6 {
        let mut consumer = topology.partition_consumer(Partition(n)).await?;
        let info = consumer.info().await?;
        assert_eq!(info.config.filter_subject, format!("nija.jobs.{n}.>"));
        assert_eq!(info.config.ack_wait, Duration::from_millis(1500));
    }
    Ok(())
}

#[tokio::test]
async fn account_symbol_maps_are_per_account() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(connect(&NatsSettings::new([server.url()]), "test").await?);
    let topology = ensure_topology(&js, &settings(2)).await?;
    let map: AccountSymbolMap<Note> = AccountSymbolMap::new(js.clone(), topology.blacklist.clone());
    let (a, b) = (AccountId::new("user-1")?, AccountId::new("user-10")?);
    let btc = Symbol::new("BTC-USD")?;
    let brk = Symbol::new("BRK.B-USD")?;
    let note = |t: &str| Note { text: t.into() };

    assert!(map.list(&a).await?.is_empty());
    map.put(&a, &btc, &note("a-btc")).await?;
    map.put(&a, &brk, &note("a-brk")).await?;
    map.put(&b, &btc, &note("b-btc")).await?;

    let listed = map.list(&a).await?;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[&brk], note("a-brk"));
    assert_eq!(
        map.list(&b).await?.len(),
        1,
        "user-1 must not see user-10's keys"
    );

    // Compare-and-set.
    let current = map.get(&a, &btc).await?.expect("written above");
    assert!(
        map.put_if(&a, &btc, &note("x"), current.revision + 100)
            .await?
            .is_none()
    );
    assert!(
        map.put_if(&a, &btc, &note("y"), current.revision)
            .await?
            .is_some()
    );
    assert!(map.put_if(&a, &btc, &note("z"), 0).await?.is_none());
    assert_eq!(
        map.get(&a, &btc).await?.expect("written above").value,
        note("y")
    );

    assert!(map.remove(&a, &btc).await?);
    assert!(!map.remove(&a, &btc).await?);
    assert_eq!(map.list(&a).await?.keys().collect::<Vec<_>>(), vec![&brk]);
    assert_eq!(map.clear(&b).await?, 1);
    assert!(map.list(&b).await?.is_empty());
    assert_eq!(map.list(&a).await?.len(), 1);

    // Revisions as a single read reports them.
    let scanned = scan_keys(&js, &topology.blacklist, "user-1.>").await?;
    assert_eq!(scanned.len(), 1);
    assert_eq!(
        scanned[0].2,
        map.get(&a, &brk).await?.expect("written above").revision
    );

    // More keys than one batched read returns: every one is still listed.
    let many = AccountId::new("user-many")?;
    let writes = (0..1_005).map(|i| {
        let map = map.clone();
        let many = many.clone();
        async move {
            let symbol = Symbol::new(format!("C{i}-USD"))?;
            map.put(&many, &symbol, &note("n")).await?;
            anyhow::Ok(())
        }
    });
    for write in futures::future::join_all(writes).await {
        write?;
    }
    assert_eq!(map.list(&many).await?.len(), 1_005);
    Ok(())
}

#[tokio::test]
async fn control_flags_reach_the_live_view() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(connect(&NatsSettings::new([server.url()]), "test").await?);
    let topology = ensure_topology(&js, &settings(1)).await?;
    let control = ControlStore::new(js.clone(), topology.control.clone());
    let a = AccountId::new("acct-a")?;
    let other = AccountId::new("acct-b")?;

    control.pause_account(&a, "alice").await?;
    let mut view = control.watch().await?;
    assert!(matches!(view.borrow().block(&a), Some(Block::Paused(f)) if f.by == "alice"));
    assert_eq!(view.borrow().block(&other), None);

    control.quarantine(&other, "auth failed 3 times").await?;
    wait_until(&mut view, |s| s.block(&other).is_some()).await;
    assert!(matches!(
        control.block(&other).await?,
        Some(Block::Quarantined(_))
    ));

    control.pause_all("bob").await?;
    wait_until(&mut view, |s| s.paused.is_some()).await;
    assert!(matches!(
        view.borrow().block(&other),
        Some(Block::PausedGlobally(_))
    ));

    control.resume_all().await?;
    control.resume_account(&other).await?;
    control.resume_account(&a).await?;
    wait_until(&mut view, |s| {
        s.block(&a).is_none() && s.block(&other).is_none()
    })
    .await;
    assert_eq!(control.state().await?, Default::default());
    Ok(())
}

async fn wait_until(
    view: &mut tokio::sync::watch::Receiver<std::sync::Arc<nija_runtime::stores::ControlState>>,
    cond: impl Fn(&nija_runtime::stores::ControlState) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(10), view.wait_for(|s| cond(s)))
        .await
        .expect("control view did not change")
        .expect("control watch ended");
}

#[tokio::test]
async fn jobs_are_deduplicated_by_id() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(connect(&NatsSettings::new([server.url()]), "test").await?);
    let topology = ensure_topology(&js, &settings(2)).await?;
    let publisher = Publisher::new(js.clone());
    let account = AccountId::new("user-7")?;
    let job = Job {
        job_id: JobId::scheduled(JobKind::Enforce, &account, 1),
        kind: JobKind::Enforce,
        account: account.clone(),
        partition: Partition::of(&account, 2),
        scheduled_at: Utc::now(),
        deadline: Utc::now(),
        triggered_by: TriggeredBy::Schedule,
        force: false,
        dry_run: false,
        max_positions: None,
    };
    let first = publisher.job(&job, Some("00-abc-def-01")).await?;
    let again = publisher.job(&job, None).await?;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    let mut jobs = topology.jobs.clone();
    assert_eq!(jobs.info().await?.state.messages, 1);
    Ok(())
}

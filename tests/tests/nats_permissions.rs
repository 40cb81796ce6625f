//! The NATS identities of `deploy/nats/accounts.conf`, run on a real nats-server.
//!
//! The server loads the real file (copied beside a test-only `listen`/`jetstream` stanza, with
//! fresh nkeys in the environment, exactly as the Kubernetes pods get them). For each role the
//! tests perform the actions nija needs and see them work, then attempt what the role must not do
//! and see the server refuse it with a permission violation (and the refused effect absent).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{Client, ConnectOptions, Event, ServerError};
use futures::StreamExt;
use nija_e2e::nats::nats_server_bin;
use nija_e2e::{free_port, workspace_root};
use nija_proto::names::{
    ACCOUNTS_BUCKET, BLACKLIST_BUCKET, CONTROL_BUCKET, DLQ_STREAM, JOBS_STREAM, LEASES_BUCKET,
    PAUSED_KEY, RESULTS_STREAM, TRACKER_BUCKET,
};
use tokio::sync::mpsc;

/// Bound on waiting for something the server is expected to send (a reply, a refusal).
const WAIT: Duration = Duration::from_secs(10);

const ROLES: [&str; 3] = ["COORDINATOR", "WORKER", "CLI"];
const BUCKETS: [&str; 5] = [
    BLACKLIST_BUCKET,
    TRACKER_BUCKET,
    LEASES_BUCKET,
    CONTROL_BUCKET,
    ACCOUNTS_BUCKET,
];

/// One nkey pair per role; the server sees only the public keys.
struct Identities(HashMap<&'static str, nkeys::KeyPair>);

impl Identities {
    fn new() -> Identities {
        Identities(
            ROLES
                .iter()
                .map(|r| (*r, nkeys::KeyPair::new_user()))
                .collect(),
        )
    }

    fn seed(&self, role: &str) -> String {
        self.0[role].seed().expect("a fresh user key has a seed")
    }

    /// `NIJA_<ROLE>_NKEY=<public key>`, the variables accounts.conf reads.
    fn env(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(role, kp)| (format!("NIJA_{role}_NKEY"), kp.public_key()))
            .collect()
    }
}

/// A nats-server running the deploy configuration, killed on drop.
struct Server {
    child: Child,
    port: u16,
    /// The folder of a single node's configuration, store and log (a cluster's is the test's).
    _owned: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deploy_nats() -> PathBuf {
    workspace_root().join("deploy/nats")
}

/// Copies every file of deploy/nats into `dir`, pointing tls.conf at `tls_dir`.
fn copy_deploy_nats(dir: &Path, tls_dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(deploy_nats())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "conf") {
            let text = std::fs::read_to_string(&path)?;
            let text = text.replace("/etc/nats/tls/", &format!("{}/", tls_dir.display()));
            std::fs::write(dir.join(entry_name(&path)?), text)?;
        }
    }
    Ok(())
}

fn entry_name(path: &Path) -> anyhow::Result<&std::ffi::OsStr> {
    path.file_name()
        .with_context(|| format!("{} has no file name", path.display()))
}

impl Server {
    /// Starts a single JetStream node with `accounts.conf` (and `tls.conf` if `tls_dir` is given,
    /// holding `tls.crt`, `tls.key`, `ca.crt`).
    fn start(ids: &Identities, tls_dir: Option<&Path>) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        copy_deploy_nats(dir.path(), tls_dir.unwrap_or(dir.path()))?;
        let port = free_port();
        let mut conf = format!(
            "listen = \"127.0.0.1:{port}\"\njetstream {{ store_dir = \"{}\" }}\ninclude \"accounts.conf\"\n",
            dir.path().join("js").display()
        );
        if tls_dir.is_some() {
            conf.push_str("include \"tls.conf\"\n");
        }
        let conf_path = dir.path().join("test-server.conf");
        std::fs::write(&conf_path, conf)?;
        let mut server = Server::run(ids, &conf_path, port, "server", &[])?;
        server._owned = Some(dir);
        Ok(server)
    }

    /// Runs nats-server on `conf` (in its folder) and waits until it listens on `port`.
    fn run(
        ids: &Identities,
        conf: &Path,
        port: u16,
        name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let bin = nats_server_bin().context("no nats-server binary (run scripts/setup)")?;
        let dir = conf.parent().context("config folder")?.to_path_buf();
        let log_path = dir.join(format!("{name}.log"));
        let child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .envs(ids.env())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()?;
        let mut server = Server {
            child,
            port,
            _owned: None,
        };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "nats-server exited ({status}): {}",
                    std::fs::read_to_string(&log_path)?
                );
            }
            if start.elapsed() > WAIT {
                bail!("nats-server did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// A connection as one role, with the server's error messages (permission violations) collected.
struct Conn {
    client: Client,
    js: jetstream::Context,
    errors: mpsc::UnboundedReceiver<String>,
    /// Errors received while waiting for another one.
    seen: Vec<String>,
}

async fn connect_with(url: &str, options: ConnectOptions) -> anyhow::Result<Conn> {
    let (tx, errors) = mpsc::unbounded_channel();
    let client = options
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(err) = event {
                    let text = match err {
                        ServerError::Other(text) => text,
                        other => other.to_string(),
                    };
                    let _ = tx.send(text);
                }
            }
        })
        .connect(url)
        .await?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(3));
    Ok(Conn {
        client,
        js,
        errors,
        seen: Vec::new(),
    })
}

async fn connect(server: &Server, ids: &Identities, role: &str) -> anyhow::Result<Conn> {
    connect_with(&server.url(), ConnectOptions::with_nkey(ids.seed(role))).await
}

impl Conn {
    /// Waits for the server to report a permission violation naming `subject` (each report
    /// answers one call).
    async fn refused(&mut self, subject: &str) -> anyhow::Result<()> {
        let wanted = format!("\"{}\"", subject.to_lowercase());
        let matches = |text: &String| {
            let text = text.to_lowercase();
            text.contains("permissions violation") && text.contains(&wanted)
        };
        if let Some(i) = self.seen.iter().position(matches) {
            self.seen.remove(i);
            return Ok(());
        }
        let found = tokio::time::timeout(WAIT, async {
            while let Some(text) = self.errors.recv().await {
                if matches(&text) {
                    return true;
                }
                self.seen.push(text);
            }
            false
        })
        .await;
        match found {
            Ok(true) => Ok(()),
            _ => bail!(
                "the server did not refuse {subject} (it reported: {:?})",
                self.seen
            ),
        }
    }

    /// Publishes on core NATS and expects a refusal.
    async fn publish_refused(&mut self, subject: &str) -> anyhow::Result<()> {
        self.client.publish(subject.to_string(), "x".into()).await?;
        self.client.flush().await?;
        self.refused(subject).await
    }

    /// Subscribes and expects a refusal.
    async fn subscribe_refused(&mut self, subject: &str) -> anyhow::Result<()> {
        let _sub = self.client.subscribe(subject.to_string()).await?;
        self.client.flush().await?;
        self.refused(subject).await
    }
}

/// The topology as the coordinator creates it (nija-runtime's `ensure_topology` shape): the three
/// streams, two partition consumers and the five buckets.
async fn coordinator_topology(coord: &Conn) -> anyhow::Result<()> {
    let js = &coord.js;
    for (name, subject, retention) in [
        (
            JOBS_STREAM,
            "nija.jobs.>",
            stream::RetentionPolicy::WorkQueue,
        ),
        (
            RESULTS_STREAM,
            "nija.results.>",
            stream::RetentionPolicy::Limits,
        ),
        (DLQ_STREAM, "nija.dlq.>", stream::RetentionPolicy::Limits),
    ] {
        js.create_or_update_stream(stream::Config {
            name: name.into(),
            subjects: vec![subject.into()],
            retention,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .with_context(|| format!("coordinator creates stream {name}"))?;
    }
    let jobs = js.get_stream(JOBS_STREAM).await?;
    for p in 0..2 {
        jobs.create_consumer(consumer::pull::Config {
            durable_name: Some(format!("nija-jobs-p{p}")),
            filter_subject: format!("nija.jobs.{p}.>"),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("coordinator creates a partition consumer")?;
    }
    let results = js.get_stream(RESULTS_STREAM).await?;
    results
        .create_consumer(consumer::pull::Config {
            durable_name: Some("nija-coordinator-results".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("coordinator creates its results consumer")?;
    for bucket in BUCKETS {
        js.create_or_update_key_value(kv::Config {
            bucket: bucket.into(),
            history: 5,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .with_context(|| format!("coordinator creates bucket {bucket}"))?;
    }
    Ok(())
}

/// What every process does at start (nija-runtime's `open_topology`): look every stream and bucket up.
async fn open_topology(conn: &Conn) -> anyhow::Result<HashMap<&'static str, kv::Store>> {
    for name in [JOBS_STREAM, RESULTS_STREAM, DLQ_STREAM] {
        conn.js
            .get_stream(name)
            .await
            .with_context(|| format!("stream info {name}"))?;
    }
    let mut stores = HashMap::new();
    for bucket in BUCKETS {
        let store = conn
            .js
            .get_key_value(bucket)
            .await
            .with_context(|| format!("open bucket {bucket}"))?;
        stores.insert(bucket, store);
    }
    Ok(stores)
}

async fn stream_messages(coord: &Conn, name: &str) -> anyhow::Result<u64> {
    Ok(coord
        .js
        .get_stream(name)
        .await?
        .info()
        .await?
        .state
        .messages)
}

/// Answers `nija.ctl.>` requests with the verb, as the coordinator's control API does.
async fn serve_control(coord: &Conn) -> anyhow::Result<()> {
    let mut sub = coord.client.subscribe("nija.ctl.>").await?;
    let client = coord.client.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let verb = msg
                    .subject
                    .as_str()
                    .trim_start_matches("nija.ctl.")
                    .to_string();
                let _ = client.publish(reply, format!("ok {verb}").into()).await;
            }
        }
    });
    coord.client.flush().await?;
    Ok(())
}

async fn started() -> anyhow::Result<(Identities, Server, Conn)> {
    let ids = Identities::new();
    let server = Server::start(&ids, None)?;
    let coord = connect(&server, &ids, "COORDINATOR").await?;
    coordinator_topology(&coord).await?;
    Ok((ids, server, coord))
}

#[tokio::test]
async fn coordinator_drives_nija_and_nothing_else() -> anyhow::Result<()> {
    let (_ids, _server, mut coord) = started().await?;
    let stores = open_topology(&coord).await?;

    coord
        .js
        .publish("nija.jobs.0.enforce.user-1", "job".into())
        .await?
        .await
        .context("coordinator publishes a job")?;
    assert_eq!(stream_messages(&coord, JOBS_STREAM).await?, 1);
    stores[CONTROL_BUCKET]
        .put(PAUSED_KEY, "operator".into())
        .await
        .context("coordinator writes the pause flag")?;
    stores[ACCOUNTS_BUCKET]
        .put("user-1", "{}".into())
        .await
        .context("coordinator registers an account")?;

    // Results: read through its durable consumer.
    coord
        .js
        .publish("nija.results.enforce.user-1", "result".into())
        .await?
        .await?;
    let results = coord
        .js
        .get_stream(RESULTS_STREAM)
        .await?
        .get_consumer::<consumer::pull::Config>("nija-coordinator-results")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut batch = results.fetch().max_messages(1).messages().await?;
    let msg = batch
        .next()
        .await
        .context("a result")?
        .map_err(anyhow::Error::msg)?;
    msg.double_ack().await.map_err(anyhow::Error::msg)?;

    // Beyond nija's names: refused.
    coord.publish_refused("other.app.subject").await?;
    coord.subscribe_refused("other.>").await?;
    let other = coord
        .js
        .create_stream(stream::Config {
            name: "OTHER".into(),
            subjects: vec!["other.>".into()],
            ..Default::default()
        })
        .await;
    assert!(other.is_err(), "coordinator created a foreign stream");
    coord.refused("$JS.API.STREAM.CREATE.OTHER").await?;
    Ok(())
}

#[tokio::test]
async fn worker_does_its_jobs_and_nothing_more() -> anyhow::Result<()> {
    let (ids, server, coord) = started().await?;
    let coord_stores = open_topology(&coord).await?;
    let mut worker = connect(&server, &ids, "WORKER").await?;
    let stores = open_topology(&worker)
        .await
        .context("worker opens the topology")?;

    let mut heartbeats = coord.client.subscribe("nija.hb.*").await?;
    coord.client.flush().await?;

    // A job in partition 0: pulled, in progress, acked; the work queue is then empty.
    coord
        .js
        .publish("nija.jobs.0.enforce.user-1", "job".into())
        .await?
        .await?;
    let jobs = worker
        .js
        .get_stream(JOBS_STREAM)
        .await?
        .get_consumer::<consumer::pull::Config>("nija-jobs-p0")
        .await
        .map_err(|e| anyhow::anyhow!("worker looks its partition consumer up: {e}"))?;
    let mut batch = jobs
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .context("worker pulls")?;
    let job = batch
        .next()
        .await
        .context("the job is delivered")?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(job.subject.as_str(), "nija.jobs.0.enforce.user-1");
    job.ack_with(jetstream::AckKind::Progress)
        .await
        .map_err(anyhow::Error::msg)?;

    // Result, dead letter (JetStream, acked by the server) and heartbeat.
    worker
        .js
        .publish("nija.results.enforce.user-1", "result".into())
        .await?
        .await
        .context("worker publishes a result")?;
    worker
        .js
        .publish("nija.dlq.enforce", "dead".into())
        .await?
        .await
        .context("worker publishes a dead letter")?;
    job.double_ack().await.map_err(anyhow::Error::msg)?;
    assert_eq!(stream_messages(&coord, JOBS_STREAM).await?, 0);
    assert_eq!(stream_messages(&coord, RESULTS_STREAM).await?, 1);
    assert_eq!(stream_messages(&coord, DLQ_STREAM).await?, 1);

    let mut peers = worker.client.subscribe("nija.hb.*").await?;
    worker.client.flush().await?;
    worker
        .client
        .publish("nija.hb.worker-a", "hb".into())
        .await?;
    let seen = tokio::time::timeout(WAIT, heartbeats.next()).await?;
    assert_eq!(
        seen.context("heartbeat")?.subject.as_str(),
        "nija.hb.worker-a"
    );
    let seen = tokio::time::timeout(WAIT, peers.next()).await?;
    assert_eq!(
        seen.context("peer heartbeat")?.subject.as_str(),
        "nija.hb.worker-a"
    );

    // State it owns: read, write, compare-and-set, delete, watch.
    for bucket in [BLACKLIST_BUCKET, TRACKER_BUCKET, LEASES_BUCKET] {
        let kv = &stores[bucket];
        let mut watch = kv
            .watch_all()
            .await
            .with_context(|| format!("watch {bucket}"))?;
        let rev = kv
            .create("user-1.BTC-USD", "v1".into())
            .await
            .with_context(|| format!("create in {bucket}"))?;
        kv.update("user-1.BTC-USD", "v2".into(), rev)
            .await
            .with_context(|| format!("update in {bucket}"))?;
        kv.put("user-1.ETH-USD", "v".into()).await?;
        let value = kv.get("user-1.BTC-USD").await?;
        assert_eq!(value.as_deref(), Some(&b"v2"[..]));
        let entry = kv.entry("user-1.BTC-USD").await?.context("entry")?;
        assert_eq!(entry.revision, rev + 1);
        kv.delete("user-1.ETH-USD").await?;
        let watched = tokio::time::timeout(WAIT, watch.next())
            .await?
            .context("watch entry")??;
        assert_eq!(watched.key, "user-1.BTC-USD");
        let keys: Vec<String> = kv
            .keys()
            .await?
            .filter_map(|k| async { k.ok() })
            .collect()
            .await;
        assert_eq!(keys, vec!["user-1.BTC-USD".to_string()]);
    }

    // Control flags and the account registry: read and watched (the kill switch), never written.
    let mut pause_watch = stores[CONTROL_BUCKET]
        .watch(PAUSED_KEY)
        .await
        .context("worker watches the pause flag")?;
    coord_stores[CONTROL_BUCKET]
        .put(PAUSED_KEY, "operator".into())
        .await?;
    let flag = tokio::time::timeout(WAIT, pause_watch.next())
        .await?
        .context("pause flag")??;
    assert_eq!(flag.key, PAUSED_KEY);
    coord_stores[ACCOUNTS_BUCKET]
        .put("user-1", "{}".into())
        .await?;
    assert!(stores[ACCOUNTS_BUCKET].get("user-1").await?.is_some());

    coord_stores[CONTROL_BUCKET].delete(PAUSED_KEY).await?;
    let refused = stores[CONTROL_BUCKET]
        .put(PAUSED_KEY, "worker".into())
        .await;
    assert!(refused.is_err(), "a worker wrote the kill switch");
    worker.refused("$KV.nija-control.paused").await?;
    assert!(
        coord_stores[CONTROL_BUCKET]
            .get(PAUSED_KEY)
            .await?
            .is_none()
    );
    let refused = stores[CONTROL_BUCKET]
        .put("paused.user-1", "worker".into())
        .await;
    assert!(refused.is_err(), "a worker paused an account");
    worker.refused("$KV.nija-control.paused.user-1").await?;
    // Quarantine (R9) is the one control key a worker writes.
    stores[CONTROL_BUCKET]
        .put("quarantined.user-1", "auth failed 3 times".into())
        .await
        .context("worker quarantines an account")?;
    assert!(
        stores[ACCOUNTS_BUCKET]
            .put("user-2", "{}".into())
            .await
            .is_err()
    );
    worker.refused("$KV.nija-accounts.user-2").await?;

    // Jobs: a worker may never schedule one, on core NATS or through JetStream.
    worker.publish_refused("nija.jobs.0.enforce.user-1").await?;
    assert!(
        worker
            .js
            .publish("nija.jobs.1.normalize.user-2", "job".into())
            .await?
            .await
            .is_err()
    );
    worker.refused("nija.jobs.1.normalize.user-2").await?;
    assert_eq!(stream_messages(&coord, JOBS_STREAM).await?, 0);

    // Control requests, snooping on them, and changes to streams and consumers.
    worker.publish_refused("nija.ctl.pause").await?;
    worker.subscribe_refused("nija.ctl.>").await?;
    assert!(worker.js.delete_stream(JOBS_STREAM).await.is_err());
    worker.refused("$JS.API.STREAM.DELETE.NIJA_JOBS").await?;
    assert!(
        worker
            .js
            .get_stream(JOBS_STREAM)
            .await?
            .delete_consumer("nija-jobs-p1")
            .await
            .is_err()
    );
    worker
        .refused("$JS.API.CONSUMER.DELETE.NIJA_JOBS.nija-jobs-p1")
        .await?;
    assert!(worker.js.delete_key_value(CONTROL_BUCKET).await.is_err());
    worker
        .refused("$JS.API.STREAM.DELETE.KV_nija-control")
        .await?;
    assert_eq!(
        coord
            .js
            .get_stream(JOBS_STREAM)
            .await?
            .info()
            .await?
            .state
            .consumer_count,
        2
    );
    Ok(())
}

#[tokio::test]
async fn cli_asks_the_coordinator_and_only_reads_state() -> anyhow::Result<()> {
    let (ids, server, coord) = started().await?;
    serve_control(&coord).await?;
    let coord_stores = open_topology(&coord).await?;
    let mut cli = connect(&server, &ids, "CLI").await?;
    let stores = open_topology(&cli)
        .await
        .context("CLI opens the topology")?;

    let reply = tokio::time::timeout(WAIT, cli.client.request("nija.ctl.status", "{}".into()))
        .await
        .context("control request: no reply")??;
    assert_eq!(&reply.payload[..], b"ok status");

    for bucket in BUCKETS {
        coord_stores[bucket]
            .put("user-1.BTC-USD", "v".into())
            .await?;
        let kv = &stores[bucket];
        assert_eq!(
            kv.get("user-1.BTC-USD").await?.as_deref(),
            Some(&b"v"[..]),
            "CLI reads {bucket}"
        );
        let keys: Vec<String> = kv
            .keys()
            .await?
            .filter_map(|k| async { k.ok() })
            .collect()
            .await;
        assert_eq!(keys, vec!["user-1.BTC-USD".to_string()]);
        let mut watch = kv.watch_with_history(">").await?;
        let seen = tokio::time::timeout(WAIT, watch.next())
            .await?
            .context("watch")??;
        assert_eq!(seen.key, "user-1.BTC-USD");
    }
    // Writes and deletes in every bucket, all refused (attempted together: each one waits for
    // the JetStream timeout).
    let attempts = BUCKETS.iter().flat_map(|bucket| {
        let kv = &stores[bucket];
        [
            Box::pin(async move { kv.put("user-1.BTC-USD", "cli".into()).await.is_err() })
                as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>,
            Box::pin(async move { kv.delete("user-1.BTC-USD").await.is_err() }),
        ]
    });
    let failed = futures::future::join_all(attempts).await;
    assert!(failed.iter().all(|f| *f), "a CLI write went through");
    for bucket in BUCKETS {
        let subject = format!("$KV.{bucket}.user-1.BTC-USD");
        cli.refused(&subject).await?;
        cli.refused(&subject).await?;
        assert_eq!(
            coord_stores[bucket].get("user-1.BTC-USD").await?.as_deref(),
            Some(&b"v"[..])
        );
    }

    cli.publish_refused("nija.jobs.0.enforce.user-1").await?;
    cli.publish_refused("nija.results.enforce.user-1").await?;
    cli.publish_refused("nija.hb.worker-a").await?;
    cli.subscribe_refused("nija.>").await?;
    let jobs = cli.js.get_stream(JOBS_STREAM).await?;
    let consumer = jobs
        .get_consumer::<consumer::pull::Config>("nija-jobs-p0")
        .await;
    assert!(consumer.is_err(), "the CLI read a job consumer");
    cli.refused("$JS.API.CONSUMER.INFO.NIJA_JOBS.nija-jobs-p0")
        .await?;
    assert!(cli.js.delete_stream(RESULTS_STREAM).await.is_err());
    cli.refused("$JS.API.STREAM.DELETE.NIJA_RESULTS").await?;
    Ok(())
}

#[tokio::test]
async fn unknown_identities_are_turned_away() -> anyhow::Result<()> {
    let ids = Identities::new();
    let server = Server::start(&ids, None)?;
    let stranger = nkeys::KeyPair::new_user().seed()?;
    let attempt = ConnectOptions::with_nkey(stranger).connect(server.url());
    let refused = tokio::time::timeout(WAIT, attempt).await;
    assert!(!matches!(refused, Ok(Ok(_))), "an unknown nkey connected");
    let anonymous = tokio::time::timeout(WAIT, async_nats::connect(server.url())).await;
    assert!(
        !matches!(anonymous, Ok(Ok(_))),
        "an anonymous client connected"
    );
    Ok(())
}

/// Speaks plaintext NATS: returns the server's INFO line and whatever follows a CONNECT + PING.
fn plaintext_exchange(port: u16) -> anyhow::Result<(String, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(WAIT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut info = String::new();
    reader.read_line(&mut info)?;
    let mut writer = stream;
    let _ = writer.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer);
    Ok((info, String::from_utf8_lossy(&answer).into_owned()))
}

/// A CA and a server certificate for 127.0.0.1 in `dir` (`ca.crt`, `tls.crt`, `tls.key`).
fn write_certificates(dir: &Path) -> anyhow::Result<()> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nija test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
    let cert = params.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("ca.crt"), ca_cert.pem())?;
    std::fs::write(dir.join("tls.crt"), cert.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(())
}

#[tokio::test]
async fn tls_conf_requires_tls_and_identities_still_apply() -> anyhow::Result<()> {
    let ids = Identities::new();
    let certs = tempfile::tempdir()?;
    write_certificates(certs.path())?;
    let server = Server::start(&ids, Some(certs.path()))?;

    // A plaintext client is told TLS is required and gets no service.
    let (info, answer) = plaintext_exchange(server.port)?;
    assert!(info.contains("\"tls_required\":true"), "INFO: {info}");
    assert!(
        !answer.contains("PONG"),
        "a plaintext client was served: {answer}"
    );

    let tls = |role: &str| {
        ConnectOptions::with_nkey(ids.seed(role))
            .require_tls(true)
            .add_root_certificates(certs.path().join("ca.crt"))
    };
    let coord = connect_with(
        &format!("tls://127.0.0.1:{}", server.port),
        tls("COORDINATOR"),
    )
    .await
    .context("coordinator over TLS")?;
    coordinator_topology(&coord).await?;
    let mut worker = connect_with(&format!("tls://127.0.0.1:{}", server.port), tls("WORKER"))
        .await
        .context("worker over TLS")?;
    let stores = open_topology(&worker).await?;
    stores[LEASES_BUCKET]
        .put("partition.0", "worker-a".into())
        .await?;
    worker.publish_refused("nija.jobs.0.enforce.user-1").await?;
    Ok(())
}

#[test]
fn cluster_configurations_parse() -> anyhow::Result<()> {
    let ids = Identities::new();
    let certs = tempfile::tempdir()?;
    write_certificates(certs.path())?;
    let dir = tempfile::tempdir()?;
    copy_deploy_nats(dir.path(), certs.path())?;
    let bin = nats_server_bin().context("no nats-server binary (run scripts/setup)")?;
    for conf in ["nats-server.conf", "nats-server-tls.conf"] {
        let out = Command::new(&bin)
            .arg("-t")
            .arg("-c")
            .arg(dir.path().join(conf))
            .env("POD_NAME", "nats-0")
            .envs(ids.env())
            .output()?;
        assert!(
            out.status.success(),
            "{conf}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Writes `seed` to a file only its owner may read, as the Secret mount does.
fn seed_file(dir: &Path, role: &str, seed: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("{role}.nkey"));
    // With the newline `sed -n 1p` leaves, as docs/deploy.md creates the Secret.
    std::fs::write(&path, format!("{seed}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
    Ok(path)
}

/// A value for the per-account maps (they store JSON objects in the versioned envelope).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Note {
    text: String,
}

impl nija_proto::messages::Message for Note {}

/// The shared runtime (connect with `[nats] nkey`, topology, leases, stores) as each role uses it.
#[tokio::test]
async fn nija_runtime_works_under_each_identity() -> anyhow::Result<()> {
    use nija_proto::{AccountId, Partition, Symbol, WorkerId};
    use nija_runtime::connect::{NatsSettings, connect};
    use nija_runtime::lease::{Acquire, Leases};
    use nija_runtime::stores::{AccountSymbolMap, ControlStore};
    use nija_runtime::topology::{TopologySettings, ensure_topology, open_topology};

    let ids = Identities::new();
    let server = Server::start(&ids, None)?;
    let seeds = tempfile::tempdir()?;
    let settings = |role: &str| -> anyhow::Result<NatsSettings> {
        let mut s = NatsSettings::new([server.url()]);
        s.nkey = Some(seed_file(seeds.path(), role, &ids.seed(role))?);
        Ok(s)
    };
    let account = AccountId::new("user-1")?;
    let symbol = Symbol::new("BTC-USD")?;

    // Coordinator: the whole topology, and the kill switch.
    let coord = jetstream::new(connect(&settings("COORDINATOR")?, "coordinator").await?);
    let topology = ensure_topology(
        &coord,
        &TopologySettings {
            partitions: 4,
            ..Default::default()
        },
    )
    .await
    .context("coordinator creates the topology")?;
    let coord_control = ControlStore::new(coord.clone(), topology.control.clone());
    coord_control.pause_all("operator").await?;
    coord_control.resume_all().await?;

    // Worker: its partition and account leases, the fence, its state, control flags.
    let worker = jetstream::new(connect(&settings("WORKER")?, "worker").await?);
    let wt = open_topology(&worker)
        .await
        .context("worker opens the topology")?;
    wt.partition_consumer(Partition(0))
        .await
        .context("worker opens a partition consumer")?;
    let leases = Leases::new(
        wt.leases.clone(),
        WorkerId::new("worker-a")?,
        Duration::from_secs(20),
    );
    assert!(matches!(
        leases.acquire_partition(Partition(0)).await?,
        Acquire::Acquired(_)
    ));
    assert!(matches!(
        leases.acquire_account(&account, "fingerprint").await?,
        Acquire::Acquired(_)
    ));
    leases.fence(&account).await.context("the order fence")?;
    let blacklist = AccountSymbolMap::<Note>::new(worker.clone(), wt.blacklist.clone());
    blacklist
        .put(
            &account,
            &symbol,
            &Note {
                text: "dust".into(),
            },
        )
        .await?;
    assert_eq!(blacklist.list(&account).await?.len(), 1);
    let control = ControlStore::new(worker.clone(), wt.control.clone());
    let view = control
        .watch()
        .await
        .context("worker watches control flags")?;
    control
        .quarantine(&account, "auth failed 3 times")
        .await
        .context("worker quarantines")?;
    assert!(control.block(&account).await?.is_some());
    assert!(
        control.pause_all("worker").await.is_err(),
        "a worker paused the fleet"
    );
    assert!(control.resume_account(&account).await.is_err());
    drop(view);

    // CLI: reads control state and the blacklist, writes nothing.
    let cli = jetstream::new(connect(&settings("CLI")?, "cli").await?);
    let ct = open_topology(&cli)
        .await
        .context("CLI opens the topology")?;
    let cli_control = ControlStore::new(cli.clone(), ct.control.clone());
    assert!(cli_control.state().await?.block(&account).is_some());
    let cli_blacklist = AccountSymbolMap::<Note>::new(cli.clone(), ct.blacklist.clone());
    assert_eq!(cli_blacklist.list(&account).await?.len(), 1);
    assert!(
        cli_control.resume_all().await.is_err(),
        "the CLI wrote a flag"
    );
    assert!(cli_blacklist.remove(&account, &symbol).await.is_err());
    assert!(coord_control.state().await?.block(&account).is_some());
    assert_eq!(blacklist.list(&account).await?.len(), 1);
    Ok(())
}

/// A nija binary of this build, run with `--config`, its stderr in `log`; killed on drop.
struct Process(Child);

impl Process {
    fn spawn(bin: &str, config: &Path, log: &Path) -> anyhow::Result<Process> {
        let path = nija_e2e::target_bin_dir().join(bin);
        let child = Command::new(&path)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("NATS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build the binaries: cargo build --workspace --bins)",
                    path.display()
                )
            })?;
        Ok(Process(child))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the three binaries this file runs (`cargo test` builds only the package under test),
/// in this build's profile; a no-op when they are current.
fn build_binaries() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root()).args([
        "build",
        "--bins",
        "-p",
        "nija-coordinator",
        "-p",
        "nija-worker",
        "-p",
        "nija-cli",
    ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command.status().context("running cargo build")?;
    ensure!(
        status.success(),
        "cargo build of the nija binaries failed ({status})"
    );
    Ok(())
}

/// The simulator's configuration with short intervals and one role's nkey.
fn role_config(base: &toml::Table, seed: &Path) -> toml::Table {
    let mut config = base.clone();
    config.insert("mode".into(), "observe".into());
    let section = |config: &mut toml::Table, name: &str| -> toml::Table {
        config
            .get(name)
            .and_then(|v| v.as_table())
            .cloned()
            .unwrap_or_default()
    };
    let mut schedule = section(&mut config, "schedule");
    schedule.insert("enforce_every".into(), "10m".into());
    schedule.insert("exit_sweep_every".into(), "off".into());
    schedule.insert("job_deadline".into(), "10s".into());
    config.insert("schedule".into(), schedule.into());
    let mut worker = section(&mut config, "worker");
    worker.insert("heartbeat_every".into(), "200ms".into());
    worker.insert("lease_ttl".into(), "2s".into());
    worker.insert("connect_cooldown".into(), "100ms".into());
    worker.insert("partitions".into(), 4.into());
    config.insert("worker".into(), worker.into());
    let mut http = toml::Table::new();
    http.insert("listen".into(), "127.0.0.1:0".into());
    config.insert("http".into(), http.into());
    let mut nats = section(&mut config, "nats");
    nats.insert("nkey".into(), seed.display().to_string().into());
    config.insert("nats".into(), nats.into());
    config
}

/// The real coordinator, worker and CLI, each under its own identity, run a fleet: every account
/// gets a result, the CLI's pause goes through the coordinator, and no process meets a refusal.
#[tokio::test]
async fn nija_binaries_run_under_their_identities() -> anyhow::Result<()> {
    use nija_proto::messages::{JobResult, decode};

    build_binaries()?;
    let ids = Identities::new();
    let server = Server::start(&ids, None)?;
    let dir = tempfile::tempdir()?;
    let sim = nija_sim::Sim::start(nija_sim::SimOptions::generated(4, 3, 7)).await?;
    let sim_config = dir.path().join("sim.toml");
    sim.write_config(&sim_config, &server.url())?;
    let base: toml::Table = std::fs::read_to_string(&sim_config)?.parse()?;
    let accounts = base
        .get("accounts")
        .and_then(|a| a.as_array())
        .map_or(0, Vec::len);
    assert!(accounts > 0, "the simulator wrote no accounts");
    let mut configs = HashMap::new();
    for role in ROLES {
        let seed = seed_file(dir.path(), role, &ids.seed(role))?;
        let path = dir.path().join(format!("{}.toml", role.to_lowercase()));
        std::fs::write(&path, toml::to_string(&role_config(&base, &seed))?)?;
        configs.insert(role, path);
    }

    let logs = |name: &str| dir.path().join(format!("{name}.log"));
    let _coordinator = Process::spawn(
        "nija-coordinator",
        &configs["COORDINATOR"],
        &logs("coordinator"),
    )?;
    let _worker = Process::spawn("nija-worker", &configs["WORKER"], &logs("worker"))?;
    let read_logs = || {
        ["coordinator", "worker"]
            .map(|n| std::fs::read_to_string(logs(n)).unwrap_or_default())
            .join("\n")
    };

    // Every account's first enforce ends in a result (observe mode: nothing is sold).
    let coord = connect(&server, &ids, "COORDINATOR").await?;
    let results = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(mut stream) = coord.js.get_stream(RESULTS_STREAM).await
                && let Ok(info) = stream.info().await
                && info.state.messages >= accounts as u64
            {
                let mut out = Vec::new();
                for seq in 1..=info.state.messages {
                    let raw = stream.get_raw_message(seq).await?;
                    out.push(decode::<JobResult>(&raw.payload)?);
                }
                return anyhow::Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .with_context(|| format!("no result for every account; logs:\n{}", read_logs()))??;
    let failed: Vec<_> = results
        .iter()
        .filter(|r| {
            r.errors
                .iter()
                .any(|e| e.message.to_lowercase().contains("permission"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "results with permission errors: {failed:?}"
    );

    // The operator's CLI: status, then pause through the coordinator, which writes the flag.
    let nija = nija_e2e::target_bin_dir().join("nija");
    let status = Command::new(&nija)
        .args(["status", "--json", "--config"])
        .arg(&configs["CLI"])
        .env_remove("NATS_URL")
        .output()?;
    assert!(
        status.status.success(),
        "nija status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let pause = Command::new(&nija)
        .args(["pause", "--operator", "ops", "--config"])
        .arg(&configs["CLI"])
        .env_remove("NATS_URL")
        .output()?;
    assert!(
        pause.status.success(),
        "nija pause: {}",
        String::from_utf8_lossy(&pause.stderr)
    );
    let control = coord.js.get_key_value(CONTROL_BUCKET).await?;
    assert!(
        control.get(PAUSED_KEY).await?.is_some(),
        "the pause flag is not set"
    );

    let logs = read_logs().to_lowercase();
    assert!(
        !logs.contains("permissions violation"),
        "a process met a refusal:\n{logs}"
    );
    Ok(())
}

/// `text` with `from` replaced, failing if `from` is absent (the real file changed shape).
fn replaced(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    ensure!(
        text.contains(from),
        "nats-server.conf no longer contains {from}"
    );
    Ok(text.replace(from, to))
}

/// The real nats-server.conf (cluster, JetStream, identities), moved onto loopback ports: three
/// nodes form a JetStream cluster, nija's topology is created with three replicas, and a worker
/// keeps renewing its lease after a node is killed.
#[tokio::test]
async fn cluster_config_forms_jetstream_cluster_that_survives_a_node() -> anyhow::Result<()> {
    use nija_proto::{Partition, WorkerId};
    use nija_runtime::connect::{NatsSettings, connect};
    use nija_runtime::lease::{Acquire, Leases};
    use nija_runtime::topology::{TopologySettings, ensure_topology, open_topology};

    let ids = Identities::new();
    let dir = tempfile::tempdir()?;
    copy_deploy_nats(dir.path(), dir.path())?;
    let original = std::fs::read_to_string(dir.path().join("nats-server.conf"))?;
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut conf = replaced(
            &original,
            "listen = \"0.0.0.0:4222\"",
            &format!("listen = \"127.0.0.1:{}\"", client_ports[i]),
        )?;
        conf = replaced(
            &conf,
            "http = \"0.0.0.0:8222\"",
            &format!("http = \"127.0.0.1:{}\"", free_port()),
        )?;
        conf = replaced(
            &conf,
            "/data/jetstream",
            &dir.path().join(format!("js-{i}")).display().to_string(),
        )?;
        conf = replaced(
            &conf,
            "/var/run/nats/nats.pid",
            &dir.path()
                .join(format!("nats-{i}.pid"))
                .display()
                .to_string(),
        )?;
        conf = replaced(
            &conf,
            "listen = \"0.0.0.0:6222\"",
            &format!("listen = \"127.0.0.1:{}\"", route_ports[i]),
        )?;
        for (k, port) in route_ports.iter().enumerate() {
            conf = replaced(
                &conf,
                &format!("nats://nats-{k}.nats-headless:6222"),
                &format!("nats://127.0.0.1:{port}"),
            )?;
        }
        let path = dir.path().join(format!("node-{i}.conf"));
        std::fs::write(&path, conf)?;
        let name = format!("nats-{i}");
        nodes.push(Server::run(
            &ids,
            &path,
            client_ports[i],
            &name,
            &[("POD_NAME", name.as_str())],
        )?);
    }
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let settings = |role: &str| -> anyhow::Result<NatsSettings> {
        let mut s = NatsSettings::new(urls.clone());
        s.nkey = Some(seed_file(dir.path(), role, &ids.seed(role))?);
        Ok(s)
    };

    // The coordinator creates R3 streams and buckets once the cluster has a meta leader.
    let coord = jetstream::new(connect(&settings("COORDINATOR")?, "coordinator").await?);
    let topology_settings = TopologySettings {
        partitions: 2,
        replicas: 3,
        ..Default::default()
    };
    let topology = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match ensure_topology(&coord, &topology_settings).await {
                Ok(topology) => return topology,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
    .await
    .context("no JetStream cluster formed from nats-server.conf")?;
    let replicas = topology.jobs.cached_info().config.num_replicas;
    assert_eq!(replicas, 3);

    let worker = jetstream::new(connect(&settings("WORKER")?, "worker").await?);
    let wt = open_topology(&worker).await?;
    let leases = Leases::new(
        wt.leases.clone(),
        WorkerId::new("worker-a")?,
        Duration::from_secs(20),
    );
    let Acquire::Acquired(mut lease) = leases.acquire_partition(Partition(0)).await? else {
        bail!("a fresh partition lease was not acquired");
    };

    // One node down: the other two keep the quorum, the worker keeps its lease.
    drop(nodes.remove(0));
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match leases.renew(&mut lease).await {
                Ok(()) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
    .await
    .context("the lease could not be renewed with one node down")?;
    Ok(())
}

//! A whole nija stack for end-to-end tests: a real nats-server, the exchange simulator (in this
//! process, with its admin API for prices, faults and the order log), and the coordinator and
//! worker binaries as real processes with a generated configuration of short intervals.
//!
//! Processes can be killed (`SIGKILL`), frozen (`SIGSTOP`), resumed (`SIGCONT`), terminated and
//! restarted; so can the nats-server (same ports, same JetStream store). Each process's stderr
//! goes to a log file the test can search (`heartbeat fail`, `stall`, ...).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use futures::StreamExt;
use nija_proto::control::{ControlError, Reply};
use nija_proto::messages::{JobResult, Message, decode, encode};
use nija_proto::names::{RESULTS_STREAM, control_subject};
use nija_sim::{LoggedOrder, Scenario, Sim, SimHandle, SimOptions};
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::{NatsServer, target_bin_dir};

/// How to build the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub scenario: Scenario,
    pub seed: u64,
    /// Freeze every price at the scenario's value (exact tests).
    pub frozen_prices: bool,
    pub workers: usize,
    /// Start the coordinator with the stack.
    pub coordinator: bool,
    /// `act` or `observe`.
    pub mode: &'static str,
    pub enforce_every: Duration,
    /// `None`: exit sweeps off.
    pub exit_sweep_every: Option<Duration>,
    pub job_deadline: Duration,
    pub heartbeat_every: Duration,
    pub lease_ttl: Duration,
    pub connect_cooldown: Duration,
    pub partitions: u16,
    /// Extra top-level TOML merged into the generated config (e.g. `[policy]` keys).
    pub extra: Table,
    /// Keys merged into one account's `[[accounts]]` entry (per-account policy overrides).
    pub account_overrides: BTreeMap<String, Table>,
    /// Environment of every nija process (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub env: BTreeMap<String, String>,
}

impl StackOptions {
    /// Short intervals for tests: lease 2 s, heartbeat 200 ms, cooldown 100 ms,
    /// one enforce per account at start then every 10 minutes, sweeps off, 8 partitions,
    /// job deadline 20 s (debug builds on a shared 2-core machine are slow).
    pub fn new(scenario: Scenario) -> StackOptions {
        StackOptions {
            scenario,
            seed: 7,
            frozen_prices: true,
            workers: 2,
            coordinator: true,
            mode: "act",
            enforce_every: Duration::from_secs(600),
            exit_sweep_every: None,
            job_deadline: Duration::from_secs(20),
            heartbeat_every: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(2),
            connect_cooldown: Duration::from_millis(100),
            partitions: 8,
            extra: Table::new(),
            account_overrides: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    /// A generated fleet (see `nija_sim::SimOptions::generated`).
    pub fn generated(accounts: usize, positions: usize, seed: u64) -> StackOptions {
        let mut options =
            StackOptions::new(SimOptions::generated(accounts, positions, seed).scenario);
        options.seed = seed;
        options
    }
}

/// A process of the stack.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    bin: PathBuf,
}

impl Proc {
    fn spawn(
        bin: &Path,
        name: &str,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        log: PathBuf,
    ) -> anyhow::Result<Proc> {
        let mut proc = Proc {
            name: name.to_string(),
            child: None,
            log,
            args,
            env,
            bin: bin.to_path_buf(),
        };
        proc.start()?;
        Ok(proc)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("log file {}", self.log.display()))?;
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env("RUST_LOG", std::env::var("NIJA_E2E_LOG").unwrap_or_else(|_| "info".into()))
            .env("NIJA_LOG_FORMAT", "text")
            .env_remove("NATS_URL")
            .env_remove("NIJA_CONFIG")
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build the workspace binaries first: cargo build --workspace --bins)",
                    self.bin.display()
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {pid} ({}) failed", self.name);
        }
        Ok(())
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `SIGSTOP`: the process freezes, its sockets stay open.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// `SIGCONT`.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// `SIGTERM`, then waits for the exit (graceful drain), at most `limit`.
    pub async fn terminate(&mut self, limit: Duration) -> anyhow::Result<()> {
        self.signal("TERM")?;
        let deadline = tokio::time::Instant::now() + limit;
        while self.is_running() {
            if tokio::time::Instant::now() > deadline {
                self.kill();
                bail!("{} did not exit within {limit:?} after SIGTERM", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = None;
        Ok(())
    }

    /// Starts it again with the same arguments (the log file is appended to).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.start()
    }

    /// Everything the process wrote to stderr so far (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The address of the process's `/metrics` (its `[http] listen` is port 0), read from the
    /// start-up line it logs; waits up to `limit` for it.
    pub async fn metrics_addr(&self, limit: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // `serving /metrics, /healthz, /readyz local_addr=ADDR`
            let log = self.log();
            let found = log
                .lines()
                .filter(|line| line.contains("serving /metrics"))
                .find_map(|line| {
                    line.split_whitespace()
                        .find_map(|field| field.strip_prefix("local_addr="))
                        .map(str::to_string)
                });
            if let Some(addr) = found {
                return Ok(addr);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} logged no metrics address within {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen process must be resumed to die cleanly on some kernels; SIGKILL works anyway.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.kill();
    }
}

/// The running stack.
pub struct Stack {
    pub nats: NatsServer,
    pub sim: SimHandle,
    pub config_path: PathBuf,
    pub coordinator: Option<Proc>,
    pub workers: Vec<Proc>,
    pub client: async_nats::Client,
    pub options: StackOptions,
    /// Removed on drop unless `NIJA_E2E_KEEP` is set (then its path is printed).
    _dir: Option<tempfile::TempDir>,
    dir: PathBuf,
}

/// Builds the workspace binaries (coordinator, worker, CLI) once per test process, so a test
/// never runs against stale binaries (`cargo test` builds only the package under test). A no-op
/// when they are current; `NIJA_E2E_NO_BUILD` skips it.
pub fn ensure_binaries() -> anyhow::Result<()> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if std::env::var_os("NIJA_E2E_NO_BUILD").is_some() {
                return Ok(());
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            // The whole workspace, as the README builds it: a `-p` subset unifies features
            // differently and would rebuild (and replace) the binaries every time.
            command
                .current_dir(crate::workspace_root())
                .args(["build", "--workspace", "--bins"]);
            if !cfg!(debug_assertions) {
                command.arg("--release");
            }
            match command.status() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!(
                    "cargo build of the nija binaries failed ({status})"
                )),
                Err(e) => Err(format!("cannot run cargo to build the nija binaries: {e}")),
            }
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn secs(d: Duration) -> Value {
    Value::String(format!("{}ms", d.as_millis()))
}

impl Stack {
    /// Starts nats-server, the simulator, the coordinator (unless disabled) and the workers.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        Stack::start_with(options, |_| Ok::<(), anyhow::Error>(())).await
    }

    /// Like [`Stack::start`], with `prepare` run on the simulator before any nija process starts
    /// (revoke credentials, set faults or prices).
    pub async fn start_with<E: Into<anyhow::Error>>(
        options: StackOptions,
        prepare: impl FnOnce(&SimHandle) -> Result<(), E>,
    ) -> anyhow::Result<Stack> {
        ensure_binaries()?;
        let nats = NatsServer::start()?;
        let mut sim_options = SimOptions::from_scenario(options.scenario.clone());
        sim_options.seed = options.seed;
        sim_options.motion.frozen = options.frozen_prices;
        let sim = Sim::start(sim_options).await?;
        prepare(&sim).map_err(Into::into)?;
        let temp = tempfile::Builder::new().prefix("nija-e2e-").tempdir()?;
        let (temp, dir) = if std::env::var_os("NIJA_E2E_KEEP").is_some() {
            let kept = temp.keep();
            eprintln!("nija-e2e: keeping {}", kept.display());
            (None, kept)
        } else {
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        };
        let config_path = dir.join("nija.toml");
        sim.write_config(&config_path, &nats.url())?;
        let mut config: Table = std::fs::read_to_string(&config_path)?.parse()?;
        apply_options(&mut config, &options);
        std::fs::write(&config_path, toml::to_string(&config)?)?;

        let client = async_nats::connect(nats.url()).await?;
        // The topology the coordinator would create, so workers can settle on their partitions
        // before the first job: one enforce round then runs on a stable membership.
        let js = async_nats::jetstream::new(client.clone());
        nija_runtime::topology::ensure_topology(
            &js,
            &nija_runtime::topology::TopologySettings {
                partitions: options.partitions,
                job_deadline: options.job_deadline,
                ..Default::default()
            },
        )
        .await?;
        let mut stack = Stack {
            nats,
            sim,
            config_path,
            coordinator: None,
            workers: Vec::new(),
            client,
            options: options.clone(),
            _dir: temp,
            dir,
        };
        for _ in 0..options.workers {
            stack.add_worker()?;
        }
        if options.workers > 0 {
            stack
                .wait_partitions_settled(options.workers, Duration::from_secs(60))
                .await?;
        }
        if options.coordinator {
            stack.start_coordinator()?;
        }
        Ok(stack)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the coordinator process (`coordinator.log`).
    pub fn start_coordinator(&mut self) -> anyhow::Result<()> {
        let bin = target_bin_dir().join("nija-coordinator");
        let args = vec!["--config".into(), self.config_path.display().to_string()];
        self.coordinator = Some(Proc::spawn(
            &bin,
            "coordinator",
            args,
            self.options.env.clone(),
            self.dir.as_path().join("coordinator.log"),
        )?);
        Ok(())
    }

    pub fn coordinator(&mut self) -> anyhow::Result<&mut Proc> {
        self.coordinator
            .as_mut()
            .ok_or_else(|| anyhow!("the coordinator was not started"))
    }

    /// Starts one more worker (`worker-<n>`, log `worker-<n>.log`); returns its index.
    pub fn add_worker(&mut self) -> anyhow::Result<usize> {
        let index = self.workers.len();
        let id = format!("worker-{index}");
        let bin = target_bin_dir().join("nija-worker");
        let args = vec![
            "--config".into(),
            self.config_path.display().to_string(),
            "--worker-id".into(),
            id.clone(),
        ];
        let log = self.dir.as_path().join(format!("{id}.log"));
        let env = self.options.env.clone();
        self.workers.push(Proc::spawn(&bin, &id, args, env, log)?);
        Ok(index)
    }

    /// Waits until `workers` live workers heartbeat partition sets that are disjoint and cover
    /// every partition (the fair share has settled). Returns each worker's partitions.
    pub async fn wait_partitions_settled(
        &self,
        workers: usize,
        limit: Duration,
    ) -> anyhow::Result<BTreeMap<String, Vec<u16>>> {
        let mut beats = self
            .client
            .subscribe(format!("{}.*", nija_proto::names::HEARTBEAT_PREFIX))
            .await?;
        let deadline = tokio::time::Instant::now() + limit;
        let mut latest: BTreeMap<String, (tokio::time::Instant, Vec<u16>)> = BTreeMap::new();
        let window = self.options.heartbeat_every * 3;
        loop {
            let beat = tokio::time::timeout_at(deadline, beats.next())
                .await
                .map_err(|_| {
                    anyhow!(
                        "partitions did not settle over {workers} workers within {limit:?}: {latest:?}\n{}",
                        self.logs_tail()
                    )
                })?
                .ok_or_else(|| anyhow!("heartbeat subscription ended"))?;
            let hb: nija_proto::messages::Heartbeat = decode(&beat.payload)?;
            let now = tokio::time::Instant::now();
            latest.insert(
                hb.worker.to_string(),
                (now, hb.partitions.iter().map(|p| p.0).collect()),
            );
            latest.retain(|_, (at, _)| now.duration_since(*at) <= window);
            if latest.len() != workers {
                continue;
            }
            let mut all: Vec<u16> = latest.values().flat_map(|(_, ps)| ps.clone()).collect();
            all.sort_unstable();
            let expected: Vec<u16> = (0..self.options.partitions).collect();
            let fair = latest
                .values()
                .all(|(_, ps)| ps.len() <= usize::from(self.options.partitions).div_ceil(workers));
            if all == expected && fair {
                return Ok(latest.into_iter().map(|(w, (_, ps))| (w, ps)).collect());
            }
        }
    }

    /// Waits for a heartbeat of `worker` that satisfies `accept`.
    pub async fn wait_heartbeat(
        &self,
        worker: &str,
        limit: Duration,
        accept: impl Fn(&nija_proto::messages::Heartbeat) -> bool,
    ) -> anyhow::Result<nija_proto::messages::Heartbeat> {
        let mut beats = self
            .client
            .subscribe(format!("{}.{worker}", nija_proto::names::HEARTBEAT_PREFIX))
            .await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let beat = tokio::time::timeout_at(deadline, beats.next())
                .await
                .map_err(|_| {
                    anyhow!(
                        "no matching heartbeat of {worker} within {limit:?}\n{}",
                        self.logs_tail()
                    )
                })?
                .ok_or_else(|| anyhow!("heartbeat subscription ended"))?;
            let hb: nija_proto::messages::Heartbeat = decode(&beat.payload)?;
            if accept(&hb) {
                return Ok(hb);
            }
        }
    }

    /// Polls the simulator's order log until `done` holds.
    pub async fn wait_orders(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[LoggedOrder]) -> bool,
    ) -> anyhow::Result<Vec<LoggedOrder>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let log = self.order_log();
            if done(&log) {
                return Ok(log);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "waited {limit:?} for {what}; {} orders.\n{}",
                    log.len(),
                    self.logs_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every result in `NIJA_RESULTS`, in stream order.
    pub async fn results(&self) -> anyhow::Result<Vec<JobResult>> {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = match js.get_stream(RESULTS_STREAM).await {
            Ok(stream) => stream,
            Err(_) => return Ok(Vec::new()), // not created yet
        };
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                deliver_policy: DeliverPolicy::All,
                replay_policy: ReplayPolicy::Instant,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("results consumer: {e}"))?;
        let mut out = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(|e| anyhow!("{e}"))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow!("{e}"))?;
            let pending = message.info().map_err(|e| anyhow!("{e}"))?.pending;
            out.push(decode::<JobResult>(&message.payload)?);
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Polls the results until `done` holds (at most `limit`), returning them.
    pub async fn wait_results(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[JobResult]) -> bool,
    ) -> anyhow::Result<Vec<JobResult>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let results = self.results().await?;
            if done(&results) {
                return Ok(results);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "waited {limit:?} for {what}; {} results so far.\n{}",
                    results.len(),
                    self.logs_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The latest result of each account for one kind.
    pub fn latest_by_account(
        results: &[JobResult],
        kind: nija_proto::ids::JobKind,
    ) -> BTreeMap<String, &JobResult> {
        let mut out = BTreeMap::new();
        for r in results.iter().filter(|r| r.kind == kind) {
            out.insert(r.account.to_string(), r);
        }
        out
    }

    /// The simulator's order log (every order placed, with fills).
    pub fn order_log(&self) -> Vec<LoggedOrder> {
        self.sim.admin().order_log()
    }

    /// Sends a control request to the coordinator and decodes its reply.
    pub async fn control<Req: Message, Rep: DeserializeOwned>(
        &self,
        verb: &str,
        request: &Req,
        limit: Duration,
    ) -> anyhow::Result<Result<Rep, ControlError>> {
        let reply = tokio::time::timeout(
            limit,
            self.client
                .request(control_subject(verb), encode(request).into()),
        )
        .await
        .map_err(|_| anyhow!("no reply to {verb} within {limit:?}"))?
        .map_err(|e| anyhow!("control request {verb}: {e}"))?;
        Ok(match decode::<Reply<Rep>>(&reply.payload)? {
            Reply::Ok(rep) => Ok(rep),
            Reply::Error(e) => Err(e),
        })
    }

    /// The last lines of every process log, for failure messages.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        let procs = self.coordinator.iter().chain(self.workers.iter());
        for p in procs {
            let log = p.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!(
                "--- {} ({})\n{}\n",
                p.name,
                p.log_path().display(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Stops every process (SIGTERM, then SIGKILL), the simulator and the server.
    pub async fn shutdown(mut self) {
        for w in &mut self.workers {
            let _ = w.terminate(Duration::from_secs(10)).await;
        }
        if let Some(c) = &mut self.coordinator {
            let _ = c.terminate(Duration::from_secs(10)).await;
        }
        self.sim.shutdown().await;
    }
}

fn table<'a>(config: &'a mut Table, name: &str) -> &'a mut Table {
    let entry = config
        .entry(name.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    match entry {
        Value::Table(t) => t,
        _ => unreachable!("replaced by a table above"),
    }
}

fn apply_options(config: &mut Table, o: &StackOptions) {
    config.insert("mode".into(), Value::String(o.mode.into()));
    let schedule = table(config, "schedule");
    schedule.insert("enforce_every".into(), secs(o.enforce_every));
    schedule.insert(
        "exit_sweep_every".into(),
        o.exit_sweep_every.map_or(Value::String("off".into()), secs),
    );
    schedule.insert("job_deadline".into(), secs(o.job_deadline));
    let worker = table(config, "worker");
    worker.insert("heartbeat_every".into(), secs(o.heartbeat_every));
    worker.insert("lease_ttl".into(), secs(o.lease_ttl));
    worker.insert("connect_cooldown".into(), secs(o.connect_cooldown));
    worker.insert("partitions".into(), Value::Integer(i64::from(o.partitions)));
    let http = table(config, "http");
    http.insert("listen".into(), Value::String("127.0.0.1:0".into()));
    if let Some(Value::Array(accounts)) = config.get_mut("accounts") {
        for account in accounts.iter_mut() {
            let Value::Table(account) = account else {
                continue;
            };
            let id = account
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(overrides) = o.account_overrides.get(&id) {
                for (k, v) in overrides {
                    account.insert(k.clone(), v.clone());
                }
            }
        }
    }
    for (key, value) in &o.extra {
        match (value, config.get_mut(key)) {
            (Value::Table(extra), Some(Value::Table(existing))) => {
                for (k, v) in extra {
                    existing.insert(k.clone(), v.clone());
                }
            }
            _ => {
                config.insert(key.clone(), value.clone());
            }
        }
    }
}

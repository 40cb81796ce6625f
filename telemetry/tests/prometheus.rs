//! A real Prometheus scrapes the coordinator's and a worker's `/metrics`; every dashboard query
//! parses and returns data, every dashboard variable finds values, and every alert rule evaluates
//! without error.
//!
//! Needs the `prometheus` binary (Debian's `prometheus` package; `PROMETHEUS_BIN` overrides the
//! path). The registries are exercised once (see `common`) and served over real HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nija_telemetry::{Supervisor, SupervisorConfig, ready_always, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the dashboards' Grafana variables become in the queries sent here.
const SUBSTITUTIONS: [(&str, &str); 3] = [
    ("$__rate_interval", "5s"),
    ("$account", "platform"),
    ("$broker", ".*"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(coordinator: SocketAddr, worker: SocketAddr) -> Prometheus {
    let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_string());
    let dir = tempfile::tempdir().unwrap();
    let rules = repo().join("deploy/prometheus/nija-rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n\
         \x20 - job_name: nija-coordinator\n    static_configs:\n      - targets: ['{coordinator}']\n\
         \x20 - job_name: nija-worker\n    static_configs:\n      - targets: ['{worker}']\n",
        rules = rules.display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {bin:?} ({e}): install Debian's prometheus package (apt-get install -y prometheus) or set PROMETHEUS_BIN")
        });
    Prometheus {
        child,
        addr,
        _dir: dir,
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GET over HTTP/1.0 (no chunked encoding): status and body, or `None` when nothing listens yet.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// An instant query: the API's JSON answer.
async fn query(prometheus: SocketAddr, expr: &str) -> Value {
    let path = format!("/api/v1/query?query={}", percent_encode(expr));
    let (status, body) = http_get(prometheus, &path).await.unwrap();
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "query {expr:?} failed: {body}");
    json
}

fn result_len(answer: &Value) -> usize {
    answer["data"]["result"].as_array().map_or(0, Vec::len)
}

/// `(dashboard / panel title, expr)`.
type PanelQuery = (String, String);
/// `(dashboard, metric, label)` of a `label_values(metric, label)` variable.
type Variable = (String, String, String);

/// Every `expr` of every panel, and every variable.
fn dashboard_queries() -> (Vec<PanelQuery>, Vec<Variable>) {
    let mut exprs = Vec::new();
    let mut variables = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/grafana"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let mut expr = target["expr"].as_str().unwrap().to_string();
                for (var, value) in SUBSTITUTIONS {
                    expr = expr.replace(var, value);
                }
                let title = panel["title"].as_str().unwrap_or_default();
                exprs.push((format!("{name} / {title}"), expr));
            }
        }
        for var in dashboard["templating"]["list"].as_array().unwrap() {
            if var["type"] == "query" {
                let definition = var["definition"].as_str().unwrap();
                let inner = definition
                    .strip_prefix("label_values(")
                    .and_then(|s| s.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{name}: unsupported variable query {definition}"));
                let (metric, label) = inner.split_once(',').unwrap();
                variables.push((
                    name.clone(),
                    metric.trim().to_string(),
                    label.trim().to_string(),
                ));
            }
        }
    }
    (exprs, variables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_every_dashboard_query_returns_data() {
    let (coordinator, worker, worker_supervisor) = common::exercised_registries().await;
    let coordinator_supervisor =
        Supervisor::new(&coordinator, SupervisorConfig::default()).unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let coordinator_http = serve(listen, coordinator, coordinator_supervisor, ready_always())
        .await
        .unwrap();
    let worker_http = serve(listen, worker, worker_supervisor, ready_always())
        .await
        .unwrap();
    let prometheus = start_prometheus(coordinator_http.local_addr(), worker_http.local_addr());
    let api = prometheus.addr;

    // Bounded only so that a broken Prometheus fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(120), async {
        // Both targets up, with enough samples for rate() over 5 s.
        loop {
            if let Some((200, _)) = http_get(api, "/-/ready").await {
                let up = query(api, "min(up)").await;
                let samples = query(api, "min(count_over_time(up[1m]))").await;
                let value = |v: &Value| {
                    v["data"]["result"][0]["value"][1]
                        .as_str()
                        .map(str::to_owned)
                };
                if value(&up).as_deref() == Some("1")
                    && value(&samples).and_then(|s| s.parse::<u32>().ok()) >= Some(6)
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("Prometheus did not scrape both targets within 2 minutes");

    let (exprs, variables) = dashboard_queries();
    assert!(exprs.len() > 50, "only {} dashboard queries", exprs.len());
    let mut empty = Vec::new();
    for (panel, expr) in &exprs {
        if result_len(&query(api, expr).await) == 0 {
            empty.push(format!("{panel}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );

    for (dashboard, metric, label) in &variables {
        let answer = query(api, &format!("count by ({label}) ({metric})")).await;
        assert!(
            result_len(&answer) > 0,
            "{dashboard}: variable {label} has no values"
        );
    }
    let accounts = query(api, "count by (account) (nija_account_positions_active)").await;
    assert_eq!(
        accounts["data"]["result"][0]["metric"]["account"],
        "platform"
    );

    // Every rule evaluated, none with an error.
    let rules_file =
        std::fs::read_to_string(repo().join("deploy/prometheus/nija-rules.yml")).unwrap();
    let alerts = rules_file
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (_, body) = http_get(api, "/api/v1/rules").await.unwrap();
            let rules: Value = serde_json::from_str(&body).unwrap();
            let all: Vec<&Value> = rules["data"]["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap())
                .collect();
            assert_eq!(all.len(), alerts, "rules loaded: {body}");
            let errors: Vec<_> = all.iter().filter(|r| r["health"] == "err").collect();
            assert!(errors.is_empty(), "rules failing: {errors:?}");
            if all.iter().all(|r| r["health"] == "ok") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("rules not evaluated within a minute");

    drop(prometheus);
    coordinator_http.shutdown().await;
    worker_http.shutdown().await;
}

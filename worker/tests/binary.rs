//! The `nija-worker` binary: `--help`, a job run by the real process, and SIGTERM draining it to
//! exit 0 with its leases released.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use nija_proto::ids::JobKind;
use nija_proto::messages::ResultStatus;
use nija_proto::{Partition, WorkerId};
use nija_runtime::lease::Leases;
use serde_json::json;
use support::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_nija-worker");

#[test]
fn help_names_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--worker-id", "--http-listen", "--log-format"] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}

#[test]
fn a_bad_config_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/nija.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runs_jobs_and_drains_on_sigterm() {
    let mut h = Harness::start(json!({"accounts": [
        {"id": "p1", "type": "user", "broker": "alpaca", "cash": "100",
         "holdings": [{"asset": "AAPL", "quantity": "1"}]}
    ]}))
    .await;
    let config = h.config.file.clone().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .args(["--worker-id", "bin1", "--http-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();

    let result = h.run(&h.job(JobKind::Enforce, "p1")).await;
    assert_eq!(result.worker.as_str(), "bin1");
    assert_eq!(result.status, ResultStatus::Compliant, "{result:#?}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.unwrap_or_else(|| {
        child.kill().unwrap();
        panic!("the worker did not exit after SIGTERM")
    });
    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("worker stopped"), "{logs}");

    let leases = Leases::new(
        h.topology.leases.clone(),
        WorkerId::new("observer").unwrap(),
        Duration::from_secs(1),
    );
    let released = |value: Option<nija_runtime::lease::LeaseValue>| {
        value.is_none_or(|v| v.released && v.is_expired(chrono::Utc::now()))
    };
    for n in 0..h.config.worker.partitions {
        assert!(released(
            leases.partition_holder(Partition(n)).await.unwrap()
        ));
    }
    let account = leases
        .account_holder(&Harness::account("p1"))
        .await
        .unwrap();
    assert!(account.is_some_and(|v| v.released));
}

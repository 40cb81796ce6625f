//! The `nija-sim` binary as a harness sees it: a ready line with ports, a written config, a clean
//! stop on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_ready_line_and_writes_config() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run/nija.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nija-sim"))
        .args([
            "--accounts",
            "5",
            "--seed",
            "2",
            "--freeze-prices",
            "--nats-url",
            "nats://127.0.0.1:4333",
        ])
        .arg("--write-config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["accounts"], 5);
    let admin = ready["admin"].as_str().unwrap();
    let health: serde_json::Value = reqwest::get(format!("{admin}/admin/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ok"], true);
    let accounts: serde_json::Value = reqwest::get(format!("{admin}/admin/accounts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accounts[0]["id"], "platform");

    let text = std::fs::read_to_string(&config).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        parsed["nats"]["url"].as_str(),
        Some("nats://127.0.0.1:4333")
    );
    let kraken_port = ready["ports"]["kraken"].as_u64().unwrap();
    assert_eq!(
        parsed["accounts"][0]["base_url"].as_str().unwrap(),
        format!("http://127.0.0.1:{kraken_port}")
    );
    assert!(dir.path().join("run/creds/user-0004.json").exists());
    assert_eq!(
        ready["ca_cert"].as_str(),
        parsed["tls"]["extra_ca"].as_str()
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    std::mem::forget(guard);
}

/// Kills the simulator if an assertion fails before the orderly stop.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.0.to_string())
            .status();
    }
}

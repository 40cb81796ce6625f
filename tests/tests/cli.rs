//! The `nija` CLI against a running stack: status as JSON, pause and resume, and the exit codes
//! of DESIGN §5.4 (2 for a usage or configuration problem, 3 when NATS or the coordinator is
//! unreachable).

use std::process::Command;
use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions, target_bin_dir};

fn nija(args: &[&str]) -> std::process::Output {
    Command::new(target_bin_dir().join("nija"))
        .args(args)
        .env_remove("NATS_URL")
        .env_remove("NIJA_CONFIG")
        .output()
        .expect("the nija binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pause_and_resume_through_the_cli() -> anyhow::Result<()> {
    let (scenario, _) = over_cap_with_dust(3);
    let stack = Stack::start(StackOptions::new(scenario)).await?;
    stack
        .wait_results(Duration::from_secs(90), "the first round", |rs| {
            rs.len() >= 3
        })
        .await?;
    let config = stack.config_path.display().to_string();

    let out = nija(&["status", "--config", &config, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["totals"]["accounts"], 3);
    assert_eq!(status["accounts"].as_array().map(Vec::len), Some(3));

    let out = nija(&["pause", "--config", &config, "--operator", "ops", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nija(&["status", "--config", &config, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["paused"]["by"], "ops");
    let out = nija(&["resume", "--config", &config]);
    assert!(out.status.success());
    let out = nija(&["status", "--config", &config, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(status["paused"].is_null());

    // An unknown account is a usage error (2).
    let out = nija(&["pause", "--config", &config, "--account", "nobody"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stack.shutdown().await;
    Ok(())
}

#[test]
fn exit_codes_name_the_problem() -> anyhow::Result<()> {
    nija_e2e::stack::ensure_binaries()?;
    let dir = tempfile::tempdir()?;
    // No configuration at all: 2.
    let out = nija(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    // A configuration whose NATS does not answer: 3, and the message says what was tried.
    let port = nija_e2e::free_port();
    let config = dir.path().join("nija.toml");
    std::fs::write(
        &config,
        format!("[nats]\nurl = \"nats://127.0.0.1:{port}\"\n"),
    )?;
    let out = nija(&["status", "--config", &config.display().to_string()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&port.to_string()) && stderr.contains("NATS_URL"),
        "{stderr}"
    );
    Ok(())
}

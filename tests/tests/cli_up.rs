//! `nija up`, the README's first command, as an operator runs it: the whole local stack starts
//! (its own nats-server, the simulator, the coordinator, two workers), the commentary shows
//! accounts brought under their caps and dust blacklisted, and Ctrl-C (SIGINT) stops everything:
//! the command exits 0 and nothing it started still listens.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nija_e2e::stack::ensure_binaries;
use nija_e2e::{free_port, target_bin_dir};

/// The port of a `http://127.0.0.1:PORT` or `nats://127.0.0.1:PORT` address in `line`.
fn port_after(line: &str, scheme: &str) -> Option<u16> {
    let prefix = format!("{scheme}://127.0.0.1:");
    let rest = &line[line.find(&prefix)? + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn nija_up_runs_the_stack_shows_the_work_and_stops_on_ctrl_c() -> anyhow::Result<()> {
    ensure_binaries()?;
    let metrics_port = free_port();
    let mut child = Command::new(target_bin_dir().join("nija"))
        .args(["up", "--accounts", "4", "--metrics-port"])
        .arg(metrics_port.to_string())
        .env_remove("NATS_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let shown = |seen: &[String], word: &str| seen.iter().any(|l| l.contains(word));
    while !(shown(&seen, "OVER CAP") && shown(&seen, "BLACKLISTED")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output()?;
                anyhow::bail!(
                    "no OVER CAP and BLACKLISTED lines from nija up within 3 minutes:\n{}\nstderr:\n{}",
                    seen.join("\n"),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
    let text = seen.join("\n");
    assert!(
        text.contains(&format!("http://127.0.0.1:{metrics_port}/metrics")),
        "{text}"
    );
    let nats_port = seen
        .iter()
        .find(|l| l.starts_with("nats"))
        .and_then(|l| port_after(l, "nats"))
        .ok_or_else(|| anyhow::anyhow!("no nats line:\n{text}"))?;
    assert!(TcpStream::connect(("127.0.0.1", metrics_port)).is_ok());

    // Ctrl-C.
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("nija up did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The reader thread may still be forwarding the last lines: read until it sees the end of
    // the pipe (the sender drops), not just what has arrived so far.
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        rest.push(line);
    }
    assert!(
        exit.success(),
        "nija up exited with {exit}:\n{text}\n{rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
    for port in [nats_port, metrics_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still listens after nija up stopped"
        );
    }
    Ok(())
}

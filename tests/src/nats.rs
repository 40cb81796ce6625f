//! A real nats-server for tests, killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::{free_port, workspace_root};

#[derive(Debug, Error)]
pub enum NatsError {
    #[error(
        "no nats-server binary: set NATS_SERVER_BIN, run scripts/setup (installs 2.15 into .venv), or set NATS_URL"
    )]
    NoBinary,
    #[error("could not start {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("nats-server on port {port} did not accept connections within {waited:?}")]
    NotReady { port: u16, waited: Duration },
    #[error("temporary directory: {0}")]
    TempDir(std::io::Error),
}

/// A running nats-server with JetStream on file storage.
pub struct NatsServer {
    child: Option<Child>,
    bin: PathBuf,
    pub port: u16,
    pub monitor_port: u16,
    store: tempfile::TempDir,
}

/// Finds the nats-server binary (see the crate docs for the order).
pub fn nats_server_bin() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return Some(PathBuf::from(bin));
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    if venv.exists() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists())
}

impl NatsServer {
    /// Starts a fresh server on free ports.
    pub fn start() -> Result<NatsServer, NatsError> {
        let bin = nats_server_bin().ok_or(NatsError::NoBinary)?;
        let store = tempfile::tempdir().map_err(NatsError::TempDir)?;
        let mut server = NatsServer {
            child: None,
            bin,
            port: free_port(),
            monitor_port: free_port(),
            store,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The URL of `NATS_URL` if set, else a freshly started server (kept alive by the returned
    /// guard).
    pub fn url_or_start() -> Result<(String, Option<NatsServer>), NatsError> {
        if let Ok(url) = std::env::var("NATS_URL") {
            return Ok((url, None));
        }
        let server = NatsServer::start()?;
        Ok((server.url(), Some(server)))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) -> Result<(), NatsError> {
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-js")
            .arg("-sd")
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| NatsError::Spawn {
                bin: self.bin.display().to_string(),
                source,
            })?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), NatsError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(NatsError::NotReady {
            port: self.port,
            waited: limit,
        })
    }

    /// Kills the server (SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the server on the same ports with the same JetStream store.
    pub fn restart(&mut self) -> Result<(), NatsError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

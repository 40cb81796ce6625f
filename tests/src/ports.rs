//! Free loopback ports for servers started by tests.

use std::net::TcpListener;

/// A port that was free a moment ago on 127.0.0.1. The OS hands out ephemeral ports in sequence,
/// so a race with another test is unlikely; servers started on it fail loudly if it is taken.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS has no free loopback port")
}

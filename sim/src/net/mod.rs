//! Listening: plain HTTP and HTTPS on one port, certificate generation.

pub mod listener;
pub mod tls;

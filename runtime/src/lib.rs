//! NATS plumbing shared by the coordinator, the workers and the CLI.
//!
//! - `connect`: connecting (one or several URLs, credentials, TLS) with clear errors.
//! - `topology`: the streams, consumers and KV buckets of DESIGN §5.1, created or updated
//!   idempotently by the coordinator; workers wait for them.
//! - `stores`: typed access to the blacklist, tracker and control buckets.
//! - `lease`: partition and account leases with expiry, renewal and the order fence.

pub mod connect;
pub mod lease;
pub mod stores;
pub mod topology;

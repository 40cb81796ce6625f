//! The runtime sections of the file (DESIGN §5.2): `[nats]`, `[schedule]`, `[worker]`,
//! `[coordinator]`, `[http]`, `[tls]`, `[metrics]`, with their defaults.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nija_proto::AccountId;

use crate::error::ConfigError;
use crate::read::{Problems, Section};

pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// `[nats]`: where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// One or several server URLs (`NATS_URL` replaces the file's list).
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + NKey seed).
    pub creds: Option<PathBuf>,
    /// An NKey seed file.
    pub nkey: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for NatsSettings {
    fn default() -> NatsSettings {
        NatsSettings {
            urls: vec![DEFAULT_NATS_URL.to_string()],
            creds: None,
            nkey: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[schedule]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub enforce_every: Duration,
    /// `None` when `exit_sweep_every = "off"`.
    pub exit_sweep_every: Option<Duration>,
    /// A job must publish its result within this time.
    pub job_deadline: Duration,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            enforce_every: Duration::from_secs(60),
            exit_sweep_every: Some(Duration::from_secs(10)),
            job_deadline: Duration::from_secs(60),
        }
    }
}

/// `[worker]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Accounts in flight at once on one worker.
    pub concurrency: u32,
    pub heartbeat_every: Duration,
    pub lease_ttl: Duration,
    /// Wait after authenticating before private calls, paid once per broker session.
    pub connect_cooldown: Duration,
    /// Number of job partitions; every component must agree on it.
    pub partitions: u16,
    /// A price older than this is stale (treated as unpriced for exits).
    pub max_price_age: Duration,
    /// How long a batch of public prices is shared by the accounts of a worker.
    pub price_cache_ttl: Duration,
}

impl Default for WorkerSettings {
    fn default() -> WorkerSettings {
        WorkerSettings {
            concurrency: 256,
            heartbeat_every: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(20),
            connect_cooldown: Duration::from_secs(2),
            partitions: 64,
            max_price_age: Duration::from_secs(30),
            price_cache_ttl: Duration::from_secs(1),
        }
    }
}

/// `[coordinator]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorSettings {
    /// `max_age` of the `NIJA_RESULTS` stream.
    pub results_max_age: Duration,
    /// JetStream duplicate window of `NIJA_JOBS` (deduplication by job id).
    pub jobs_duplicate_window: Duration,
    /// `max_age` of `NIJA_JOBS`: a job older than a few deadlines is useless.
    pub jobs_max_age: Duration,
    /// Replicas of every stream and KV bucket: 3 on a three-node JetStream cluster, so losing a
    /// node loses no job, result, blacklist, tracker entry or lease; 1 on a single server.
    pub stream_replicas: u8,
}

impl Default for CoordinatorSettings {
    fn default() -> CoordinatorSettings {
        CoordinatorSettings {
            results_max_age: Duration::from_secs(30 * 24 * 3600),
            jobs_duplicate_window: Duration::from_secs(10 * 60),
            jobs_max_age: Duration::from_secs(3600),
            stream_replicas: 1,
        }
    }
}

/// Which process reads the configuration (some defaults differ per role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Worker,
}

/// `[http]`: the metrics and health listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// `None`: the role's default (see [`HttpSettings::listen_for`]).
    pub listen: Option<SocketAddr>,
}

impl HttpSettings {
    /// The address to listen on: `listen` if set, else `127.0.0.1:9464` for the coordinator and
    /// `:9465` (all interfaces, for the Prometheus scraper of a pod) for a worker.
    pub fn listen_for(&self, role: Role) -> SocketAddr {
        self.listen.unwrap_or(match role {
            Role::Coordinator => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464),
            Role::Worker => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9465),
        })
    }
}

/// `[tls]`: extra roots trusted for broker calls (a simulator's or a proxy's CA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub extra_ca: Vec<PathBuf>,
}

/// `[metrics]`: per-account series only for an allow-list (cardinality stays bounded with
/// thousands of accounts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    pub per_account: BTreeSet<AccountId>,
}

pub(crate) fn read_nats(sec: &mut Section<'_>, base: &Path, p: &mut Problems) -> NatsSettings {
    let d = NatsSettings::default();
    let urls = sec
        .string_or_list("url", p)
        .and_then(|urls| check_nats_urls(&sec.key("url"), urls, p));
    let nats = NatsSettings {
        urls: urls.unwrap_or(d.urls),
        creds: sec.path_in("creds", base, p),
        nkey: sec.path_in("nkey", base, p),
        tls_ca: sec.path_in("tls_ca", base, p),
        tls_cert: sec.path_in("tls_cert", base, p),
        tls_key: sec.path_in("tls_key", base, p),
    };
    if nats.creds.is_some() && nats.nkey.is_some() {
        p.invalid(
            sec.key("nkey"),
            "set",
            "give either creds or nkey, not both",
        );
    }
    if nats.tls_cert.is_some() != nats.tls_key.is_some() {
        let missing = if nats.tls_cert.is_some() {
            "tls_key"
        } else {
            "tls_cert"
        };
        p.error(ConfigError::Missing {
            key: sec.key(missing),
            hint: "a client certificate needs both tls_cert and tls_key",
        });
    }
    nats
}

/// Checks NATS server URLs (`nats://`, `tls://`, `ws://`, `wss://` or bare `host:port`).
pub(crate) fn check_nats_urls(
    key: &str,
    urls: Vec<String>,
    p: &mut Problems,
) -> Option<Vec<String>> {
    if urls.is_empty() {
        p.invalid(key.to_string(), "[]", "list at least one server URL");
        return None;
    }
    let mut ok = true;
    for (i, url) in urls.iter().enumerate() {
        let item_key = if urls.len() == 1 {
            key.to_string()
        } else {
            format!("{key}[{i}]")
        };
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
        let reason = if !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
            Some("the scheme must be nats://, tls://, ws:// or wss://")
        } else if rest.is_empty() || rest.contains(char::is_whitespace) {
            Some("expected e.g. nats://127.0.0.1:4222")
        } else {
            None
        };
        if let Some(reason) = reason {
            p.invalid(item_key, url, reason);
            ok = false;
        }
    }
    ok.then(|| urls.into_iter().map(|u| u.trim().to_string()).collect())
}

pub(crate) fn read_schedule(sec: &mut Section<'_>, p: &mut Problems) -> Schedule {
    let d = Schedule::default();
    Schedule {
        enforce_every: sec
            .duration("enforce_every", false, p)
            .unwrap_or(d.enforce_every),
        exit_sweep_every: sec
            .duration_or_off("exit_sweep_every", p)
            .unwrap_or(d.exit_sweep_every),
        job_deadline: sec
            .duration("job_deadline", false, p)
            .unwrap_or(d.job_deadline),
    }
}

pub(crate) fn read_worker(sec: &mut Section<'_>, p: &mut Problems) -> WorkerSettings {
    let d = WorkerSettings::default();
    let w = WorkerSettings {
        concurrency: sec
            .uint("concurrency", 1, 1_000_000, p)
            .map_or(d.concurrency, |n| n as u32),
        heartbeat_every: sec
            .duration("heartbeat_every", false, p)
            .unwrap_or(d.heartbeat_every),
        lease_ttl: sec.duration("lease_ttl", false, p).unwrap_or(d.lease_ttl),
        connect_cooldown: sec
            .duration("connect_cooldown", true, p)
            .unwrap_or(d.connect_cooldown),
        partitions: sec
            .uint("partitions", 1, 4096, p)
            .map_or(d.partitions, |n| n as u16),
        max_price_age: sec
            .duration("max_price_age", false, p)
            .unwrap_or(d.max_price_age),
        price_cache_ttl: sec
            .duration("price_cache_ttl", true, p)
            .unwrap_or(d.price_cache_ttl),
    };
    // A lease renewed every ttl/3 by a worker that beats every heartbeat_every: a ttl shorter
    // than a heartbeat would expire between beats of a healthy worker.
    if w.lease_ttl < w.heartbeat_every {
        p.invalid(
            sec.key("lease_ttl"),
            humantime::format_duration(w.lease_ttl),
            format!(
                "must be at least heartbeat_every ({})",
                humantime::format_duration(w.heartbeat_every)
            ),
        );
    }
    w
}

pub(crate) fn read_coordinator(sec: &mut Section<'_>, p: &mut Problems) -> CoordinatorSettings {
    let d = CoordinatorSettings::default();
    CoordinatorSettings {
        results_max_age: sec
            .duration("results_max_age", false, p)
            .unwrap_or(d.results_max_age),
        jobs_duplicate_window: sec
            .duration("jobs_duplicate_window", false, p)
            .unwrap_or(d.jobs_duplicate_window),
        jobs_max_age: sec
            .duration("jobs_max_age", false, p)
            .unwrap_or(d.jobs_max_age),
        // JetStream allows at most 5 replicas.
        stream_replicas: sec
            .uint("stream_replicas", 1, 5, p)
            .map_or(d.stream_replicas, |n| n as u8),
    }
}

pub(crate) fn read_http(sec: &mut Section<'_>, p: &mut Problems) -> HttpSettings {
    let listen = sec
        .string("listen", p)
        .and_then(|raw| match parse_listen(&raw) {
            Some(addr) => Some(addr),
            None => {
                p.invalid(
                    sec.key("listen"),
                    raw,
                    "expected host:port or :port, e.g. \"127.0.0.1:9464\" or \":9465\"",
                );
                None
            }
        });
    HttpSettings { listen }
}

/// `host:port`, `[v6]:port`, `localhost:port` or `:port` (all interfaces).
fn parse_listen(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    if let Some(port) = raw.strip_prefix(':') {
        return Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port.parse().ok()?,
        ));
    }
    if let Some(port) = raw.strip_prefix("localhost:") {
        return Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.parse().ok()?,
        ));
    }
    raw.parse().ok()
}

pub(crate) fn read_tls(sec: &mut Section<'_>, base: &Path, p: &mut Problems) -> TlsSettings {
    let key = sec.key("extra_ca");
    let extra_ca = sec
        .string_or_list("extra_ca", p)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, path)| {
            if path.trim().is_empty() {
                p.invalid(format!("{key}[{i}]"), path, "empty path");
                None
            } else {
                Some(base.join(path))
            }
        })
        .collect();
    TlsSettings { extra_ca }
}

pub(crate) fn read_metrics(sec: &mut Section<'_>, p: &mut Problems) -> MetricsSettings {
    let key = sec.key("per_account");
    let per_account = sec
        .string_list("per_account", p)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, id)| match AccountId::new(&id) {
            Ok(id) => Some(id),
            Err(e) => {
                p.invalid(format!("{key}[{i}]"), id, e.to_string());
                None
            }
        })
        .collect();
    MetricsSettings { per_account }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_the_usual_forms() {
        assert_eq!(parse_listen(":9465"), Some("0.0.0.0:9465".parse().unwrap()));
        assert_eq!(
            parse_listen("localhost:1"),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]:80"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(parse_listen("9465"), None);
        assert_eq!(parse_listen("example.com:80"), None);
    }
}

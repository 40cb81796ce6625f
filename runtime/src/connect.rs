//! Connecting to NATS: one or several server URLs, credentials, TLS, a client name, and an error
//! that says what was tried and what to check when the servers cannot be reached.
//!
//! Once connected the client reconnects forever on its own; every connection event is logged so
//! an operator sees a disconnect and the recovery.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use thiserror::Error;

/// Where and how to connect (the `[nats]` section of the configuration, after overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// Server URLs, tried in turn (a list, never a comma-joined string).
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + nkey seed).
    pub creds: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`).
    pub nkey: Option<PathBuf>,
    /// CA certificate (PEM) to trust for the servers.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Time allowed for one connection attempt.
    pub connect_timeout: Duration,
    /// Time allowed for a request (JetStream API calls, control requests).
    pub request_timeout: Duration,
}

impl NatsSettings {
    /// Settings for plain connections to `urls` with the default timeouts.
    pub fn new<I, S>(urls: I) -> NatsSettings
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        NatsSettings {
            urls: urls.into_iter().map(Into::into).collect(),
            creds: None,
            nkey: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("no NATS server URL configured: set [nats] url or NATS_URL")]
    NoUrl,
    #[error("cannot read NATS credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read NATS nkey seed file {path}: {source}")]
    Nkey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "[nats] tls_cert and tls_key must be given together (got only {given}): set both or neither"
    )]
    TlsPair { given: &'static str },
    #[error("NATS unreachable at {tried}: check [nats] url / NATS_URL ({source})")]
    Unreachable {
        tried: String,
        source: async_nats::ConnectError,
    },
}

/// Connects as `client_name` (shown by the server's monitoring, e.g. `nija-worker-host-123`).
///
/// Fails at once if no server answers; after a successful connection the client reconnects forever,
/// logging each disconnect and reconnect.
pub async fn connect(settings: &NatsSettings, client_name: &str) -> Result<Client, ConnectError> {
    let urls: Vec<String> = settings
        .urls
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(ConnectError::NoUrl);
    }
    let options = options(settings, client_name).await?;
    options
        .connect(urls.as_slice())
        .await
        .map_err(|source| ConnectError::Unreachable {
            tried: urls.join(", "),
            source,
        })
}

/// Like [`connect`], but keeps trying (logging each failure) until a server answers or `give_up`
/// has passed. For processes that may start before their NATS server (a local stack, a pod).
pub async fn connect_patiently(
    settings: &NatsSettings,
    client_name: &str,
    give_up: Duration,
) -> Result<Client, ConnectError> {
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match connect(settings, client_name).await {
            Ok(client) => return Ok(client),
            Err(err @ ConnectError::Unreachable { .. }) if start.elapsed() < give_up => {
                tracing::warn!(error = %err, retry_in = ?pause, "NATS not reachable yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(err) => return Err(err),
        }
    }
}

async fn options(
    settings: &NatsSettings,
    client_name: &str,
) -> Result<ConnectOptions, ConnectError> {
    let mut options = ConnectOptions::new()
        .name(client_name)
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(settings.request_timeout))
        .max_reconnects(None)
        .event_callback(|event| async move { log_event(&event) });
    if let Some(path) = &settings.creds {
        options =
            options
                .credentials_file(path)
                .await
                .map_err(|source| ConnectError::Credentials {
                    path: path.clone(),
                    source,
                })?;
    }
    if let Some(path) = &settings.nkey {
        options = options.nkey(read_seed(path)?);
    }
    if let Some(ca) = &settings.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        (Some(_), None) => return Err(ConnectError::TlsPair { given: "tls_cert" }),
        (None, Some(_)) => return Err(ConnectError::TlsPair { given: "tls_key" }),
        (None, None) => {}
    }
    Ok(options)
}

fn read_seed(path: &Path) -> Result<String, ConnectError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| ConnectError::Nkey {
            path: path.to_path_buf(),
            source,
        })
}

fn log_event(event: &Event) {
    match event {
        Event::Connected => tracing::info!("NATS connected"),
        Event::Disconnected => tracing::warn!("NATS disconnected: reconnecting"),
        Event::LameDuckMode => tracing::warn!("NATS server entering lame duck mode"),
        Event::SlowConsumer(sid) => tracing::warn!(sid, "NATS slow consumer: messages dropped"),
        other => tracing::warn!(event = %other, "NATS connection event"),
    }
}

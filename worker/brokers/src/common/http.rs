//! The HTTPS client every adapter uses: rustls with the ring provider, extra CAs (a simulator's
//! or a proxy's) on top of the platform's roots, a deadline on every call, and a response type that keeps what the
//! classifiers need (status, body, Retry-After, request id).
//!
//! Sessions share one `reqwest` client (one connection pool, CA files parsed once) per broker,
//! deadlines and CA set: thousands of accounts on one venue reuse its connections. What is
//! per account — credentials, nonce, rate limiter — lives in the adapters, never in the client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use crate::broker::BrokerKind;
use crate::error::BrokerError;

/// Deadlines of one broker session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// Whole request, body included.
    pub request: Duration,
    /// TCP + TLS connect.
    pub connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request: Duration::from_secs(10),
            connect: Duration::from_secs(5),
        }
    }
}

/// A response as the classifiers see it.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
    /// From `Retry-After` (seconds) or, failing that, `X-RateLimit-Reset` (unix seconds).
    pub retry_after: Option<Duration>,
    /// The broker's request id, for logs.
    pub request_id: Option<String>,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body shortened for an error message.
    pub fn snippet(&self) -> String {
        snippet(&self.body)
    }
}

/// Shortens broker text for an error message (bodies can be large HTML error pages).
pub fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The connection could not be made: the request never reached the broker.
    NotSent(String),
    /// The request may have reached the broker but no (complete) response came back: timeout,
    /// connection reset, truncated body. For an order this means "outcome unknown".
    Lost(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::NotSent(m) | SendError::Lost(m) => m,
        }
    }

    /// As an error of a call that is safe to repeat.
    pub fn into_transient(self, broker: BrokerKind) -> BrokerError {
        BrokerError::Transient {
            broker: broker.to_string(),
            message: self.message().to_string(),
        }
    }
}

/// A configured client for one broker session.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    broker: BrokerKind,
}

pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// What makes two sessions' clients interchangeable: the broker, the deadlines, and each extra CA
/// file with its modification time (a rotated CA file gets a new client).
type ClientKey = (BrokerKind, Timeouts, Vec<(PathBuf, Option<SystemTime>)>);

static CLIENTS: Mutex<Option<HashMap<ClientKey, reqwest::Client>>> = Mutex::new(None);

impl HttpClient {
    /// The shared client for this broker, deadlines and CA set (built on first use).
    pub fn new(
        broker: BrokerKind,
        timeouts: &Timeouts,
        extra_ca: &[PathBuf],
    ) -> Result<HttpClient, BrokerError> {
        let key: ClientKey = (
            broker,
            timeouts.clone(),
            extra_ca
                .iter()
                .map(|p| {
                    let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
                    (p.clone(), modified)
                })
                .collect(),
        );
        let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
        let clients = clients.get_or_insert_with(HashMap::new);
        if let Some(inner) = clients.get(&key) {
            return Ok(HttpClient {
                inner: inner.clone(),
                broker,
            });
        }
        let client = HttpClient::build(broker, timeouts, extra_ca)?;
        clients.insert(key, client.inner.clone());
        Ok(client)
    }

    fn build(
        broker: BrokerKind,
        timeouts: &Timeouts,
        extra_ca: &[PathBuf],
    ) -> Result<HttpClient, BrokerError> {
        install_crypto_provider();
        let config_error = |message: String| BrokerError::Config {
            broker: broker.to_string(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .user_agent(concat!("nija/", env!("CARGO_PKG_VERSION")))
            .timeout(timeouts.request)
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(30))
            // A redirect is an answer to report, never to follow: a signed request re-sent
            // elsewhere could leak credentials or, for an order, be placed twice.
            .redirect(reqwest::redirect::Policy::none());
        for path in extra_ca {
            builder = builder.tls_certs_merge(read_pem_certificates(path).map_err(config_error)?);
        }
        let inner = builder
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient { inner, broker })
    }

    pub fn broker(&self) -> BrokerKind {
        self.broker
    }

    pub fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends and reads the whole body within the client's deadline.
    pub async fn send(&self, request: reqwest::Request) -> Result<RawResponse, SendError> {
        let method = request.method().clone();
        let path = request.url().path().to_string();
        let describe = |e: reqwest::Error| describe_error(&method, &path, e);
        let response = self.inner.execute(request).await.map_err(|e| {
            if e.is_connect() {
                SendError::NotSent(describe(e))
            } else {
                SendError::Lost(describe(e))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .text()
            .await
            .map_err(|e| SendError::Lost(describe(e)))?;
        tracing::debug!(
            broker = %self.broker,
            %method,
            path,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            "broker response"
        );
        Ok(RawResponse {
            status,
            body,
            retry_after,
            request_id,
        })
    }
}

/// Every certificate of a PEM file (one certificate or a bundle); the error says which file and
/// why, ready for an operator.
pub(crate) fn read_pem_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("CA file {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("CA file {} holds no certificate", path.display()));
    }
    Ok(certs)
}

pub(crate) fn describe_error(
    method: &reqwest::Method,
    path: &str,
    error: reqwest::Error,
) -> String {
    use std::error::Error as _;
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "failed"
    };
    let mut causes = String::new();
    let mut source = error.source();
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    format!("{method} {path} {kind}: {}{causes}", error.without_url())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// Parses a base URL from configuration, refusing anything but http(s).
pub fn parse_base_url(broker: BrokerKind, text: &str) -> Result<reqwest::Url, BrokerError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| BrokerError::Config {
        broker: broker.to_string(),
        message: format!("base URL {text:?} is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(BrokerError::Config {
            broker: broker.to_string(),
            message: format!("base URL {text:?} must be http(s)://host[:port][/prefix]"),
        });
    }
    Ok(url)
}

/// `base` (which may carry a path prefix) joined with an absolute API path.
pub fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers every request with `302 Found` to `/elsewhere`, counting requests.
    async fn redirecting_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        let reply = "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n";
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn a_redirect_is_returned_not_followed() {
        let (addr, seen) = redirecting_server().await;
        let client = HttpClient::new(BrokerKind::Alpaca, &Timeouts::default(), &[]).unwrap();
        let url = reqwest::Url::parse(&format!("http://{addr}/v2/orders")).unwrap();
        let request = client
            .request(reqwest::Method::POST, url)
            .body("{}")
            .build()
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status, 302);
        assert!(!response.is_success());
        assert_eq!(seen.load(Ordering::SeqCst), 1, "sent once, not re-sent");
    }

    #[test]
    fn join_keeps_a_path_prefix() {
        let base = parse_base_url(BrokerKind::Kraken, "http://127.0.0.1:18002/sim/").unwrap();
        assert_eq!(
            join(&base, "/0/private/Balance").as_str(),
            "http://127.0.0.1:18002/sim/0/private/Balance"
        );
        let base = parse_base_url(BrokerKind::Kraken, "https://api.kraken.com").unwrap();
        assert_eq!(
            join(&base, "/0/public/Time").as_str(),
            "https://api.kraken.com/0/public/Time"
        );
    }

    #[test]
    fn base_urls_must_be_http() {
        assert!(parse_base_url(BrokerKind::Alpaca, "ftp://x").is_err());
        assert!(parse_base_url(BrokerKind::Alpaca, "not a url").is_err());
    }

    #[test]
    fn retry_after_reads_seconds_then_reset_time() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert("x-ratelimit-reset", (now + 2).to_string().parse().unwrap());
        let got = retry_after(&h).unwrap();
        assert!(got <= Duration::from_secs(2) && got >= Duration::from_secs(1));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn snippets_are_bounded() {
        let long = "é".repeat(500);
        assert!(snippet(&long).len() < 210);
        assert_eq!(snippet(" Unauthorized\n"), "Unauthorized");
    }

    #[test]
    fn an_unreadable_extra_ca_is_a_config_error() {
        let err = HttpClient::new(
            BrokerKind::Coinbase,
            &Timeouts::default(),
            &[PathBuf::from("/nonexistent/ca.pem")],
        )
        .unwrap_err();
        assert_eq!(err.class(), crate::error::ErrorClass::Config);
    }
}

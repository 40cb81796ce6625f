//! Credentials from a Kubernetes Secret read through the API (DESIGN R8, `docs/deploy.md` §4):
//! a worker reads an account's Secret only when it takes the account's lease, with a Role that
//! allows `get` on exactly the account Secrets, so nothing is mounted and no other account's
//! credentials ever reach the pod.
//!
//! In-cluster access the standard way: the API server from `KUBERNETES_SERVICE_HOST` /
//! `KUBERNETES_SERVICE_PORT`, the pod's service-account token, CA and namespace from
//! `/var/run/secrets/kubernetes.io/serviceaccount/`. The token is re-read at every call (the
//! kubelet rotates projected tokens); only that CA is trusted. Both places are settings so tests
//! can point elsewhere: no API server runs on the development machines, so the tests emulate its
//! Secrets endpoint (shape, bearer check, `Status` errors) over real HTTPS.
//!
//! Errors name the Secret, the namespace and the key, never a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use thiserror::Error;

use super::{Credentials, CredentialsError};
use crate::broker::BrokerKind;
use crate::common::http::{
    Timeouts, describe_error, install_crypto_provider, read_pem_certificates, snippet,
};

/// The service-account directory every pod gets.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sApiSettings {
    /// `https://host:port` of the API server; `None` = from `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT` (in-cluster).
    pub api_url: Option<String>,
    /// Holds `token`, `ca.crt` and `namespace`.
    pub service_account_dir: PathBuf,
    /// The Secrets' namespace; `None` = the pod's own (`namespace` in the service-account dir).
    pub namespace: Option<String>,
    /// Deadlines of the call.
    pub timeouts: Timeouts,
}

impl Default for K8sApiSettings {
    fn default() -> Self {
        K8sApiSettings {
            api_url: None,
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
            namespace: None,
            timeouts: Timeouts::default(),
        }
    }
}

/// Why credentials could not be read from a Secret. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum K8sSecretError {
    #[error(
        "not running in Kubernetes: {var} is not set (set the API server URL explicitly, or use \
         credentials = {{ file = ... }} outside a cluster)"
    )]
    NotInCluster { var: &'static str },
    #[error("cannot read the service account's {what} at {path}: {reason}")]
    ServiceAccount {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("Kubernetes API URL {url:?} is not an https:// URL")]
    BadApiUrl { url: String },
    #[error("cannot set up the Kubernetes API client: {reason}")]
    Client { reason: String },
    #[error(
        "getting Secret {secret} in namespace {namespace} failed before an answer came (the \
         request may be retried): {reason}"
    )]
    Unreachable {
        secret: String,
        namespace: String,
        reason: String,
    },
    #[error(
        "the Kubernetes API server's certificate is not accepted with the CA in {ca}: {reason} \
         (is the API URL right, and is ca.crt the cluster's CA?)"
    )]
    Untrusted { ca: String, reason: String },
    #[error(
        "the Kubernetes API refused the worker's service-account token (401) when getting \
         Secret {secret} in namespace {namespace}: is the token mounted and current?"
    )]
    Unauthorized { secret: String, namespace: String },
    #[error(
        "the worker's Role does not allow get on secret {secret} in namespace {namespace} (403): \
         add it to the Role's resourceNames (deploy/k8s/sync.py does it from accounts.toml)"
    )]
    Forbidden { secret: String, namespace: String },
    #[error(
        "no Secret {secret} in namespace {namespace} (404): create it with the account's \
         credentials JSON (docs/deploy.md §4)"
    )]
    NotFound { secret: String, namespace: String },
    #[error(
        "getting Secret {secret} in namespace {namespace} failed with HTTP {status}{reason}: \
         {message}"
    )]
    Status {
        secret: String,
        namespace: String,
        status: u16,
        /// `: <Status reason>` when the API server sent one.
        reason: String,
        message: String,
    },
    #[error("the answer for Secret {secret} in namespace {namespace} is not a Secret: {problem}")]
    NotASecret {
        secret: String,
        namespace: String,
        problem: String,
    },
    #[error(
        "Secret {secret} in namespace {namespace} has no key {key} (its keys: {available}); \
         fix `key` in accounts.toml or the Secret"
    )]
    MissingKey {
        secret: String,
        namespace: String,
        key: String,
        available: String,
    },
    #[error(
        "Secret {secret} in namespace {namespace} has {count} keys ({available}): name the one \
         holding the credentials JSON with `key` in accounts.toml"
    )]
    AmbiguousKey {
        secret: String,
        namespace: String,
        count: usize,
        available: String,
    },
    #[error("Secret {secret} in namespace {namespace}, key {key}: the value is {problem}")]
    BadValue {
        secret: String,
        namespace: String,
        key: String,
        problem: &'static str,
    },
    #[error(transparent)]
    Payload(#[from] CredentialsError),
}

impl K8sSecretError {
    /// True when trying again later may succeed (no answer, a 5xx or 429); every other error
    /// needs the operator.
    pub fn is_transient(&self) -> bool {
        match self {
            K8sSecretError::Unreachable { .. } => true,
            K8sSecretError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// `GET /api/v1/namespaces/{ns}/secrets/{name}`, as far as it matters here.
#[derive(Deserialize)]
struct SecretObject {
    kind: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

/// The API server's error body (`kind: Status`).
#[derive(Deserialize)]
struct StatusObject {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

fn read_service_account_file(
    dir: &Path,
    file: &str,
    what: &'static str,
) -> Result<String, K8sSecretError> {
    let path = dir.join(file);
    let unreadable = |reason: String| K8sSecretError::ServiceAccount {
        what,
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(unreadable("the file is empty".into()));
    }
    Ok(text.to_string())
}

fn api_url(settings: &K8sApiSettings) -> Result<reqwest::Url, K8sSecretError> {
    match &settings.api_url {
        Some(url) => parse_api_url(url),
        None => in_cluster_url(
            std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok(),
        ),
    }
}

/// The API server's URL from the values of `KUBERNETES_SERVICE_HOST` and `_PORT`.
fn in_cluster_url(
    host: Option<String>,
    port: Option<String>,
) -> Result<reqwest::Url, K8sSecretError> {
    let given = |value: Option<String>, var: &'static str| {
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(K8sSecretError::NotInCluster { var })
    };
    let host = given(host, "KUBERNETES_SERVICE_HOST")?;
    let port = given(port, "KUBERNETES_SERVICE_PORT")?;
    // An IPv6 service address needs brackets in a URL.
    if host.contains(':') && !host.starts_with('[') {
        parse_api_url(&format!("https://[{host}]:{port}"))
    } else {
        parse_api_url(&format!("https://{host}:{port}"))
    }
}

fn parse_api_url(text: &str) -> Result<reqwest::Url, K8sSecretError> {
    let bad = || K8sSecretError::BadApiUrl {
        url: text.to_string(),
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(bad());
    }
    Ok(url)
}

/// The TLS refusal behind a request error, if that is what it is (an untrusted or mismatched
/// certificate: retrying will not help). rustls' error travels inside (nested) `io::Error`s, whose
/// `source()` skips what they wrap, hence the look inside.
fn tls_error(error: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

impl Credentials {
    /// Reads the `kind` credentials JSON from the Kubernetes Secret `name`, entry `key` (`None`:
    /// the Secret must have exactly one entry), through the API (see the module doc).
    pub async fn from_k8s_secret(
        kind: BrokerKind,
        name: &str,
        key: Option<&str>,
        settings: &K8sApiSettings,
    ) -> Result<Credentials, K8sSecretError> {
        let dir = &settings.service_account_dir;
        let namespace = match &settings.namespace {
            Some(ns) => ns.clone(),
            None => read_service_account_file(dir, "namespace", "namespace")?,
        };
        let base = api_url(settings)?;
        let token = read_service_account_file(dir, "token", "token")?;
        let ca_path = dir.join("ca.crt");
        let ca =
            read_pem_certificates(&ca_path).map_err(|reason| K8sSecretError::ServiceAccount {
                what: "CA certificate",
                path: ca_path.display().to_string(),
                reason,
            })?;

        install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_rustls()
            .tls_certs_only(ca)
            .user_agent(concat!("nija/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeouts.request)
            .connect_timeout(settings.timeouts.connect)
            .build()
            .map_err(|e| K8sSecretError::Client {
                reason: e.to_string(),
            })?;

        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| K8sSecretError::BadApiUrl {
                url: base.to_string(),
            })?
            .pop_if_empty()
            .extend(["api", "v1", "namespaces", &namespace, "secrets", name]);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            K8sSecretError::ServiceAccount {
                what: "token",
                path: dir.join("token").display().to_string(),
                reason: "the token holds characters an HTTP header cannot carry".into(),
            }
        })?;
        bearer.set_sensitive(true);

        let secret = || name.to_string();
        let ns = || namespace.clone();
        let path = url.path().to_string();
        let unreachable = |e: reqwest::Error| match tls_error(&e) {
            Some(reason) => K8sSecretError::Untrusted {
                ca: ca_path.display().to_string(),
                reason,
            },
            None => K8sSecretError::Unreachable {
                secret: secret(),
                namespace: ns(),
                reason: describe_error(&reqwest::Method::GET, &path, e),
            },
        };
        let response = client
            .get(url)
            .header(AUTHORIZATION, bearer)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(unreachable)?;

        match status {
            200 => {}
            401 => {
                return Err(K8sSecretError::Unauthorized {
                    secret: secret(),
                    namespace: ns(),
                });
            }
            403 => {
                return Err(K8sSecretError::Forbidden {
                    secret: secret(),
                    namespace: ns(),
                });
            }
            404 => {
                return Err(K8sSecretError::NotFound {
                    secret: secret(),
                    namespace: ns(),
                });
            }
            _ => {
                // Only an error body is quoted, never a 200's (that would be the Secret).
                let (reason, message) = match serde_json::from_str::<StatusObject>(&body) {
                    Ok(s) => (s.reason, s.message),
                    Err(_) => (String::new(), body),
                };
                return Err(K8sSecretError::Status {
                    secret: secret(),
                    namespace: ns(),
                    status,
                    reason: if reason.is_empty() {
                        reason
                    } else {
                        format!(": {reason}")
                    },
                    message: snippet(&message),
                });
            }
        }

        let not_a_secret = |problem: String| K8sSecretError::NotASecret {
            secret: secret(),
            namespace: ns(),
            problem,
        };
        // serde's messages can quote values: report only where the JSON broke.
        let object: SecretObject = serde_json::from_str(&body).map_err(|e| {
            not_a_secret(format!(
                "unreadable JSON at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        if object.kind != "Secret" {
            return Err(not_a_secret(format!("its kind is {:?}", object.kind)));
        }
        let available = || {
            if object.data.is_empty() {
                "none".to_string()
            } else {
                object.data.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        let (key, encoded) = match key {
            Some(key) => match object.data.get(key) {
                Some(value) => (key.to_string(), value),
                None => {
                    return Err(K8sSecretError::MissingKey {
                        secret: secret(),
                        namespace: ns(),
                        key: key.to_string(),
                        available: available(),
                    });
                }
            },
            None => match object.data.iter().next() {
                Some((key, value)) if object.data.len() == 1 => (key.clone(), value),
                _ => {
                    return Err(K8sSecretError::AmbiguousKey {
                        secret: secret(),
                        namespace: ns(),
                        count: object.data.len(),
                        available: available(),
                    });
                }
            },
        };
        let bad_value = |problem: &'static str| K8sSecretError::BadValue {
            secret: secret(),
            namespace: ns(),
            key: key.clone(),
            problem,
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad_value("not base64 (the API server always encodes Secret data)"))?;
        let json = String::from_utf8(bytes).map_err(|_| bad_value("not UTF-8 text"))?;
        let credentials = Credentials::from_json(
            kind,
            &json,
            &format!("Kubernetes Secret {namespace}/{name} key {key}"),
        )?;
        tracing::debug!(
            secret = name,
            namespace,
            key,
            broker = %kind,
            fingerprint = credentials.fingerprint(),
            "credentials read from a Kubernetes Secret"
        );
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: Option<&str>, port: Option<&str>) -> Result<String, K8sSecretError> {
        in_cluster_url(host.map(str::to_string), port.map(str::to_string)).map(|u| u.to_string())
    }

    #[test]
    fn the_in_cluster_address_comes_from_the_service_variables() {
        assert_eq!(
            url(Some("10.96.0.1"), Some("443")).unwrap(),
            "https://10.96.0.1/"
        );
        assert_eq!(
            url(Some("10.96.0.1"), Some("6443")).unwrap(),
            "https://10.96.0.1:6443/"
        );
        assert_eq!(
            url(Some("fd00:10:96::1"), Some("443")).unwrap(),
            "https://[fd00:10:96::1]/"
        );
        assert_eq!(
            url(None, Some("443")),
            Err(K8sSecretError::NotInCluster {
                var: "KUBERNETES_SERVICE_HOST"
            })
        );
        assert_eq!(
            url(Some("10.96.0.1"), Some(" ")),
            Err(K8sSecretError::NotInCluster {
                var: "KUBERNETES_SERVICE_PORT"
            })
        );
        assert!(matches!(
            url(Some("10.96.0.1"), Some("not-a-port")),
            Err(K8sSecretError::BadApiUrl { .. })
        ));
    }

    #[test]
    fn only_https_api_urls() {
        assert!(parse_api_url("https://kubernetes.default.svc").is_ok());
        assert!(parse_api_url("http://kubernetes.default.svc").is_err());
        assert!(parse_api_url("kubernetes.default.svc").is_err());
    }

    #[test]
    fn transient_errors_are_those_worth_retrying() {
        let status = |status| K8sSecretError::Status {
            secret: "s".into(),
            namespace: "n".into(),
            status,
            reason: String::new(),
            message: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(400).is_transient());
        assert!(
            !K8sSecretError::Forbidden {
                secret: "s".into(),
                namespace: "n".into()
            }
            .is_transient()
        );
    }
}

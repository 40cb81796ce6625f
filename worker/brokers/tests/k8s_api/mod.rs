//! An emulated Kubernetes API server: no real one runs on the development machines, so this serves
//! the one endpoint the worker uses, `GET /api/v1/namespaces/{ns}/secrets/{name}`, over real HTTPS
//! in the API server's shapes: a `Secret` object with base64 `data`, and `Status` objects for 401,
//! 403 (the Role's `resourceNames` decide, before existence, as RBAC does) and 404. It checks the
//! bearer token, which a test can rotate.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A Secret whose GET answers only after this long (for deadline tests).
pub const SLOW_SECRET: &str = "nija-account-slow";
/// A Secret whose GET answers 500 with a Status (an overloaded API server).
pub const FAILING_SECRET: &str = "nija-account-failing";

/// A CA certificate (PEM) and the issuer to sign leaves with.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server configuration presenting a leaf for 127.0.0.1 signed by this CA.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

#[derive(Default)]
struct Cluster {
    token: String,
    /// (namespace, name) → data (key → raw value, base64-encoded when served).
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    /// Secrets whose data is served as given, not encoded (a corrupted object).
    raw: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// The Role's resourceNames: the only Secrets the service account may get.
    allowed: BTreeSet<String>,
    /// Paths requested, in order.
    requests: Vec<String>,
}

/// A running emulated API server; stops when dropped.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub ca: TestCa,
    cluster: Arc<Mutex<Cluster>>,
    task: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// Serves with a certificate from a fresh CA, expecting `token`.
    pub async fn start(token: &str) -> ApiServer {
        let ca = TestCa::new("kubernetes");
        let cluster = Arc::new(Mutex::new(Cluster {
            token: token.to_string(),
            ..Cluster::default()
        }));
        let router = Router::new()
            .route("/api/v1/namespaces/{ns}/secrets/{name}", get(get_secret))
            .with_state(cluster.clone());
        let acceptor = TlsAcceptor::from(ca.server_config());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends the handshake here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                        .await;
                });
            }
        });
        ApiServer {
            addr,
            ca,
            cluster,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Creates (or replaces) a Secret; `allowed` adds it to the Role.
    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])], allowed: bool) {
        let mut c = self.cluster.lock().unwrap();
        c.secrets.insert(
            (namespace.to_string(), name.to_string()),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        );
        if allowed {
            c.allowed.insert(name.to_string());
        }
    }

    /// A Secret whose `data` values are served verbatim (not valid base64, say).
    pub fn put_raw_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let mut c = self.cluster.lock().unwrap();
        c.raw.insert(
            (namespace.to_string(), name.to_string()),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        c.allowed.insert(name.to_string());
    }

    /// Adds a name to the Role (whether or not the Secret exists).
    pub fn allow(&self, name: &str) {
        self.cluster
            .lock()
            .unwrap()
            .allowed
            .insert(name.to_string());
    }

    /// The token the server accepts from now on (the kubelet rotated it).
    pub fn rotate_token(&self, token: &str) {
        self.cluster.lock().unwrap().token = token.to_string();
    }

    pub fn requests(&self) -> Vec<String> {
        self.cluster.lock().unwrap().requests.clone()
    }
}

/// A service-account directory (`token`, `ca.crt`, `namespace`) as the kubelet mounts it.
pub struct ServiceAccountDir {
    dir: tempfile::TempDir,
}

impl ServiceAccountDir {
    pub fn new(token: &str, ca_pem: &str, namespace: &str) -> ServiceAccountDir {
        let sa = ServiceAccountDir {
            dir: tempfile::tempdir().unwrap(),
        };
        sa.write_token(token);
        std::fs::write(sa.path().join("ca.crt"), ca_pem).unwrap();
        std::fs::write(sa.path().join("namespace"), namespace).unwrap();
        sa
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_buf(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn write_token(&self, token: &str) {
        std::fs::write(self.path().join("token"), format!("{token}\n")).unwrap();
    }
}

fn status(code: StatusCode, reason: &str, message: String, name: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": "secrets"},
        "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

async fn get_secret(
    State(cluster): State<Arc<Mutex<Cluster>>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (object, slow) = {
        let mut c = cluster.lock().unwrap();
        c.requests
            .push(format!("/api/v1/namespaces/{ns}/secrets/{name}"));
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer != Some(c.token.as_str()) {
            let body = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
            });
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        if !c.allowed.contains(&name) {
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "secrets \"{name}\" is forbidden: User \"system:serviceaccount:{ns}:nija-worker\" \
                     cannot get resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
                ),
                &name,
            );
        }
        if name == FAILING_SECRET {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out".into(),
                &name,
            );
        }
        let key = (ns.clone(), name.clone());
        let data: Option<BTreeMap<String, String>> = c
            .secrets
            .get(&key)
            .map(|d| {
                d.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            base64::engine::general_purpose::STANDARD.encode(v),
                        )
                    })
                    .collect()
            })
            .or_else(|| c.raw.get(&key).cloned());
        if data.is_none() && name != SLOW_SECRET {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("secrets \"{name}\" not found"),
                &name,
            );
        }
        let object = json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": "6d1f2a8e-0c1b-4a53-9d57-5b1c2f0e7a10",
                "resourceVersion": "48213",
                "creationTimestamp": "2026-11-26T12:00:00Z",
                "labels": {"nija.dev/account": name.trim_start_matches("nija-account-")},
            },
            "data": data.unwrap_or_default(),
            "type": "Opaque",
        });
        (object, name == SLOW_SECRET)
    };
    if slow {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    (StatusCode::OK, Json::<Value>(object)).into_response()
}

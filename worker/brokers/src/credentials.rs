//! Broker credentials, loaded from the JSON payloads of DESIGN §5 and held so that nothing secret
//! can be printed: `Debug` and `Display` show the broker and a fingerprint, errors name the field
//! and the source, never a value (DESIGN R8).
//!
//! Sources: a file, an environment variable, or a Kubernetes Secret read through the API
//! ([`Credentials::from_k8s_secret`]).
//!
//! Payloads: Coinbase `{"name": …, "privateKey": …}` (the CDP key file; `id` is accepted for
//! `name`), Kraken `{"key": …, "secret": …}`, Alpaca `{"key_id": …, "secret_key": …}`.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::broker::BrokerKind;

mod k8s;

pub use k8s::{K8sApiSettings, K8sSecretError, SERVICE_ACCOUNT_DIR};

/// Why credentials could not be loaded. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    #[error("environment variable {var} is not set (it should hold the {broker} credentials JSON)")]
    MissingEnv { var: String, broker: BrokerKind },
    #[error("cannot read credentials file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "{broker} credentials from {source_name} are not valid JSON of the expected shape \
         ({expected}): {problem}"
    )]
    Shape {
        broker: BrokerKind,
        source_name: String,
        expected: &'static str,
        problem: String,
    },
    #[error("{broker} credentials from {source_name}: field {field} is invalid: {problem}")]
    BadField {
        broker: BrokerKind,
        source_name: String,
        field: &'static str,
        problem: &'static str,
    },
}

/// A secret string or byte string whose formatting prints nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Coinbase CDP API key: the key name and its EC P-256 private key.
#[derive(Clone)]
pub struct CoinbaseCredentials {
    pub key_name: String,
    pub signing_key: Secret<SigningKey>,
}

/// Kraken API key and its (base64-decoded) private key.
#[derive(Clone)]
pub struct KrakenCredentials {
    pub api_key: String,
    pub secret: Secret<Vec<u8>>,
}

/// Alpaca key id and secret key.
#[derive(Clone)]
pub struct AlpacaCredentials {
    pub key_id: String,
    pub secret_key: Secret<String>,
}

/// The credentials of one account.
#[derive(Clone)]
pub enum Credentials {
    Coinbase(CoinbaseCredentials),
    Kraken(KrakenCredentials),
    Alpaca(AlpacaCredentials),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("broker", &self.kind())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key {}", self.kind(), self.fingerprint())
    }
}

#[derive(Deserialize)]
struct CoinbasePayload {
    #[serde(alias = "id")]
    name: String,
    #[serde(rename = "privateKey")]
    private_key: String,
}

#[derive(Deserialize)]
struct KrakenPayload {
    key: String,
    secret: String,
}

#[derive(Deserialize)]
struct AlpacaPayload {
    key_id: String,
    secret_key: String,
}

impl Credentials {
    pub fn kind(&self) -> BrokerKind {
        match self {
            Credentials::Coinbase(_) => BrokerKind::Coinbase,
            Credentials::Kraken(_) => BrokerKind::Kraken,
            Credentials::Alpaca(_) => BrokerKind::Alpaca,
        }
    }

    /// The public half of the key (key name / API key / key id): identifies the key, grants
    /// nothing on its own.
    pub fn public_id(&self) -> &str {
        match self {
            Credentials::Coinbase(c) => &c.key_name,
            Credentials::Kraken(c) => &c.api_key,
            Credentials::Alpaca(c) => &c.key_id,
        }
    }

    /// A stable short id of the API key: the first 16 hex digits of SHA-256 over
    /// `"<broker>:<public id>"`. Two accounts with the same fingerprint share a key, which
    /// configuration refuses (DESIGN R2).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{}:{}", self.kind(), self.public_id()).as_bytes());
        hex::encode(&digest[..8])
    }

    /// Parses a JSON payload; `source_name` (an env var or a path) is only used in errors.
    pub fn from_json(
        kind: BrokerKind,
        json: &str,
        source_name: &str,
    ) -> Result<Credentials, CredentialsError> {
        let shape = |expected: &'static str, e: serde_json::Error| CredentialsError::Shape {
            broker: kind,
            source_name: source_name.to_string(),
            expected,
            // serde's message can quote a value ("invalid type: string \"…\""): keep only where
            // and what kind of problem, never the text.
            problem: format!(
                "{} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Io => "I/O error",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Data => "missing field or wrong type",
                    serde_json::error::Category::Eof => "unexpected end of input",
                },
                e.line(),
                e.column()
            ),
        };
        let bad = |field: &'static str, problem: &'static str| CredentialsError::BadField {
            broker: kind,
            source_name: source_name.to_string(),
            field,
            problem,
        };
        match kind {
            BrokerKind::Coinbase => {
                let p: CoinbasePayload = serde_json::from_str(json)
                    .map_err(|e| shape(r#"{"name": ..., "privateKey": ...}"#, e))?;
                if p.name.trim().is_empty() {
                    return Err(bad("name", "is empty"));
                }
                let key = parse_ec_private_key(&p.private_key).ok_or(bad(
                    "privateKey",
                    "is not an EC P-256 private key in SEC1 (EC PRIVATE KEY) or PKCS#8 PEM",
                ))?;
                Ok(Credentials::Coinbase(CoinbaseCredentials {
                    key_name: p.name.trim().to_string(),
                    signing_key: Secret(key),
                }))
            }
            BrokerKind::Kraken => {
                let p: KrakenPayload = serde_json::from_str(json)
                    .map_err(|e| shape(r#"{"key": ..., "secret": ...}"#, e))?;
                if p.key.trim().is_empty() {
                    return Err(bad("key", "is empty"));
                }
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(p.secret.trim())
                    .map_err(|_| bad("secret", "is not base64 (copy the private key as shown)"))?;
                if secret.is_empty() {
                    return Err(bad("secret", "is empty"));
                }
                Ok(Credentials::Kraken(KrakenCredentials {
                    api_key: p.key.trim().to_string(),
                    secret: Secret(secret),
                }))
            }
            BrokerKind::Alpaca => {
                let p: AlpacaPayload = serde_json::from_str(json)
                    .map_err(|e| shape(r#"{"key_id": ..., "secret_key": ...}"#, e))?;
                if p.key_id.trim().is_empty() {
                    return Err(bad("key_id", "is empty"));
                }
                if p.secret_key.trim().is_empty() {
                    return Err(bad("secret_key", "is empty"));
                }
                Ok(Credentials::Alpaca(AlpacaCredentials {
                    key_id: p.key_id.trim().to_string(),
                    secret_key: Secret(p.secret_key.trim().to_string()),
                }))
            }
        }
    }

    /// Loads from the environment variable `var`.
    pub fn from_env(kind: BrokerKind, var: &str) -> Result<Credentials, CredentialsError> {
        let json = std::env::var(var).map_err(|_| CredentialsError::MissingEnv {
            var: var.to_string(),
            broker: kind,
        })?;
        Credentials::from_json(kind, &json, &format!("environment variable {var}"))
    }

    /// Loads from a file; warns when the file is readable by group or others.
    pub fn from_file(kind: BrokerKind, path: &Path) -> Result<Credentials, CredentialsError> {
        let unreadable = |e: std::io::Error| CredentialsError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let json = std::fs::read_to_string(path).map_err(unreadable)?;
        warn_if_shared(path);
        Credentials::from_json(kind, &json, &path.display().to_string())
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "credentials file is readable by group or others: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Reads a SEC1 or PKCS#8 PEM, also when its newlines arrived as literal `\n` (a one-line
/// environment variable).
fn parse_ec_private_key(text: &str) -> Option<SigningKey> {
    let pem = text.trim().replace("\\n", "\n");
    if let Ok(key) = p256::SecretKey::from_sec1_pem(&pem) {
        return Some(SigningKey::from(key));
    }
    p256::SecretKey::from_pkcs8_pem(&pem)
        .ok()
        .map(SigningKey::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIC1+xENaqWVrZFHQCLeqMMvKmTNPaOqvz9Ve9Uw3eKR6oAoGCCqGSM49\nAwEHoUQDQgAEqV4sM5QJpax8OHW8biOolZGCi8G6nFiKeODvVOulmNtGEqmOtPmJ\n/Q+XDjiA7UGeLxerBJb81l738WwEQQbcXw==\n-----END EC PRIVATE KEY-----\n";
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLX7EQ1qpZWtkUdAI\nt6owy8qZM09o6q/P1V71TDd4pHqhRANCAASpXiwzlAmlrHw4dbxuI6iVkYKLwbqc\nWIp44O9U66WY20YSqY60+Yn9D5cOOIDtQZ4vF6sElvzWXvfxbARBBtxf\n-----END PRIVATE KEY-----\n";
    const SCALAR: &str = "2d7ec4435aa9656b6451d008b7aa30cbca99334f68eaafcfd55ef54c3778a47a";

    fn coinbase(pem: &str) -> Result<Credentials, CredentialsError> {
        let json = serde_json::json!({"name": "organizations/o/apiKeys/k", "privateKey": pem});
        Credentials::from_json(BrokerKind::Coinbase, &json.to_string(), "test")
    }

    fn scalar(c: &Credentials) -> String {
        match c {
            Credentials::Coinbase(c) => hex::encode(c.signing_key.expose().to_bytes()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn coinbase_reads_sec1_pkcs8_and_escaped_newlines() {
        assert_eq!(scalar(&coinbase(SEC1).unwrap()), SCALAR);
        assert_eq!(scalar(&coinbase(PKCS8).unwrap()), SCALAR);
        let one_line = SEC1.replace('\n', "\\n");
        assert_eq!(scalar(&coinbase(&one_line).unwrap()), SCALAR);
        let err = coinbase("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----")
            .unwrap_err();
        assert!(matches!(
            err,
            CredentialsError::BadField {
                field: "privateKey",
                ..
            }
        ));
    }

    #[test]
    fn coinbase_accepts_id_for_name() {
        let json = serde_json::json!({"id": "key-uuid", "privateKey": SEC1});
        let c = Credentials::from_json(BrokerKind::Coinbase, &json.to_string(), "t").unwrap();
        assert_eq!(c.public_id(), "key-uuid");
    }

    #[test]
    fn kraken_and_alpaca_shapes() {
        let k = Credentials::from_json(
            BrokerKind::Kraken,
            r#"{"key":"pub","secret":"kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="}"#,
            "t",
        )
        .unwrap();
        assert_eq!(k.kind(), BrokerKind::Kraken);
        let bad = Credentials::from_json(BrokerKind::Kraken, r#"{"key":"pub","secret":"%%"}"#, "t");
        assert!(matches!(
            bad,
            Err(CredentialsError::BadField {
                field: "secret",
                ..
            })
        ));
        let a = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK1","secret_key":"s"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(a.public_id(), "PK1");
        let wrong = Credentials::from_json(BrokerKind::Alpaca, r#"{"key":"PK1"}"#, "t");
        assert!(matches!(wrong, Err(CredentialsError::Shape { .. })));
    }

    #[test]
    fn fingerprints_identify_the_key_not_the_secret() {
        let a = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK1","secret_key":"s1"}"#,
            "t",
        )
        .unwrap();
        let b = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK1","secret_key":"s2"}"#,
            "t",
        )
        .unwrap();
        let c = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK2","secret_key":"s1"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn missing_env_and_file_errors_are_clear() {
        let err =
            Credentials::from_env(BrokerKind::Kraken, "NIJA_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(err.to_string().contains("NIJA_TEST_SURELY_UNSET_VAR"));
        let err = Credentials::from_file(BrokerKind::Kraken, Path::new("/nonexistent/k.json"))
            .unwrap_err();
        assert!(matches!(err, CredentialsError::Unreadable { .. }));
    }
}

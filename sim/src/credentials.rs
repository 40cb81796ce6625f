//! Credentials the simulator issues to its accounts, in the JSON shapes nija reads.
//!
//! They derive from the seed and the account id, so a restarted simulator with the same seed
//! accepts the credential files it wrote before.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::broker::Broker;

/// One account's API credentials, serialised exactly as nija's credential files
/// (Coinbase `{"name","privateKey"}`, Kraken `{"key","secret"}`, Alpaca `{"key_id","secret_key"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Credentials {
    Coinbase {
        name: String,
        #[serde(rename = "privateKey")]
        private_key: String,
    },
    Kraken {
        key: String,
        secret: String,
    },
    Alpaca {
        key_id: String,
        secret_key: String,
    },
}

/// Why credentials could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("Coinbase private key is not a SEC1 or PKCS#8 P-256 PEM: {0}")]
    BadKey(String),
    #[error("Kraken secret is not base64: {0}")]
    BadSecret(String),
}

fn digest(seed: u64, broker: Broker, account: &str, purpose: &str, counter: u32) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"nija-sim credentials\0");
    hasher.update(seed.to_be_bytes());
    hasher.update(broker.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(account.as_bytes());
    hasher.update([0]);
    hasher.update(purpose.as_bytes());
    hasher.update(counter.to_be_bytes());
    hasher.finalize().into()
}

fn uuid_from(bytes: [u8; 32]) -> uuid::Uuid {
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(raw).into_uuid()
}

fn alphanumeric(bytes: &[u8], upper_only: bool, len: usize) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let table = if upper_only { UPPER } else { MIXED };
    bytes
        .iter()
        .cycle()
        .take(len)
        .enumerate()
        .map(|(i, b)| table[(usize::from(*b) + i * 7) % table.len()] as char)
        .collect()
}

/// SEC1 PEM with the named-curve parameters, as Coinbase issues it (OpenSSL needs the curve).
fn sec1_pem(secret: &p256::SecretKey) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = secret.public_key().to_encoded_point(false);
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&secret.to_bytes());
    // [0] namedCurve prime256v1 (1.2.840.10045.3.1.7), [1] the uncompressed public key.
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(point.as_bytes());
    let body = STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    pem
}

impl Credentials {
    /// Deterministic credentials for `account` at `broker`.
    pub fn generate(
        seed: u64,
        broker: Broker,
        account: &str,
    ) -> Result<Credentials, CredentialError> {
        match broker {
            Broker::Coinbase => {
                let org = uuid_from(digest(seed, broker, account, "org", 0));
                let key_id = uuid_from(digest(seed, broker, account, "key", 0));
                let mut counter = 0;
                let secret = loop {
                    let bytes = digest(seed, broker, account, "ec", counter);
                    if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                        break secret;
                    }
                    counter += 1;
                };
                Ok(Credentials::Coinbase {
                    name: format!("organizations/{org}/apiKeys/{key_id}"),
                    private_key: sec1_pem(&secret),
                })
            }
            Broker::Kraken => {
                let a = digest(seed, broker, account, "secret", 0);
                let b = digest(seed, broker, account, "secret", 1);
                let mut secret = a.to_vec();
                secret.extend_from_slice(&b);
                let key = digest(seed, broker, account, "key", 0);
                let mut key_bytes = key.to_vec();
                key_bytes.extend_from_slice(&digest(seed, broker, account, "key", 1)[..10]);
                Ok(Credentials::Kraken {
                    key: STANDARD.encode(&key_bytes).replace(['+', '/', '='], "x"),
                    secret: STANDARD.encode(&secret),
                })
            }
            Broker::Alpaca => {
                let id = digest(seed, broker, account, "key", 0);
                let secret = digest(seed, broker, account, "secret", 0);
                Ok(Credentials::Alpaca {
                    key_id: format!("PK{}", alphanumeric(&id, true, 18)),
                    secret_key: alphanumeric(&secret, false, 40),
                })
            }
        }
    }

    pub fn broker(&self) -> Broker {
        match self {
            Credentials::Coinbase { .. } => Broker::Coinbase,
            Credentials::Kraken { .. } => Broker::Kraken,
            Credentials::Alpaca { .. } => Broker::Alpaca,
        }
    }

    /// The public identifier the broker sees in requests (key name, API key, key id).
    pub fn key_id(&self) -> &str {
        match self {
            Credentials::Coinbase { name, .. } => name,
            Credentials::Kraken { key, .. } => key,
            Credentials::Alpaca { key_id, .. } => key_id,
        }
    }

    /// The JSON payload nija reads from a credentials file.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// What the simulator needs to check a request signed with some credentials.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// Uncompressed SEC1 public point (65 bytes), verified with ring's P-256.
    Coinbase(Vec<u8>),
    Kraken(Vec<u8>),
    Alpaca(String),
}

impl Verifier {
    pub fn for_credentials(credentials: &Credentials) -> Result<Verifier, CredentialError> {
        match credentials {
            Credentials::Coinbase { private_key, .. } => {
                let pem = private_key.replace("\\n", "\n");
                let secret = p256::SecretKey::from_sec1_pem(&pem)
                    .or_else(|_| {
                        use p256::pkcs8::DecodePrivateKey;
                        p256::SecretKey::from_pkcs8_pem(&pem)
                    })
                    .map_err(|e| CredentialError::BadKey(e.to_string()))?;
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let point = secret.public_key().to_encoded_point(false);
                Ok(Verifier::Coinbase(point.as_bytes().to_vec()))
            }
            Credentials::Kraken { secret, .. } => STANDARD
                .decode(secret)
                .map(Verifier::Kraken)
                .map_err(|e| CredentialError::BadSecret(e.to_string())),
            Credentials::Alpaca { secret_key, .. } => Ok(Verifier::Alpaca(secret_key.clone())),
        }
    }
}

/// Kraken's API-Sign: base64(HMAC-SHA512(secret, path ‖ SHA256(nonce ‖ body))).
pub fn kraken_sign(secret: &[u8], path: &str, nonce: &str, body: &[u8]) -> String {
    let mut inner = Sha256::new();
    inner.update(nonce.as_bytes());
    inner.update(body);
    let inner = inner.finalize();
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(secret) else {
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        return String::new();
    };
    mac.update(path.as_bytes());
    mac.update(&inner);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_are_stable_and_distinct() {
        for broker in Broker::ALL {
            let a = Credentials::generate(1, broker, "user-0001").unwrap();
            assert_eq!(a, Credentials::generate(1, broker, "user-0001").unwrap());
            assert_ne!(a, Credentials::generate(1, broker, "user-0002").unwrap());
            assert_ne!(a, Credentials::generate(2, broker, "user-0001").unwrap());
            Verifier::for_credentials(&a).unwrap();
        }
        let Credentials::Coinbase { private_key, .. } =
            Credentials::generate(1, Broker::Coinbase, "x").unwrap()
        else {
            panic!("wrong kind")
        };
        assert!(private_key.starts_with("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE"));
    }

    /// The throwaway CDP key of `shared/brokers/vectors.json`: same scalar, same PEM bytes.
    #[test]
    fn sec1_pem_matches_the_cdp_key_format() {
        let scalar = "2d7ec4435aa9656b6451d008b7aa30cbca99334f68eaafcfd55ef54c3778a47a";
        let bytes: Vec<u8> = (0..scalar.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&scalar[i..i + 2], 16).unwrap())
            .collect();
        let secret = p256::SecretKey::from_slice(&bytes).unwrap();
        let expected = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIC1+xENaqWVrZFHQCLeqMMvKmTNPaOqvz9Ve9Uw3eKR6oAoGCCqGSM49\nAwEHoUQDQgAEqV4sM5QJpax8OHW8biOolZGCi8G6nFiKeODvVOulmNtGEqmOtPmJ\n/Q+XDjiA7UGeLxerBJb81l738WwEQQbcXw==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(sec1_pem(&secret), expected);
        let pkcs8 = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLX7EQ1qpZWtkUdAI\nt6owy8qZM09o6q/P1V71TDd4pHqhRANCAASpXiwzlAmlrHw4dbxuI6iVkYKLwbqc\nWIp44O9U66WY20YSqY60+Yn9D5cOOIDtQZ4vF6sElvzWXvfxbARBBtxf\n-----END PRIVATE KEY-----\n";
        let from_pkcs8 = Verifier::for_credentials(&Credentials::Coinbase {
            name: "k".into(),
            private_key: pkcs8.into(),
        });
        let from_sec1 = Verifier::for_credentials(&Credentials::Coinbase {
            name: "k".into(),
            private_key: expected.into(),
        });
        match (from_pkcs8, from_sec1) {
            (Ok(Verifier::Coinbase(a)), Ok(Verifier::Coinbase(b))) => assert_eq!(a, b),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kraken_signature_matches_published_example() {
        let secret = STANDARD
            .decode("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==")
            .unwrap();
        let body =
            b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
        assert_eq!(
            kraken_sign(&secret, "/0/private/AddOrder", "1616492376594", body),
            "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
        );
    }
}

//! ES256 JWT, one per request, exactly as the official SDK builds it (brokers.md §2.2):
//! header `{alg, kid, nonce, typ}` (keys sorted), claims `{sub, iss, nbf, exp, uri}` in that order,
//! compact JSON, `uri = "<METHOD> <host[:port]><path>"` without scheme and query, 120 s lifetime.
//! Requests are signed with `ring` (random-nonce ECDSA, several times faster than `p256`);
//! [`JwtSigner::token_at`] signs RFC 6979 deterministically, so a token is reproducible from its
//! inputs (the auth vectors check it byte for byte).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::Serialize;
use std::sync::Arc;

use crate::credentials::CoinbaseCredentials;

/// Token lifetime in seconds.
pub const TOKEN_LIFETIME_SECS: i64 = 120;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    nonce: &'a str,
    typ: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    nbf: i64,
    exp: i64,
    uri: &'a str,
}

/// The `uri` claim for a request: upper-case method, host (with a non-default port), path; no
/// scheme, no query string.
pub fn jwt_uri(method: &reqwest::Method, url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{} {host}:{port}{}", method.as_str(), url.path()),
        None => format!("{} {host}{}", method.as_str(), url.path()),
    }
}

/// Builds tokens for one CDP key.
#[derive(Clone)]
pub struct JwtSigner {
    key_name: String,
    key: SigningKey,
    /// The same key for `ring`; `None` only if `ring` refused a key `p256` accepted (then every
    /// token is signed with `p256`).
    fast: Option<Arc<EcdsaKeyPair>>,
}

impl JwtSigner {
    pub fn new(credentials: &CoinbaseCredentials) -> JwtSigner {
        let key = credentials.signing_key.expose().clone();
        let public = key.verifying_key().to_encoded_point(false);
        let fast = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.as_bytes(),
            &SystemRandom::new(),
        )
        .ok()
        .map(Arc::new);
        JwtSigner {
            key_name: credentials.key_name.clone(),
            key,
            fast,
        }
    }

    /// A token for `uri` valid from `now` (unix seconds), with an explicit header nonce, signed
    /// deterministically (RFC 6979).
    pub fn token_at(&self, uri: &str, now: i64, nonce: &str) -> String {
        let signing_input = self.signing_input(uri, now, nonce);
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        finish(signing_input, &signature.to_bytes())
    }

    fn signing_input(&self, uri: &str, now: i64, nonce: &str) -> String {
        let header = Header {
            alg: "ES256",
            kid: &self.key_name,
            nonce,
            typ: "JWT",
        };
        let claims = Claims {
            sub: &self.key_name,
            iss: "cdp",
            nbf: now,
            exp: now + TOKEN_LIFETIME_SECS,
            uri,
        };
        // Serializing these plain structs cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(&claims).unwrap_or_default();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    /// A fresh token for `uri`: current time, 32 random bytes of nonce.
    pub fn token(&self, uri: &str) -> String {
        let mut nonce = [0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let now = chrono::Utc::now().timestamp();
        let Some(fast) = &self.fast else {
            return self.token_at(uri, now, &hex::encode(nonce));
        };
        let signing_input = self.signing_input(uri, now, &hex::encode(nonce));
        match fast.sign(&SystemRandom::new(), signing_input.as_bytes()) {
            Ok(signature) => finish(signing_input, signature.as_ref()),
            Err(_) => self.token_at(uri, now, &hex::encode(nonce)),
        }
    }
}

fn finish(signing_input: String, signature: &[u8]) -> String {
    let mut token = signing_input;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

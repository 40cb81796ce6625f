//! Coinbase CDP authentication: one ES256 JWT per request, checked like the real service.

use std::sync::Arc;

use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::broker::Broker;
use crate::credentials::Verifier;
use crate::exchange::Exchange;
use crate::exchange::account::Account;
use crate::front::{host, signed_paths};

/// Longest token lifetime accepted (Coinbase issues 120 s tokens).
const MAX_LIFETIME_S: i64 = 120;
/// Clock skew tolerated on `nbf`.
const LEEWAY_S: i64 = 5;

/// Why a request was not authenticated (the client only ever sees `401 Unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unknown key")]
    UnknownKey,
    #[error("credentials revoked")]
    Revoked,
    #[error("bad signature")]
    BadSignature,
    #[error("token not valid now (nbf {nbf}, exp {exp}, now {now})")]
    Expired { nbf: i64, exp: i64, now: i64 },
    #[error("uri claim {claim:?} does not match {expected:?}")]
    Uri { claim: String, expected: String },
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iss: Option<String>,
    nbf: i64,
    exp: i64,
    uri: Option<String>,
}

fn decode<T: for<'de> Deserialize<'de>>(part: &str, what: &'static str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed(what))
}

/// Verifies the request's JWT and returns the account whose key signed it.
pub fn authenticate(exchange: &Exchange, parts: &Parts) -> Result<Arc<Account>, AuthError> {
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(AuthError::Missing)?
        .trim();
    let mut pieces = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(AuthError::Malformed("not three parts"));
    };
    let header: Header = decode(h, "header")?;
    let claims: Claims = decode(c, "claims")?;
    if header.alg != "ES256" {
        return Err(AuthError::Malformed("alg is not ES256"));
    }
    let key_name = header.kid.as_deref().unwrap_or(&claims.sub);
    if claims.sub != key_name || claims.iss.as_deref().is_some_and(|i| i != "cdp") {
        return Err(AuthError::Malformed("sub/iss"));
    }
    let account = exchange
        .by_key(Broker::Coinbase, key_name)
        .ok_or(AuthError::UnknownKey)?;
    let Verifier::Coinbase(key) = &account.verifier else {
        return Err(AuthError::UnknownKey);
    };
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("signature"))?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(signing_input.as_bytes(), &signature_bytes)
        .map_err(|_| AuthError::BadSignature)?;
    let now = chrono::Utc::now().timestamp();
    if claims.nbf > now + LEEWAY_S || claims.exp < now || claims.exp - claims.nbf > MAX_LIFETIME_S {
        return Err(AuthError::Expired {
            nbf: claims.nbf,
            exp: claims.exp,
            now,
        });
    }
    let claim = claims.uri.unwrap_or_default();
    let host = host(parts);
    // The host as addressed, with or without its port (a real host on 443 carries none).
    let hostname = host.rsplit_once(':').map(|(h, _)| h);
    let method = parts.method.as_str();
    let matches = signed_paths(parts).iter().any(|path| {
        claim == format!("{method} {host}{path}")
            || hostname.is_some_and(|h| claim == format!("{method} {h}{path}"))
    });
    if !matches {
        return Err(AuthError::Uri {
            claim,
            expected: format!("{method} {host}{}", parts.uri.path()),
        });
    }
    if account.revoked() {
        return Err(AuthError::Revoked);
    }
    Ok(Arc::clone(account))
}

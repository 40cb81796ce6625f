//! Kraken's API-Sign (brokers.md §3.2):
//! `base64(HMAC-SHA512(key = base64_decode(secret), uri_path ‖ SHA256(nonce ‖ body)))`, where the
//! body is the exact form-encoded text sent (it contains `nonce=…`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Form-encodes parameters in the given order (`[`, `]`, `,` are percent-encoded).
pub fn form_encode(params: &[(&str, &str)]) -> String {
    // serde_urlencoded cannot fail on a list of string pairs.
    serde_urlencoded::to_string(params).unwrap_or_default()
}

/// The API-Sign header value for a request to `uri_path` with body `postdata`.
pub fn api_sign(secret: &[u8], uri_path: &str, nonce: &str, postdata: &str) -> String {
    let inner = Sha256::new()
        .chain_update(nonce.as_bytes())
        .chain_update(postdata.as_bytes())
        .finalize();
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha512>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(uri_path.as_bytes());
    mac.update(&inner);
    STANDARD.encode(mac.finalize().into_bytes())
}

//! Identifiers as validated newtypes.
//!
//! Account and worker ids appear inside NATS subjects and KV keys, so their alphabet is restricted
//! at the door; a symbol is always nija's canonical `BASE-QUOTE` form, never a broker's name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use uuid::Uuid;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("{kind} {value:?} is invalid: use 1 to {max} characters from A-Z a-z 0-9 _ -")]
    BadChars {
        kind: &'static str,
        value: String,
        max: usize,
    },
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check_token(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() || value.len() > max || !value.chars().all(is_token_char) {
        return Err(IdError::BadChars {
            kind,
            value: value.to_string(),
            max,
        });
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_token($kind, &value, $max)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_id!(
    /// An account id: `[A-Za-z0-9_-]{1,64}`, unique across the deployment.
    AccountId, "account id", 64
);
token_id!(
    /// A worker id (pod name or host-pid): `[A-Za-z0-9_-]{1,64}`.
    WorkerId, "worker id", 64
);
token_id!(
    /// A job id. Deterministic for scheduled work (`kind-account-slot`), so a re-published job is
    /// deduplicated by JetStream (`Nats-Msg-Id`) and its orders get the same client order ids.
    JobId, "job id", 200
);

/// The kinds of job the coordinator publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Enforce,
    Normalize,
    ExitSweep,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Enforce, JobKind::Normalize, JobKind::ExitSweep];

    /// The token used in subjects and ids.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Enforce => "enforce",
            JobKind::Normalize => "normalize",
            JobKind::ExitSweep => "exit_sweep",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| IdError::BadChars {
                kind: "job kind",
                value: s.to_string(),
                max: 10,
            })
    }
}

impl JobId {
    /// The id of a scheduled job: the same (kind, account, slot) always gives the same id.
    /// `slot` is the schedule slot number (start of the interval in unix seconds / interval).
    pub fn scheduled(kind: JobKind, account: &AccountId, slot: u64) -> JobId {
        JobId(format!("{}-{}-{}", kind.as_str(), account, slot))
    }

    /// The id of an operator-requested job, unique per request.
    pub fn requested(kind: JobKind, account: &AccountId, request: Uuid) -> JobId {
        JobId(format!(
            "{}-{}-req-{}",
            kind.as_str(),
            account,
            request.simple()
        ))
    }
}

/// The namespace of client order ids (a fixed, random UUID; never change it: ids derived from it
/// are how a re-run job recognises the orders it already placed).
const CLIENT_ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x6e1a_5c7e_3f0b_4d2a_9b8e_51c4_aa17_d3f2);

/// A client order id: UUIDv5 of (account, job id, symbol). It fits every broker's field,
/// Kraken's included, and the same intent always maps to the same id (DESIGN R1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientOrderId(Uuid);

impl ClientOrderId {
    pub fn derive(account: &AccountId, job: &JobId, symbol: &Symbol) -> ClientOrderId {
        let name = format!("{}\n{}\n{}", account, job, symbol);
        ClientOrderId(Uuid::new_v5(&CLIENT_ORDER_NAMESPACE, name.as_bytes()))
    }

    pub fn from_uuid(uuid: Uuid) -> ClientOrderId {
        ClientOrderId(uuid)
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated 36-character form: accepted by Coinbase, Kraken (`cl_ord_id`) and Alpaca.
        write!(f, "{}", self.0.hyphenated())
    }
}

impl FromStr for ClientOrderId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ClientOrderId)
    }
}

/// Why a symbol was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SymbolError {
    #[error(
        "symbol {0:?} is not canonical: write BASE-QUOTE in upper case, e.g. BTC-USD or BRK.B-USD"
    )]
    NotCanonical(String),
    #[error("symbol token {0:?} is not a valid encoded symbol")]
    BadToken(String),
}

/// A canonical `BASE-QUOTE` symbol (`BTC-USD`, `BRK.B-USD`). Bases may contain `.`; the quote is
/// alphanumeric. Brokers' names (`XXBTZUSD`, `BTC/USD`) are mapped to this form by the adapters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    text: String,
    dash: usize,
}

impl Symbol {
    pub fn new(text: impl Into<String>) -> Result<Symbol, SymbolError> {
        let text = text.into();
        let bad = || SymbolError::NotCanonical(text.clone());
        let dash = text.rfind('-').ok_or_else(bad)?;
        let (base, quote) = (&text[..dash], &text[dash + 1..]);
        let base_ok = !base.is_empty()
            && base.len() <= 32
            && base
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.');
        let quote_ok = !quote.is_empty()
            && quote.len() <= 16
            && quote
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !base_ok || !quote_ok || base.starts_with('.') || base.ends_with('.') {
            return Err(bad());
        }
        Ok(Symbol { text, dash })
    }

    /// Builds `BASE-QUOTE` from its two halves.
    pub fn from_parts(base: &str, quote: &str) -> Result<Symbol, SymbolError> {
        Symbol::new(format!("{base}-{quote}"))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn base(&self) -> &str {
        &self.text[..self.dash]
    }

    pub fn quote(&self) -> &str {
        &self.text[self.dash + 1..]
    }

    /// One NATS subject/KV token for this symbol: every byte outside `[A-Za-z0-9_-]` becomes
    /// `=XX` (hex), so `BRK.B-USD` is the single token `BRK=2EB-USD`.
    pub fn token(&self) -> String {
        encode_token(&self.text)
    }

    pub fn from_token(token: &str) -> Result<Symbol, SymbolError> {
        let text = decode_token(token).ok_or_else(|| SymbolError::BadToken(token.to_string()))?;
        Symbol::new(text)
    }
}

/// Encodes any string as one NATS token (see [`Symbol::token`]).
pub fn encode_token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_token`]; `None` for malformed input.
pub fn decode_token(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, SymbolError> {
        Symbol::new(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Symbol::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_restricted_to_subject_safe_characters() {
        assert!(AccountId::new("user-0001").is_ok());
        assert!(AccountId::new("platform_A").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(AccountId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn symbols_are_canonical_base_quote() {
        let s = Symbol::new("BRK.B-USD").unwrap();
        assert_eq!((s.base(), s.quote()), ("BRK.B", "USD"));
        for bad in [
            "BTCUSD", "btc-usd", "BTC/USD", "-USD", "BTC-", "XBT-US.D", ".X-USD",
        ] {
            assert!(Symbol::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn symbol_tokens_are_one_subject_token_and_reversible() {
        let s = Symbol::new("BRK.B-USD").unwrap();
        assert_eq!(s.token(), "BRK=2EB-USD");
        assert_eq!(Symbol::from_token(&s.token()).unwrap(), s);
        assert!(Symbol::from_token("BRK=ZZ-USD").is_err());
    }

    #[test]
    fn client_order_ids_are_deterministic_per_intent() {
        let a = AccountId::new("user-1").unwrap();
        let j = JobId::scheduled(JobKind::Enforce, &a, 42);
        let btc = Symbol::new("BTC-USD").unwrap();
        let eth = Symbol::new("ETH-USD").unwrap();
        assert_eq!(
            ClientOrderId::derive(&a, &j, &btc),
            ClientOrderId::derive(&a, &j, &btc)
        );
        assert_ne!(
            ClientOrderId::derive(&a, &j, &btc),
            ClientOrderId::derive(&a, &j, &eth)
        );
        let other = AccountId::new("user-2").unwrap();
        assert_ne!(
            ClientOrderId::derive(&a, &j, &btc),
            ClientOrderId::derive(&other, &j, &btc)
        );
        assert_eq!(ClientOrderId::derive(&a, &j, &btc).to_string().len(), 36);
    }

    #[test]
    fn scheduled_job_ids_are_stable() {
        let a = AccountId::new("user-1").unwrap();
        assert_eq!(
            JobId::scheduled(JobKind::ExitSweep, &a, 7).as_str(),
            "exit_sweep-user-1-7"
        );
    }
}

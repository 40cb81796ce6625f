//! `[[accounts]]`: one entry per broker account, in the config file or in `accounts_file`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};

use nija_proto::AccountId;
use nija_proto::plan::{AccountType, Mode};
use toml::Value;
use url::Url;

use crate::error::{ConfigError, Warning};
use crate::policy::{PolicyOverrides, read_overrides};
use crate::read::{Problems, Section, type_name};

/// The broker an account lives at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Broker {
    Coinbase,
    Kraken,
    Alpaca,
}

impl Broker {
    pub const ALL: [Broker; 3] = [Broker::Coinbase, Broker::Kraken, Broker::Alpaca];

    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Coinbase => "coinbase",
            Broker::Kraken => "kraken",
            Broker::Alpaca => "alpaca",
        }
    }

    /// The live API host (adapters append their standard paths to it).
    pub fn live_base_url(self) -> &'static str {
        match self {
            Broker::Coinbase => "https://api.coinbase.com",
            Broker::Kraken => "https://api.kraken.com",
            Broker::Alpaca => "https://api.alpaca.markets",
        }
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Alpaca's market-data host, shared by its live and paper trading hosts.
pub const ALPACA_DATA_URL: &str = "https://data.alpaca.markets";
const ALPACA_TRADING_HOSTS: [&str; 2] = ["api.alpaca.markets", "paper-api.alpaca.markets"];

/// Where an account's credentials are read from. Never the credentials themselves: they travel
/// nowhere and are loaded only by the worker that leases the account (DESIGN R8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// A JSON file (path resolved against the config file's folder).
    File(PathBuf),
    /// An environment variable holding the JSON.
    Env(String),
    /// A Kubernetes Secret in the worker's namespace, read through the API; `key` names the
    /// entry (`None`: the Secret's only entry).
    K8sSecret { name: String, key: Option<String> },
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::File(path) => write!(f, "file {}", path.display()),
            Credentials::Env(var) => write!(f, "env {var}"),
            Credentials::K8sSecret { name, key: None } => write!(f, "k8s_secret {name}"),
            Credentials::K8sSecret {
                name,
                key: Some(key),
            } => write!(f, "k8s_secret {name} key {key}"),
        }
    }
}

/// One configured account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    pub id: AccountId,
    pub account_type: AccountType,
    pub broker: Broker,
    /// Scheme + host + port (+ path prefix), without a trailing slash; `None`: the live host.
    pub base_url: Option<String>,
    /// Alpaca market data host override.
    pub data_url: Option<String>,
    pub credentials: Credentials,
    /// `None`: the global `mode`.
    pub mode: Option<Mode>,
    pub policy: PolicyOverrides,
    /// Where the account is declared (`accounts[3]` or `accounts.toml:accounts[3]`).
    pub origin: String,
}

impl AccountConfig {
    /// The trading API base URL: the configured one, else the broker's live host.
    pub fn effective_base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or(self.broker.live_base_url())
    }

    /// Alpaca's market data base URL: `data_url` if set; else Alpaca's data host when trading
    /// against Alpaca's live or paper host; else the trading base URL itself (a simulator or
    /// proxy serves both, and a test must never reach the live data host by default).
    pub fn effective_data_url(&self) -> &str {
        if let Some(url) = &self.data_url {
            return url;
        }
        let base = self.effective_base_url();
        let alpaca_host = Url::parse(base)
            .ok()
            .and_then(|u| u.host_str().map(|h| ALPACA_TRADING_HOSTS.contains(&h)))
            .unwrap_or(false);
        if alpaca_host { ALPACA_DATA_URL } else { base }
    }
}

/// Reads the `accounts` array of one file. `prefix` is `""` for the config file and
/// `"<file>:"` for `accounts_file`.
pub(crate) fn read_accounts(
    value: Option<&Value>,
    prefix: &str,
    base: &Path,
    p: &mut Problems,
) -> Vec<AccountConfig> {
    let key = format!("{prefix}accounts");
    let items = match value {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            p.error(ConfigError::WrongType {
                key,
                expected: "an array of tables ([[accounts]])",
                found: type_name(other),
            });
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let origin = format!("{key}[{i}]");
        match item {
            Value::Table(t) => {
                let mut sec = Section::new(origin, t);
                if let Some(account) = read_account(&mut sec, base, p) {
                    out.push(account);
                }
                sec.finish(p);
            }
            other => p.error(ConfigError::WrongType {
                key: origin,
                expected: "a table",
                found: type_name(other),
            }),
        }
    }
    out
}

fn read_account(sec: &mut Section<'_>, base: &Path, p: &mut Problems) -> Option<AccountConfig> {
    let id = sec
        .required_string("id", "every account needs an id", p)
        .and_then(|raw| match AccountId::new(&raw) {
            Ok(id) => Some(id),
            Err(e) => {
                p.invalid(sec.key("id"), raw, e.to_string());
                None
            }
        });
    let account_type = sec
        .required_string("type", "platform or user", p)
        .and_then(|raw| match raw.as_str() {
            "platform" => Some(AccountType::Platform),
            "user" => Some(AccountType::User),
            _ => {
                p.invalid(sec.key("type"), raw, "expected \"platform\" or \"user\"");
                None
            }
        });
    let broker = sec
        .required_string("broker", "coinbase, kraken or alpaca", p)
        .and_then(
            |raw| match Broker::ALL.into_iter().find(|b| b.as_str() == raw) {
                Some(b) => Some(b),
                None => {
                    p.invalid(
                        sec.key("broker"),
                        raw,
                        "expected \"coinbase\", \"kraken\" or \"alpaca\"",
                    );
                    None
                }
            },
        );
    let base_url = sec
        .string("base_url", p)
        .and_then(|raw| check_url(&sec.key("base_url"), &raw, p));
    let data_url = sec
        .string("data_url", p)
        .and_then(|raw| check_url(&sec.key("data_url"), &raw, p));
    if data_url.is_some() && broker.is_some_and(|b| b != Broker::Alpaca) {
        p.invalid(
            sec.key("data_url"),
            data_url.clone().unwrap_or_default(),
            "data_url applies to alpaca accounts only",
        );
    }
    let credentials = read_credentials(sec, base, p);
    let mode = sec
        .string("mode", p)
        .and_then(|raw| read_mode(&sec.key("mode"), raw, p));
    if sec.value("user_max_positions").is_some() {
        p.invalid(
            sec.key("user_max_positions"),
            "set",
            "user_max_positions is a [policy] default; an account sets its own cap with \
             max_positions",
        );
    }
    let policy = read_overrides(sec, p);
    Some(AccountConfig {
        id: id?,
        account_type: account_type?,
        broker: broker?,
        base_url,
        data_url,
        credentials: credentials?,
        mode,
        policy,
        origin: sec.path().to_string(),
    })
}

pub(crate) fn read_mode(key: &str, raw: String, p: &mut Problems) -> Option<Mode> {
    match raw.as_str() {
        "act" => Some(Mode::Act),
        "observe" => Some(Mode::Observe),
        _ => {
            p.invalid(key.to_string(), raw, "expected \"act\" or \"observe\"");
            None
        }
    }
}

fn read_credentials(sec: &mut Section<'_>, base: &Path, p: &mut Problems) -> Option<Credentials> {
    if sec.value("credentials").is_none() {
        p.error(ConfigError::Missing {
            key: sec.key("credentials"),
            hint: "write credentials = { file = \"...\" }, { env = \"VAR\" } or \
                   { k8s_secret = \"name\" }",
        });
        return None;
    }
    let mut c = sec.section("credentials", p);
    let file = c.path_in("file", base, p);
    let env = c.string("env", p);
    let secret = c.string("k8s_secret", p);
    let secret_key = c.string("key", p);
    c.finish(p);

    if let Some(var) = &env {
        let valid = var
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && var
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !valid {
            p.invalid(
                format!("{}.env", creds_key(sec)),
                var,
                "not an environment variable name (letters, digits, _)",
            );
            return None;
        }
    }
    if let Some(name) = &secret
        && !is_k8s_name(name)
    {
        p.invalid(
            format!("{}.k8s_secret", creds_key(sec)),
            name,
            "not a Kubernetes Secret name (lower-case letters, digits, '-', '.')",
        );
        return None;
    }
    if secret_key.is_some() && secret.is_none() {
        p.invalid(
            format!("{}.key", creds_key(sec)),
            secret_key.unwrap_or_default(),
            "key names an entry of a k8s_secret",
        );
        return None;
    }
    let mut given: Vec<Credentials> = Vec::new();
    given.extend(file.map(Credentials::File));
    given.extend(env.map(Credentials::Env));
    given.extend(secret.map(|name| Credentials::K8sSecret {
        name,
        key: secret_key,
    }));
    match given.len() {
        1 => given.pop(),
        n => {
            p.invalid(
                creds_key(sec),
                format!("{n} sources"),
                "give exactly one of file, env or k8s_secret",
            );
            None
        }
    }
}

fn creds_key(sec: &Section<'_>) -> String {
    sec.key("credentials")
}

fn is_k8s_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
}

/// An http(s) URL with a host, no query or fragment; returned without a trailing slash.
fn check_url(key: &str, raw: &str, p: &mut Problems) -> Option<String> {
    let url = match Url::parse(raw.trim()) {
        Ok(url) => url,
        Err(e) => {
            p.invalid(key.to_string(), raw, format!("not a URL ({e})"));
            return None;
        }
    };
    let reason = if !matches!(url.scheme(), "http" | "https") {
        Some("the scheme must be http or https")
    } else if url.host().is_none() {
        Some("no host")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("a base URL has no query or fragment")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("credentials do not belong in a URL")
    } else {
        None
    };
    if let Some(reason) = reason {
        p.invalid(key.to_string(), raw, reason);
        return None;
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        p.warn(Warning::PlainHttp {
            key: key.to_string(),
            url: raw.to_string(),
        });
    }
    Some(url.as_str().trim_end_matches('/').to_string())
}

/// Checks across all accounts: unique ids, no two accounts on the same credentials, and
/// credentials files not readable by others.
pub(crate) fn check_all(accounts: &[AccountConfig], p: &mut Problems) {
    let mut ids: HashMap<&AccountId, &str> = HashMap::with_capacity(accounts.len());
    let mut sources: HashMap<&Credentials, &str> = HashMap::with_capacity(accounts.len());
    for a in accounts {
        match ids.entry(&a.id) {
            Entry::Occupied(first) => p.error(ConfigError::DuplicateAccount {
                key: format!("{}.id", a.origin),
                id: a.id.to_string(),
                first: first.get().to_string(),
            }),
            Entry::Vacant(slot) => {
                slot.insert(&a.origin);
            }
        }
        match sources.entry(&a.credentials) {
            Entry::Occupied(other) => p.error(ConfigError::SharedCredentials {
                key: format!("{}.credentials", a.origin),
                source_desc: a.credentials.to_string(),
                other: other.get().to_string(),
            }),
            Entry::Vacant(slot) => {
                slot.insert(&a.origin);
            }
        }
        if let Credentials::File(path) = &a.credentials {
            check_file_mode(&format!("{}.credentials.file", a.origin), path, p);
        }
    }
}

/// Warns when a credentials file is accessible by group or others. A missing file is not a
/// problem here: only the worker that leases the account reads it (and reports it then).
#[cfg(unix)]
fn check_file_mode(key: &str, path: &Path, p: &mut Problems) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            p.warn(Warning::CredentialsFileExposed {
                key: key.to_string(),
                file: path.to_path_buf(),
                mode,
            });
        }
    }
}

#[cfg(not(unix))]
fn check_file_mode(_key: &str, _path: &Path, _p: &mut Problems) {}

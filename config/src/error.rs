//! What can be wrong with a configuration, each problem with the key it is about.
//!
//! Loading collects every problem before it fails, so an operator fixes a file in one pass.
//! Keys are written as paths: `policy.dust_threshold_usd`, `accounts[3].max_positions`, and for
//! accounts from `accounts_file`, `accounts.toml:accounts[3].max_positions`.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("no configuration file: pass --config FILE or set NIJA_CONFIG")]
    NoConfigFile,
    #[error("cannot read {}: {reason}", file.display())]
    Read { file: PathBuf, reason: String },
    #[error("{} is not valid TOML: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{key}: unknown key{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    #[error("{key}: required key is missing ({hint})")]
    Missing { key: String, hint: &'static str },
    #[error("{key}: expected {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "{key}: {value} is a TOML float; money, prices and percentages are read exactly, so quote \
         it (\"{value}\") or write an integer"
    )]
    Float { key: String, value: String },
    #[error(
        "{key}: {value:?} is not a duration ({reason}); write e.g. \"500ms\", \"2s\", \"1h30m\""
    )]
    Duration {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: {value:?} is invalid: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: account id {id:?} is already used by {first}; account ids must be unique")]
    DuplicateAccount {
        key: String,
        id: String,
        first: String,
    },
    #[error(
        "{key}: credentials {source_desc} are also used by {other}; two accounts may not share an \
         API key (Kraken nonces and order ownership are per key)"
    )]
    SharedCredentials {
        key: String,
        source_desc: String,
        other: String,
    },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// The key path the problem is about (the variable's name for an environment problem).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::NoConfigFile | ConfigError::Read { .. } | ConfigError::Syntax { .. } => {
                None
            }
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::WrongType { key, .. }
            | ConfigError::Float { key, .. }
            | ConfigError::Duration { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::DuplicateAccount { key, .. }
            | ConfigError::SharedCredentials { key, .. } => Some(key),
            ConfigError::Env { var, .. } => Some(var),
        }
    }
}

/// Every problem found while loading, in file order. Its `Display` lists them one per line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ConfigErrors {
    /// The file that was loaded, when there was one.
    pub file: Option<PathBuf>,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn one(file: Option<PathBuf>, error: ConfigError) -> ConfigErrors {
        ConfigErrors {
            file,
            errors: vec![error],
        }
    }

    /// The problems about `key`.
    pub fn for_key<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.errors.iter().filter(move |e| e.key() == Some(key))
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        let plural = if n == 1 { "" } else { "s" };
        match &self.file {
            Some(file) => writeln!(f, "{n} problem{plural} in {}:", file.display())?,
            None => writeln!(f, "{n} problem{plural} in the configuration:")?,
        }
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// Something legal but probably unintended; loading succeeds and the caller logs these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Warning {
    #[error(
        "{key}: credentials file {} has mode {mode:o} and is accessible by group or others; \
         run chmod 600 on it (or set defaultMode: 0400 on the Secret volume)",
        file.display()
    )]
    CredentialsFileExposed {
        key: String,
        file: PathBuf,
        mode: u32,
    },
    #[error("{key}: {url} sends credentials over plain http to a host that is not loopback")]
    PlainHttp { key: String, url: String },
    #[error("{key}: account {account:?} is not configured here (it may come from the registry)")]
    MetricsAccountUnknown { key: String, account: String },
}

impl Warning {
    pub fn key(&self) -> &str {
        match self {
            Warning::CredentialsFileExposed { key, .. }
            | Warning::PlainHttp { key, .. }
            | Warning::MetricsAccountUnknown { key, .. } => key,
        }
    }
}

//! The environment as a value.
//!
//! Configuration reads a few environment variables (`NIJA_CONFIG`, `NATS_URL`,
//! `MAX_POSITIONS_ALLOWED`). They are read through [`Env`] so that tests pass a map instead of
//! mutating the process environment, which is shared by every test thread (the approach of
//! linkerd2-proxy's `Strings` trait).

use std::collections::BTreeMap;

/// Names the file to load when `--config` is not given.
pub const NIJA_CONFIG: &str = "NIJA_CONFIG";
/// Overrides `[nats] url`; several URLs are separated by commas.
pub const NATS_URL: &str = "NATS_URL";
/// Sets the PLATFORM accounts' default cap (a per-account `max_positions` still wins).
pub const MAX_POSITIONS_ALLOWED: &str = "MAX_POSITIONS_ALLOWED";

/// A source of environment variables.
pub trait Env {
    /// The value of `name`; `None` when unset. An empty (or blank) value counts as unset, the way
    /// container platforms express "not set".
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // A value that is not UTF-8 is passed on lossily, so that it fails validation with a clear
        // message instead of silently counting as unset.
        let value = std::env::var_os(name)?;
        non_blank(value.to_string_lossy().into_owned())
    }
}

/// A fixed set of variables (tests, or a caller that already collected them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEnv(BTreeMap<String, String>);

impl MapEnv {
    pub fn new() -> MapEnv {
        MapEnv::default()
    }

    /// Adds or replaces one variable.
    pub fn with(mut self, name: &str, value: &str) -> MapEnv {
        self.0.insert(name.to_string(), value.to_string());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> MapEnv {
        MapEnv(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().and_then(non_blank)
    }
}

fn non_blank(value: String) -> Option<String> {
    if value.trim().is_empty() {
        None
    } else {
        Some(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = MapEnv::new().with("A", "1").with("B", "  ");
        assert_eq!(env.var("A").as_deref(), Some("1"));
        assert_eq!(env.var("B"), None);
        assert_eq!(env.var("C"), None);
    }

    #[test]
    fn the_process_environment_is_read_as_is() {
        // Cargo sets this variable for the test process; nothing here sets or changes one.
        assert_eq!(
            ProcessEnv.var("CARGO_MANIFEST_DIR").as_deref(),
            Some(env!("CARGO_MANIFEST_DIR"))
        );
        assert_eq!(ProcessEnv.var("NIJA_SURELY_UNSET_VARIABLE_4F2A"), None);
    }
}

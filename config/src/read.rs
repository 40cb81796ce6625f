//! Walking a parsed TOML table by hand, collecting problems instead of stopping at the first.
//!
//! serde's derive stops at the first error and cannot tell "a float where money belongs" from any
//! other type error, so sections are read key by key: every getter records the key as known, and
//! [`Section::finish`] reports the keys nobody asked for (typos must not pass silently).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use toml::{Table, Value};

use crate::error::{ConfigError, Warning};

/// The longest duration or hold time accepted anywhere (ten years): beyond it a value is a typo,
/// and every accepted duration converts to `chrono::Duration` without overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Problems and warnings collected while loading.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

impl Problems {
    pub fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    pub fn invalid(&mut self, key: String, value: impl ToString, reason: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.into(),
        });
    }

    pub fn warn(&mut self, w: Warning) {
        self.warnings.push(w);
    }
}

/// The TOML type name of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// `prefix.key`; `key` at the root of the config file, `file:key` at the root of another file.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() || prefix.ends_with(':') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

/// One table being read, with its key path and the keys asked for so far.
pub(crate) struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    known: Vec<&'static str>,
}

impl<'t> Section<'t> {
    pub fn new(path: impl Into<String>, table: &'t Table) -> Section<'t> {
        Section {
            path: path.into(),
            table: Some(table),
            known: Vec::new(),
        }
    }

    /// A section absent from the file: every key takes its default.
    pub fn absent(path: impl Into<String>) -> Section<'t> {
        Section {
            path: path.into(),
            table: None,
            known: Vec::new(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn key(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// The raw value of `name`, marking the key as known.
    pub fn value(&mut self, name: &'static str) -> Option<&'t Value> {
        self.known.push(name);
        self.table?.get(name)
    }

    /// A sub-table (`[policy]`, `credentials = { ... }`); absent or of the wrong type reads as
    /// empty, the latter with a problem.
    pub fn section(&mut self, name: &'static str, p: &mut Problems) -> Section<'t> {
        let key = self.key(name);
        match self.value(name) {
            None => Section::absent(key),
            Some(Value::Table(t)) => Section::new(key, t),
            Some(other) => {
                p.error(ConfigError::WrongType {
                    key,
                    expected: "a table",
                    found: type_name(other),
                });
                Section::absent(self.key(name))
            }
        }
    }

    /// Reports every key of this table that no getter asked for.
    pub fn finish(self, p: &mut Problems) {
        let Some(table) = self.table else { return };
        for name in table.keys() {
            if !self.known.contains(&name.as_str()) {
                p.error(ConfigError::UnknownKey {
                    key: join(&self.path, name),
                    suggestion: suggest(name, &self.known).map(str::to_string),
                });
            }
        }
    }

    pub fn string(&mut self, name: &'static str, p: &mut Problems) -> Option<String> {
        match self.value(name)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong(name, "a string", other, p);
                None
            }
        }
    }

    pub fn required_string(
        &mut self,
        name: &'static str,
        hint: &'static str,
        p: &mut Problems,
    ) -> Option<String> {
        if self.table.is_some_and(|t| t.contains_key(name)) {
            self.string(name, p)
        } else {
            self.known.push(name);
            p.error(ConfigError::Missing {
                key: self.key(name),
                hint,
            });
            None
        }
    }

    /// A string or an array of strings.
    pub fn string_or_list(&mut self, name: &'static str, p: &mut Problems) -> Option<Vec<String>> {
        match self.value(name)? {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(_) => self.string_list_of(name, p),
            other => {
                self.wrong(name, "a string or an array of strings", other, p);
                None
            }
        }
    }

    /// An array of strings.
    pub fn string_list(&mut self, name: &'static str, p: &mut Problems) -> Option<Vec<String>> {
        match self.value(name)? {
            Value::Array(_) => self.string_list_of(name, p),
            other => {
                self.wrong(name, "an array of strings", other, p);
                None
            }
        }
    }

    fn string_list_of(&self, name: &'static str, p: &mut Problems) -> Option<Vec<String>> {
        let Some(Value::Array(items)) = self.table?.get(name) else {
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => {
                    ok = false;
                    p.error(ConfigError::WrongType {
                        key: format!("{}[{i}]", self.key(name)),
                        expected: "a string",
                        found: type_name(other),
                    });
                }
            }
        }
        ok.then_some(out)
    }

    /// A non-negative integer within `min..=max`.
    pub fn uint(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
        p: &mut Problems,
    ) -> Option<u64> {
        match self.value(name)? {
            Value::Integer(n) => match u64::try_from(*n) {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    p.invalid(
                        self.key(name),
                        n,
                        format!("must be between {min} and {max}"),
                    );
                    None
                }
            },
            Value::Float(f) => {
                p.invalid(self.key(name), f, "must be a whole number");
                None
            }
            other => {
                self.wrong(name, "an integer", other, p);
                None
            }
        }
    }

    /// A humantime duration (`"500ms"`, `"2s"`, `"1h30m"`), at most [`MAX_DURATION`].
    pub fn duration(
        &mut self,
        name: &'static str,
        allow_zero: bool,
        p: &mut Problems,
    ) -> Option<Duration> {
        let raw = self.value(name)?;
        let key = self.key(name);
        parse_duration(&key, raw, allow_zero, p)
    }

    /// A duration, or `"off"` (`Some(None)`).
    pub fn duration_or_off(
        &mut self,
        name: &'static str,
        p: &mut Problems,
    ) -> Option<Option<Duration>> {
        let raw = self.value(name)?;
        if raw
            .as_str()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("off"))
        {
            return Some(None);
        }
        let key = self.key(name);
        parse_duration(&key, raw, false, p).map(Some)
    }

    /// An exact decimal written as a string or an integer; a float is refused with a hint to
    /// quote it.
    pub fn decimal(&mut self, name: &'static str, p: &mut Problems) -> Option<Decimal> {
        let raw = self.value(name)?;
        decimal_of(&self.key(name), raw, p)
    }

    /// A decimal number where a float is harmless (hours): string, integer or float.
    pub fn number(&mut self, name: &'static str, p: &mut Problems) -> Option<Decimal> {
        let raw = self.value(name)?;
        let key = self.key(name);
        match raw {
            Value::Float(f) => match Decimal::from_str(&f.to_string()) {
                Ok(d) => Some(d),
                Err(e) => {
                    p.invalid(key, f, format!("not a decimal number ({e})"));
                    None
                }
            },
            _ => decimal_of(&key, raw, p),
        }
    }

    /// A file path; a relative one is resolved against `base` (the config file's folder).
    pub fn path_in(
        &mut self,
        name: &'static str,
        base: &Path,
        p: &mut Problems,
    ) -> Option<PathBuf> {
        let raw = self.string(name, p)?;
        if raw.trim().is_empty() {
            p.invalid(self.key(name), raw, "empty path");
            return None;
        }
        Some(base.join(raw))
    }

    fn wrong(&self, name: &str, expected: &'static str, found: &Value, p: &mut Problems) {
        p.error(ConfigError::WrongType {
            key: self.key(name),
            expected,
            found: type_name(found),
        });
    }
}

fn decimal_of(key: &str, raw: &Value, p: &mut Problems) -> Option<Decimal> {
    match raw {
        Value::String(s) => match Decimal::from_str_exact(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                p.invalid(key.to_string(), s, format!("not a decimal number ({e})"));
                None
            }
        },
        Value::Integer(n) => Some(Decimal::from(*n)),
        Value::Float(f) => {
            p.error(ConfigError::Float {
                key: key.to_string(),
                value: format!("{f:?}"),
            });
            None
        }
        other => {
            p.error(ConfigError::WrongType {
                key: key.to_string(),
                expected: "a decimal string such as \"1.50\" or an integer",
                found: type_name(other),
            });
            None
        }
    }
}

fn parse_duration(key: &str, raw: &Value, allow_zero: bool, p: &mut Problems) -> Option<Duration> {
    let Value::String(s) = raw else {
        p.error(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a duration string such as \"2s\"",
            found: type_name(raw),
        });
        return None;
    };
    let d = match humantime::parse_duration(s.trim()) {
        Ok(d) => d,
        Err(e) => {
            p.error(ConfigError::Duration {
                key: key.to_string(),
                value: s.clone(),
                reason: e.to_string(),
            });
            return None;
        }
    };
    if d.is_zero() && !allow_zero {
        p.invalid(key.to_string(), s, "must be longer than zero");
        return None;
    }
    if d > MAX_DURATION {
        p.invalid(key.to_string(), s, "longer than ten years");
        return None;
    }
    Some(d)
}

/// The known key closest to a misspelt one, if it is close enough to be the likely intent.
fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_keys_get_a_suggestion_and_strangers_none() {
        let known = ["dust_threshold_usd", "max_positions", "stop_loss_pct"];
        assert_eq!(
            suggest("dust_treshold_usd", &known),
            Some("dust_threshold_usd")
        );
        assert_eq!(suggest("max_position", &known), Some("max_positions"));
        assert_eq!(suggest("colour", &known), None);
    }
}

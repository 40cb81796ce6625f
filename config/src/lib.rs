//! The one nija configuration (DESIGN §5, §5.2).
//!
//! Every binary reads the same TOML file (`--config FILE` or `NIJA_CONFIG`), optionally with its
//! accounts in a separate `accounts_file`. Loading validates everything and reports **every**
//! problem at once, each with its key path, so a broken file is fixed in one pass; warnings (a
//! credentials file readable by others, plain http to a remote host) come back beside the
//! configuration for the caller to log.
//!
//! Precedence of the policy keys: a per-account key > the environment (`MAX_POSITIONS_ALLOWED`
//! sets the PLATFORM default) > `[policy]` > the built-in defaults. `NATS_URL` replaces
//! `[nats] url`. The environment is read through [`Env`], so tests never touch the process's.
//!
//! The file format is exactly DESIGN §5's; the simulator writes it as text, so there is no writer
//! here.

mod accounts;
mod env;
mod error;
mod policy;
mod read;
mod settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nija_policy::PolicyParams;
use nija_proto::plan::Mode;
use nija_proto::{AccountId, Partition};
use toml::Table;

pub use accounts::{ALPACA_DATA_URL, AccountConfig, Broker, Credentials};
pub use env::{Env, MAX_POSITIONS_ALLOWED, MapEnv, NATS_URL, NIJA_CONFIG, ProcessEnv};
pub use error::{ConfigError, ConfigErrors, Warning};
pub use policy::{
    DEFAULT_PLATFORM_MAX_POSITIONS, DEFAULT_USER_MAX_POSITIONS, PolicyDefaults, PolicyOverrides,
};
pub use settings::{
    CoordinatorSettings, DEFAULT_NATS_URL, HttpSettings, MetricsSettings, NatsSettings, Role,
    Schedule, TlsSettings, WorkerSettings,
};

use read::{Problems, Section};

/// The whole deployment's configuration, validated and with the environment applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it was loaded from (`None` when built from a string without a file).
    pub file: Option<PathBuf>,
    /// Global mode; an account's own `mode` wins.
    pub mode: Mode,
    pub nats: NatsSettings,
    pub policy: PolicyDefaults,
    pub schedule: Schedule,
    pub worker: WorkerSettings,
    pub coordinator: CoordinatorSettings,
    pub http: HttpSettings,
    pub tls: TlsSettings,
    pub metrics: MetricsSettings,
    /// The accounts of the config file followed by those of `accounts_file`.
    pub accounts: Vec<AccountConfig>,
    /// Position of each account in `accounts` (fleets have many thousands); checked on use, so
    /// a caller editing `accounts` gets a slower lookup, never a wrong one.
    index: HashMap<AccountId, usize>,
}

/// A loaded configuration and the warnings met while loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

impl Config {
    /// The file to load: `--config` if given, else `NIJA_CONFIG`.
    pub fn locate(cli: Option<&Path>, env: &dyn Env) -> Option<PathBuf> {
        cli.map(Path::to_path_buf)
            .or_else(|| env.var(NIJA_CONFIG).map(PathBuf::from))
    }

    /// Loads the file named by `--config` or `NIJA_CONFIG`.
    pub fn load_located(cli: Option<&Path>, env: &dyn Env) -> Result<Loaded, ConfigErrors> {
        let file = Config::locate(cli, env)
            .ok_or_else(|| ConfigErrors::one(None, ConfigError::NoConfigFile))?;
        Config::load(&file, env)
    }

    /// Loads and validates a config file (and its `accounts_file`), applying the environment.
    pub fn load(file: &Path, env: &dyn Env) -> Result<Loaded, ConfigErrors> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigErrors::one(
                Some(file.to_path_buf()),
                ConfigError::Read {
                    file: file.to_path_buf(),
                    reason: e.to_string(),
                },
            )
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let mut loaded = from_text(&text, file, base, env).map_err(|mut e| {
            e.file = Some(file.to_path_buf());
            e
        })?;
        loaded.config.file = Some(file.to_path_buf());
        Ok(loaded)
    }

    /// Parses configuration text; relative paths (credentials, `accounts_file`, certificates)
    /// are resolved against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        base_dir: &Path,
        env: &dyn Env,
    ) -> Result<Loaded, ConfigErrors> {
        from_text(text, Path::new("<config>"), base_dir, env)
    }

    /// The account with this id.
    pub fn account(&self, id: &AccountId) -> Option<&AccountConfig> {
        match self.index.get(id).and_then(|&i| self.accounts.get(i)) {
            Some(a) if &a.id == id => Some(a),
            _ => self.accounts.iter().find(|a| &a.id == id),
        }
    }

    /// The resolved policy parameters of an account.
    pub fn policy_for(&self, account: &AccountConfig) -> PolicyParams {
        self.policy.resolve(
            account.account_type,
            &account.policy,
            self.worker.max_price_age,
        )
    }

    /// The account's mode: its own `mode`, else the global one.
    pub fn mode_for(&self, account: &AccountConfig) -> Mode {
        account.mode.unwrap_or(self.mode)
    }

    /// The partition an account's jobs travel on.
    pub fn partition_of(&self, account: &AccountId) -> Partition {
        Partition::of(account, self.worker.partitions)
    }

    /// Whether an account gets its own metric series (`[metrics] per_account`).
    pub fn per_account_metrics(&self, account: &AccountId) -> bool {
        self.metrics.per_account.contains(account)
    }

    /// The metrics/health listener of a process role.
    pub fn http_listen(&self, role: Role) -> std::net::SocketAddr {
        self.http.listen_for(role)
    }

    /// The exit sweep interval; `None` when sweeps are off.
    pub fn exit_sweep_every(&self) -> Option<Duration> {
        self.schedule.exit_sweep_every
    }
}

fn from_text(text: &str, file: &Path, base: &Path, env: &dyn Env) -> Result<Loaded, ConfigErrors> {
    let root = parse(text, file).map_err(|e| ConfigErrors::one(None, e))?;
    let mut p = Problems::default();
    let mut config = read_root(&root, base, &mut p);
    apply_env(&mut config, env, &mut p);
    accounts::check_all(&config.accounts, &mut p);
    config.index = config
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();
    for id in &config.metrics.per_account {
        if !config.index.contains_key(id) {
            p.warn(Warning::MetricsAccountUnknown {
                key: "metrics.per_account".to_string(),
                account: id.to_string(),
            });
        }
    }
    if p.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: p.warnings,
        })
    } else {
        Err(ConfigErrors {
            file: None,
            errors: p.errors,
        })
    }
}

fn parse(text: &str, file: &Path) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Syntax {
        file: file.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn read_root(root: &Table, base: &Path, p: &mut Problems) -> Config {
    let mut sec = Section::new("", root);
    let mode = sec
        .string("mode", p)
        .and_then(|raw| accounts::read_mode("mode", raw, p))
        .unwrap_or_default();
    let config = Config {
        file: None,
        index: HashMap::new(),
        mode,
        nats: section(&mut sec, "nats", p, |s, p| settings::read_nats(s, base, p)),
        policy: section(&mut sec, "policy", p, policy::read_defaults),
        schedule: section(&mut sec, "schedule", p, settings::read_schedule),
        worker: section(&mut sec, "worker", p, settings::read_worker),
        coordinator: section(&mut sec, "coordinator", p, settings::read_coordinator),
        http: section(&mut sec, "http", p, settings::read_http),
        tls: section(&mut sec, "tls", p, |s, p| settings::read_tls(s, base, p)),
        metrics: section(&mut sec, "metrics", p, settings::read_metrics),
        accounts: {
            let mut all = accounts::read_accounts(sec.value("accounts"), "", base, p);
            if let Some(file) = sec.path_in("accounts_file", base, p) {
                all.extend(read_accounts_file(&file, p));
            }
            all
        },
    };
    sec.finish(p);
    config
}

/// Reads one sub-table with `read` and reports its unknown keys.
fn section<'t, T>(
    parent: &mut Section<'t>,
    name: &'static str,
    p: &mut Problems,
    read: impl FnOnce(&mut Section<'t>, &mut Problems) -> T,
) -> T {
    let mut sec = parent.section(name, p);
    let value = read(&mut sec, p);
    sec.finish(p);
    value
}

/// Reads `accounts_file`: a file of `[[accounts]]` only, its relative paths resolved against its
/// own folder. Its problems are reported as `<file name>:accounts[i].key`.
fn read_accounts_file(file: &Path, p: &mut Problems) -> Vec<AccountConfig> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            p.error(ConfigError::Read {
                file: file.to_path_buf(),
                reason: format!("{e} (accounts_file)"),
            });
            return Vec::new();
        }
    };
    let table = match parse(&text, file) {
        Ok(table) => table,
        Err(e) => {
            p.error(e);
            return Vec::new();
        }
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let prefix = format!("{name}:");
    let base = file.parent().unwrap_or(Path::new("."));
    let mut sec = Section::new(prefix.clone(), &table);
    let accounts = accounts::read_accounts(sec.value("accounts"), &prefix, base, p);
    sec.finish(p);
    accounts
}

/// Applies `NATS_URL` and `MAX_POSITIONS_ALLOWED`.
fn apply_env(config: &mut Config, env: &dyn Env, p: &mut Problems) {
    if let Some(raw) = env.var(NATS_URL) {
        let urls: Vec<String> = raw.split(',').map(str::to_string).collect();
        let mut env_problems = Problems::default();
        match settings::check_nats_urls(NATS_URL, urls, &mut env_problems) {
            Some(urls) => config.nats.urls = urls,
            None => p.error(ConfigError::Env {
                var: NATS_URL,
                value: raw,
                reason: "expected one or more comma-separated nats://host:port URLs".to_string(),
            }),
        }
    }
    if let Some(raw) = env.var(MAX_POSITIONS_ALLOWED) {
        match raw.trim().parse::<u32>() {
            Ok(n) if n <= policy::MAX_POSITIONS_LIMIT => {
                config.policy.env_platform_max_positions = Some(n);
            }
            _ => p.error(ConfigError::Env {
                var: MAX_POSITIONS_ALLOWED,
                value: raw,
                reason: format!(
                    "expected a whole number from 0 to {}",
                    policy::MAX_POSITIONS_LIMIT
                ),
            }),
        }
    }
}

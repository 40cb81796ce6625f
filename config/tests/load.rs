//! Loading real files: the commented sample, a broken file, the environment's precedence,
//! `accounts_file`, credentials paths and permissions.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nija_config::{
    AccountConfig, Broker, Config, ConfigError, ConfigErrors, Credentials, Loaded, MapEnv, Role,
    Warning,
};
use nija_proto::plan::{AccountType, Mode};
use nija_proto::{AccountId, Pct, Usd};
use rust_decimal_macros::dec;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn parse(text: &str) -> Result<Loaded, ConfigErrors> {
    Config::from_toml_str(text, Path::new("/etc/nija"), &MapEnv::new())
}

fn parse_env(text: &str, env: &MapEnv) -> Result<Loaded, ConfigErrors> {
    Config::from_toml_str(text, Path::new("/etc/nija"), env)
}

fn errors(text: &str) -> ConfigErrors {
    match parse(text) {
        Ok(loaded) => panic!("accepted: {:?}", loaded.config),
        Err(e) => e,
    }
}

fn account<'c>(config: &'c Config, id: &str) -> &'c AccountConfig {
    config
        .account(&AccountId::new(id).unwrap())
        .unwrap_or_else(|| panic!("no account {id}"))
}

/// A short name for an error's kind, so that tests assert (key, kind) pairs.
fn kind(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::NoConfigFile => "no_config_file",
        ConfigError::Read { .. } => "read",
        ConfigError::Syntax { .. } => "syntax",
        ConfigError::UnknownKey { .. } => "unknown_key",
        ConfigError::Missing { .. } => "missing",
        ConfigError::WrongType { .. } => "wrong_type",
        ConfigError::Float { .. } => "float",
        ConfigError::Duration { .. } => "duration",
        ConfigError::Invalid { .. } => "invalid",
        ConfigError::DuplicateAccount { .. } => "duplicate_account",
        ConfigError::SharedCredentials { .. } => "shared_credentials",
        ConfigError::Env { .. } => "env",
    }
}

const ONE_ACCOUNT: &str = r#"
[[accounts]]
id = "platform"
type = "platform"
broker = "kraken"
credentials = { env = "NIJA_PLATFORM_KRAKEN" }
"#;

#[test]
fn the_commented_sample_loads_with_every_key_as_written() {
    let Loaded { config, warnings } =
        Config::load(&examples().join("nija.toml"), &MapEnv::new()).unwrap();
    let base = examples();

    assert_eq!(
        config.file.as_deref(),
        Some(base.join("nija.toml").as_path())
    );
    assert_eq!(config.mode, Mode::Act);
    assert_eq!(
        config.nats.urls,
        ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    );
    assert_eq!(config.nats.creds, Some(base.join("secrets/worker.creds")));
    assert_eq!(config.nats.nkey, None);
    assert_eq!(config.nats.tls_ca, Some(base.join("tls/nats-ca.pem")));
    assert_eq!(config.nats.tls_cert, Some(base.join("tls/client.pem")));
    assert_eq!(config.nats.tls_key, Some(base.join("tls/client-key.pem")));

    let p = &config.policy;
    assert_eq!((p.max_positions, p.user_max_positions), (8, 5));
    assert_eq!(p.dust_threshold, Usd(dec!(1.00)));
    assert_eq!(p.stop_loss_pct, Pct(dec!(3.0)));
    assert_eq!(p.take_profit_pct, Pct(dec!(8.0)));
    assert_eq!(p.trailing_stop_pct, Pct(dec!(5.0)));
    assert_eq!(p.trailing_activation_pct, Pct(dec!(0)));
    assert_eq!(p.max_hold, Duration::from_secs(24 * 3600));
    assert_eq!(p.max_liquidation_fraction, dec!(0.5));
    assert_eq!(p.liquidation_window, Duration::from_secs(24 * 3600));
    assert_eq!(p.cash_assets, ["USD", "USDC", "USDT", "USDP"]);

    assert_eq!(config.schedule.enforce_every, Duration::from_secs(60));
    assert_eq!(config.exit_sweep_every(), Some(Duration::from_secs(10)));
    assert_eq!(config.schedule.job_deadline, Duration::from_secs(60));

    let w = &config.worker;
    assert_eq!((w.concurrency, w.partitions), (256, 64));
    assert_eq!(w.heartbeat_every, Duration::from_secs(5));
    assert_eq!(w.lease_ttl, Duration::from_secs(20));
    assert_eq!(w.connect_cooldown, Duration::from_secs(2));
    assert_eq!(w.max_price_age, Duration::from_secs(30));
    assert_eq!(w.price_cache_ttl, Duration::from_secs(1));

    let c = &config.coordinator;
    assert_eq!(c.results_max_age, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(c.jobs_duplicate_window, Duration::from_secs(600));
    assert_eq!(c.jobs_max_age, Duration::from_secs(3600));

    let listen: SocketAddr = "127.0.0.1:9464".parse().unwrap();
    assert_eq!(config.http_listen(Role::Worker), listen);
    assert_eq!(config.tls.extra_ca, [base.join("tls/sim-ca.pem")]);
    assert!(config.per_account_metrics(&AccountId::new("user-0001").unwrap()));
    assert!(!config.per_account_metrics(&AccountId::new("user-0002").unwrap()));

    let ids: Vec<&str> = config.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "platform",
            "user-0001",
            "user-0002",
            "user-0003",
            "platform-b"
        ]
    );

    let platform = account(&config, "platform");
    assert_eq!(platform.account_type, AccountType::Platform);
    assert_eq!(platform.broker, Broker::Kraken);
    assert_eq!(platform.effective_base_url(), "http://127.0.0.1:18002");
    assert_eq!(
        platform.credentials,
        Credentials::File(base.join("secrets/platform.json"))
    );
    assert_eq!(config.mode_for(platform), Mode::Act);
    assert_eq!(config.policy_for(platform).max_positions, 8);

    let u1 = account(&config, "user-0001");
    assert_eq!(u1.broker, Broker::Coinbase);
    assert_eq!(u1.effective_base_url(), "https://api.coinbase.com");
    assert_eq!(
        u1.credentials,
        Credentials::Env("NIJA_USER_0001_COINBASE".into())
    );
    assert_eq!(config.mode_for(u1), Mode::Observe);

    let u2 = account(&config, "user-0002");
    assert_eq!(u2.broker, Broker::Alpaca);
    assert_eq!(
        u2.credentials,
        Credentials::K8sSecret {
            name: "nija-user-0002".into(),
            key: Some("alpaca.json".into())
        }
    );
    assert_eq!(u2.effective_data_url(), "https://data.alpaca.markets");
    let params = config.policy_for(u2);
    assert_eq!(params.max_positions, 3);
    assert_eq!(params.dust_threshold, Usd(dec!(2)));
    assert_eq!(params.stop_loss_pct, Pct(dec!(2.5)));
    assert_eq!(params.take_profit_pct, Pct(dec!(12)));
    assert_eq!(params.trailing_stop_pct, Pct(dec!(4)));
    assert_eq!(params.trailing_activation_pct, Pct(dec!(1.5)));
    assert_eq!(params.max_hold, chrono::Duration::minutes(72 * 60 + 30));
    assert_eq!(params.max_liquidation_fraction, dec!(0.25));
    assert_eq!(params.liquidation_window, chrono::Duration::hours(12));
    assert_eq!(params.cash_assets, ["USD"]);
    assert_eq!(params.max_price_age, chrono::Duration::seconds(30));

    // From accounts.toml: paths relative to that file, path prefix kept.
    let u3 = account(&config, "user-0003");
    assert_eq!(u3.origin, "accounts.toml:accounts[0]");
    assert_eq!(u3.effective_base_url(), "http://127.0.0.1:18002/prefix");
    assert_eq!(
        u3.credentials,
        Credentials::File(base.join("secrets/user-0003.json"))
    );
    assert_eq!(config.policy_for(u3).max_positions, 5);
    assert_eq!(
        config
            .policy_for(account(&config, "platform-b"))
            .max_positions,
        8
    );

    // The sample names no file that exists, and only loopback URLs use plain http.
    assert_eq!(warnings, []);
}

#[test]
fn a_broken_file_reports_every_problem_with_its_key() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken.toml");
    let err = Config::load(&file, &MapEnv::new()).unwrap_err();
    assert_eq!(err.file.as_deref(), Some(file.as_path()));
    let got: Vec<(String, &str)> = err
        .errors
        .iter()
        .map(|e| (e.key().unwrap_or("").to_string(), kind(e)))
        .collect();
    let expected = [
        ("mode", "invalid"),
        ("nats.url", "invalid"),
        ("nats.tls_key", "missing"),
        ("policy.max_positions", "invalid"),
        ("policy.stop_loss_pct", "float"),
        ("policy.take_profit_pct", "invalid"),
        ("policy.max_liquidation_fraction", "invalid"),
        ("policy.cash_assets[1]", "invalid"),
        ("policy.cash_assets[2]", "invalid"),
        ("policy.dust_treshold_usd", "unknown_key"),
        ("schedule.enforce_every", "duration"),
        ("schedule.exit_sweep_every", "wrong_type"),
        ("schedule.job_deadline", "invalid"),
        ("worker.partitions", "invalid"),
        ("worker.lease_ttl", "invalid"),
        ("coordinator.results_max_age", "duration"),
        ("http.listen", "invalid"),
        ("metrics.per_account[0]", "invalid"),
        ("accounts[0].id", "invalid"),
        ("accounts[1].type", "invalid"),
        ("accounts[1].broker", "invalid"),
        ("accounts[1].credentials", "invalid"),
        ("accounts[1].max_positions", "invalid"),
        ("accounts[2].base_url", "invalid"),
        ("accounts[2].user_max_positions", "invalid"),
        ("accounts[2].dust_threshold_usd", "float"),
        ("accounts[3].stop_loss_pct", "invalid"),
        ("accounts[3].colour", "unknown_key"),
        ("accounts[4].id", "missing"),
        ("accounts[4].credentials", "missing"),
        ("colour", "unknown_key"),
        ("accounts[3].id", "duplicate_account"),
        ("accounts[3].credentials", "shared_credentials"),
    ];
    for (key, k) in &expected {
        assert!(
            got.iter().any(|(gk, gkind)| gk == key && gkind == k),
            "missing {k} error for {key}; got:\n{err}"
        );
    }
    // data_url on a coinbase account is refused too (it is listed separately because the same
    // account's base_url is also wrong).
    assert!(
        err.for_key("accounts[2].data_url")
            .any(|e| e.to_string().contains("alpaca accounts only")),
        "{err}"
    );
    assert_eq!(
        got.len(),
        expected.len() + 1,
        "unexpected extra problems:\n{err}"
    );

    // The messages say what to do.
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("34 problems in {}", file.display())),
        "{text}"
    );
    assert!(
        text.contains("policy.stop_loss_pct: 3.5 is a TOML float"),
        "{text}"
    );
    assert!(text.contains("quote it (\"3.5\")"), "{text}");
    assert!(
        text.contains(
            "policy.dust_treshold_usd: unknown key (did you mean \"dust_threshold_usd\"?)"
        ),
        "{text}"
    );
    assert!(text.contains("already used by accounts[2]"), "{text}");
}

#[test]
fn defaults_apply_to_a_file_with_accounts_only() {
    let config = parse(ONE_ACCOUNT).unwrap().config;
    let defaults = Config::default();
    assert_eq!(config.nats, defaults.nats);
    assert_eq!(config.nats.urls, ["nats://127.0.0.1:4222"]);
    assert_eq!(config.policy, defaults.policy);
    assert_eq!(config.schedule, defaults.schedule);
    assert_eq!(config.worker, defaults.worker);
    assert_eq!(config.coordinator, defaults.coordinator);
    assert_eq!(
        config.coordinator.results_max_age,
        Duration::from_secs(2_592_000)
    );
    assert_eq!(
        config.http_listen(Role::Coordinator),
        "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.http_listen(Role::Worker),
        "0.0.0.0:9465".parse::<SocketAddr>().unwrap()
    );
    assert!(config.metrics.per_account.is_empty());
    assert!(config.tls.extra_ca.is_empty());

    let params = config.policy_for(&config.accounts[0]);
    assert_eq!(params.max_positions, 8);
    assert_eq!(params.dust_threshold, Usd(dec!(1.00)));
    assert_eq!(params.stop_loss_pct, Pct(dec!(3)));
    assert_eq!(params.take_profit_pct, Pct(dec!(8)));
    assert_eq!(params.trailing_stop_pct, Pct(dec!(5)));
    assert_eq!(params.trailing_activation_pct, Pct(dec!(0)));
    assert_eq!(params.max_hold, chrono::Duration::hours(24));
    assert_eq!(params.max_liquidation_fraction, dec!(0.5));
    assert_eq!(params.liquidation_window, chrono::Duration::hours(24));
    assert_eq!(params.max_price_age, chrono::Duration::seconds(30));
    assert_eq!(params.cash_assets, ["USD", "USDC", "USDT", "USDP"]);
}

#[test]
fn an_empty_file_is_a_deployment_without_accounts() {
    let config = parse("").unwrap().config;
    assert!(config.accounts.is_empty());
    assert_eq!(config.mode, Mode::Act);
}

#[test]
fn max_positions_allowed_sets_the_platform_default_below_per_account_keys() {
    let text = r#"
[policy]
max_positions = 8
user_max_positions = 4

[[accounts]]
id = "p1"
type = "platform"
broker = "kraken"
credentials = { env = "P1" }

[[accounts]]
id = "p2"
type = "platform"
broker = "kraken"
credentials = { env = "P2" }
max_positions = 2

[[accounts]]
id = "u1"
type = "user"
broker = "coinbase"
credentials = { env = "U1" }

[[accounts]]
id = "u2"
type = "user"
broker = "coinbase"
credentials = { env = "U2" }
max_positions = 9
"#;
    let caps = |env: &MapEnv| {
        let config = parse_env(text, env).unwrap().config;
        config
            .accounts
            .iter()
            .map(|a| config.policy_for(a).max_positions)
            .collect::<Vec<_>>()
    };
    assert_eq!(caps(&MapEnv::new()), [8, 2, 4, 9]);
    let env = MapEnv::new().with("MAX_POSITIONS_ALLOWED", "11");
    // The environment moves the PLATFORM default only; per-account keys still win.
    assert_eq!(caps(&env), [11, 2, 4, 9]);
}

#[test]
fn nats_url_from_the_environment_replaces_the_file() {
    let text = "[nats]\nurl = \"nats://file:4222\"\n";
    let config = parse(text).unwrap().config;
    assert_eq!(config.nats.urls, ["nats://file:4222"]);

    let env = MapEnv::new().with("NATS_URL", "nats://a:4222, tls://b:4222");
    let config = parse_env(text, &env).unwrap().config;
    assert_eq!(config.nats.urls, ["nats://a:4222", "tls://b:4222"]);

    // Blank counts as unset.
    let env = MapEnv::new().with("NATS_URL", "");
    let config = parse_env(text, &env).unwrap().config;
    assert_eq!(config.nats.urls, ["nats://file:4222"]);
}

#[test]
fn bad_environment_values_are_reported_with_the_file_problems() {
    let env = MapEnv::new()
        .with("NATS_URL", "http://a:80")
        .with("MAX_POSITIONS_ALLOWED", "eight");
    let err = parse_env("mode = \"off\"\n", &env).unwrap_err();
    let keys: Vec<(&str, &str)> = err
        .errors
        .iter()
        .map(|e| (e.key().unwrap_or(""), kind(e)))
        .collect();
    assert_eq!(
        keys,
        [
            ("mode", "invalid"),
            ("NATS_URL", "env"),
            ("MAX_POSITIONS_ALLOWED", "env")
        ]
    );
}

#[test]
fn nats_url_may_be_a_list() {
    let config = parse("[nats]\nurl = [\"nats://a:1\", \"b:2\"]\n")
        .unwrap()
        .config;
    assert_eq!(config.nats.urls, ["nats://a:1", "b:2"]);
    let err = errors("[nats]\nurl = [\"nats://a:1\", 3, \"http://c\"]\n");
    let keys: Vec<&str> = err.errors.iter().filter_map(ConfigError::key).collect();
    assert_eq!(keys, ["nats.url[1]"]);
    let err = errors("[nats]\nurl = [\"nats://a:1\", \"http://c\"]\n");
    let keys: Vec<&str> = err.errors.iter().filter_map(ConfigError::key).collect();
    assert_eq!(keys, ["nats.url[1]"]);
    let err = errors("[nats]\ncreds = \"a.creds\"\nnkey = \"a.nk\"\n");
    assert_eq!(err.errors[0].key(), Some("nats.nkey"));
}

#[test]
fn floats_are_refused_where_money_belongs_and_accepted_for_hours() {
    for key in [
        "dust_threshold_usd",
        "stop_loss_pct",
        "take_profit_pct",
        "trailing_stop_pct",
        "trailing_activation_pct",
        "max_liquidation_fraction",
    ] {
        let err = errors(&format!("[policy]\n{key} = 0.1\n"));
        assert_eq!(err.errors.len(), 1, "{err}");
        assert_eq!(kind(&err.errors[0]), "float");
        assert_eq!(err.errors[0].key(), Some(format!("policy.{key}").as_str()));
        assert!(err.to_string().contains("quote it (\"0.1\")"), "{err}");
    }
    let hold = |text: &str| parse(text).unwrap().config.policy.max_hold;
    assert_eq!(
        hold("[policy]\nmax_hold_hours = 1.5\n"),
        Duration::from_secs(5400)
    );
    assert_eq!(
        hold("[policy]\nmax_hold_hours = \"0.25\"\n"),
        Duration::from_secs(900)
    );
    assert_eq!(
        hold("[policy]\nmax_hold_hours = 2\n"),
        Duration::from_secs(7200)
    );
    assert_eq!(
        kind(&errors("[policy]\nmax_hold_hours = 0\n").errors[0]),
        "invalid"
    );
    assert_eq!(
        kind(&errors("[policy]\nmax_hold_hours = \"x\"\n").errors[0]),
        "invalid"
    );
}

#[test]
fn money_may_be_a_string_or_an_integer() {
    let config = parse("[policy]\ndust_threshold_usd = 2\nstop_loss_pct = \"2.75\"\n")
        .unwrap()
        .config;
    assert_eq!(config.policy.dust_threshold, Usd(dec!(2)));
    assert_eq!(config.policy.stop_loss_pct, Pct(dec!(2.75)));
    let err = errors("[policy]\ndust_threshold_usd = true\n");
    assert_eq!(kind(&err.errors[0]), "wrong_type");
}

#[test]
fn exit_sweeps_can_be_switched_off() {
    let config = parse("[schedule]\nexit_sweep_every = \"off\"\nenforce_every = \"1h30m\"\n")
        .unwrap()
        .config;
    assert_eq!(config.exit_sweep_every(), None);
    assert_eq!(config.schedule.enforce_every, Duration::from_secs(5400));
    let config = parse("[schedule]\nexit_sweep_every = \"500ms\"\n")
        .unwrap()
        .config;
    assert_eq!(config.exit_sweep_every(), Some(Duration::from_millis(500)));
    // "off" is for exit sweeps only.
    assert_eq!(
        kind(&errors("[schedule]\nenforce_every = \"off\"\n").errors[0]),
        "duration"
    );
}

#[test]
fn global_and_per_account_mode() {
    let text = format!("mode = \"observe\"\n{ONE_ACCOUNT}mode = \"act\"\n");
    let config = parse(&text).unwrap().config;
    assert_eq!(config.mode, Mode::Observe);
    assert_eq!(config.mode_for(&config.accounts[0]), Mode::Act);
    let config = parse(&format!("mode = \"observe\"\n{ONE_ACCOUNT}"))
        .unwrap()
        .config;
    assert_eq!(config.mode_for(&config.accounts[0]), Mode::Observe);
}

#[test]
fn any_number_of_platform_accounts_is_allowed() {
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "[[accounts]]\nid = \"p{i}\"\ntype = \"platform\"\nbroker = \"kraken\"\n\
             credentials = {{ env = \"P{i}\" }}\n"
        ));
    }
    let config = parse(&text).unwrap().config;
    assert!(config.accounts.iter().all(
        |a| a.account_type == AccountType::Platform && config.policy_for(a).max_positions == 8
    ));
}

#[test]
fn account_ids_follow_the_subject_alphabet() {
    let acct = |id: &str| {
        format!(
            "[[accounts]]\nid = \"{id}\"\ntype = \"user\"\nbroker = \"kraken\"\ncredentials = {{ env = \"X\" }}\n"
        )
    };
    assert!(parse(&acct("User_01-a")).is_ok());
    assert!(parse(&acct(&"a".repeat(64))).is_ok());
    for bad in ["", "a.b", "a b", "a*", "a>", &"a".repeat(65)] {
        let err = errors(&acct(bad));
        assert_eq!(
            err.errors[0].key(),
            Some("accounts[0].id"),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn alpaca_data_url_defaults_to_the_matching_host() {
    let alpaca = |base: &str| {
        let text = format!(
            "[[accounts]]\nid = \"a\"\ntype = \"user\"\nbroker = \"alpaca\"\n{base}\
             credentials = {{ env = \"A\" }}\n"
        );
        let config = parse(&text).unwrap().config;
        config.accounts[0].effective_data_url().to_string()
    };
    assert_eq!(alpaca(""), "https://data.alpaca.markets");
    assert_eq!(
        alpaca("base_url = \"https://paper-api.alpaca.markets/\"\n"),
        "https://data.alpaca.markets"
    );
    // A simulator serves market data on the trading port: never the live host by default.
    assert_eq!(
        alpaca("base_url = \"http://127.0.0.1:18003/alpaca/\"\n"),
        "http://127.0.0.1:18003/alpaca"
    );
    assert_eq!(
        alpaca("base_url = \"http://127.0.0.1:1\"\ndata_url = \"http://127.0.0.1:2\"\n"),
        "http://127.0.0.1:2"
    );
}

#[test]
fn plain_http_to_a_remote_host_draws_a_warning() {
    let text = "[[accounts]]\nid = \"a\"\ntype = \"user\"\nbroker = \"kraken\"\n\
                base_url = \"http://kraken.internal:8080\"\ncredentials = { env = \"A\" }\n";
    let loaded = parse(text).unwrap();
    assert!(
        matches!(&loaded.warnings[..], [Warning::PlainHttp { key, .. }] if key == "accounts[0].base_url"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn credentials_need_exactly_one_source() {
    let with = |creds: &str| {
        format!(
            "[[accounts]]\nid = \"a\"\ntype = \"user\"\nbroker = \"kraken\"\ncredentials = {creds}\n"
        )
    };
    assert!(parse(&with("{ k8s_secret = \"nija-a\" }")).is_ok());
    for (creds, key) in [
        ("{}", "accounts[0].credentials"),
        (
            "{ file = \"a\", k8s_secret = \"b\" }",
            "accounts[0].credentials",
        ),
        ("{ env = \"1BAD\" }", "accounts[0].credentials.env"),
        (
            "{ k8s_secret = \"Upper_Case\" }",
            "accounts[0].credentials.k8s_secret",
        ),
        (
            "{ env = \"A\", key = \"k\" }",
            "accounts[0].credentials.key",
        ),
        ("{ path = \"a.json\" }", "accounts[0].credentials.path"),
        ("\"a.json\"", "accounts[0].credentials"),
    ] {
        let err = errors(&with(creds));
        assert!(
            err.for_key(key).next().is_some(),
            "{creds}: expected a problem at {key}, got {err}"
        );
    }
}

#[test]
fn relative_credentials_resolve_against_the_config_folder_and_exposed_files_warn() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    let private = dir.path().join("secrets/private.json");
    let exposed = dir.path().join("secrets/exposed.json");
    fs::write(&private, "{}").unwrap();
    fs::write(&exposed, "{}").unwrap();
    set_mode(&private, 0o600);
    set_mode(&exposed, 0o644);
    let file = dir.path().join("nija.toml");
    fs::write(
        &file,
        r#"
[[accounts]]
id = "a"
type = "user"
broker = "kraken"
credentials = { file = "secrets/private.json" }

[[accounts]]
id = "b"
type = "user"
broker = "kraken"
credentials = { file = "secrets/exposed.json" }
"#,
    )
    .unwrap();
    let Loaded { config, warnings } = Config::load(&file, &MapEnv::new()).unwrap();
    assert_eq!(config.accounts[0].credentials, Credentials::File(private));
    assert_eq!(
        warnings,
        [Warning::CredentialsFileExposed {
            key: "accounts[1].credentials.file".into(),
            file: exposed,
            mode: 0o644,
        }]
    );
    assert!(warnings[0].to_string().contains("chmod 600"));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn accounts_file_problems_name_the_file_and_ids_are_unique_across_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("fleet")).unwrap();
    fs::write(
        dir.path().join("fleet/accounts.toml"),
        r#"
[[accounts]]
id = "platform"
type = "platform"
broker = "kraken"
credentials = { file = "keys/other.json" }

[[accounts]]
id = "u1"
type = "user"
broker = "kraken"
credentials = { file = "keys/u1.json" }
max_positions = "5"

[policy]
max_positions = 3
"#,
    )
    .unwrap();
    let file = dir.path().join("nija.toml");
    fs::write(
        &file,
        format!("accounts_file = \"fleet/accounts.toml\"\n{ONE_ACCOUNT}"),
    )
    .unwrap();
    let err = Config::load(&file, &MapEnv::new()).unwrap_err();
    let got: Vec<(&str, &str)> = err
        .errors
        .iter()
        .map(|e| (e.key().unwrap_or(""), kind(e)))
        .collect();
    assert_eq!(
        got,
        [
            ("accounts.toml:accounts[1].max_positions", "wrong_type"),
            ("accounts.toml:policy", "unknown_key"),
            ("accounts.toml:accounts[0].id", "duplicate_account"),
        ]
    );

    // A missing accounts file is a clear error.
    fs::write(
        &file,
        format!("accounts_file = \"nowhere.toml\"\n{ONE_ACCOUNT}"),
    )
    .unwrap();
    let err = Config::load(&file, &MapEnv::new()).unwrap_err();
    assert!(
        matches!(&err.errors[..], [ConfigError::Read { file, .. }] if file.ends_with("nowhere.toml")),
        "{err}"
    );
}

#[test]
fn accounts_file_paths_resolve_against_its_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("fleet")).unwrap();
    fs::write(
        dir.path().join("fleet/accounts.toml"),
        "[[accounts]]\nid = \"u1\"\ntype = \"user\"\nbroker = \"kraken\"\n\
         credentials = { file = \"keys/u1.json\" }\n",
    )
    .unwrap();
    let file = dir.path().join("nija.toml");
    fs::write(&file, "accounts_file = \"fleet/accounts.toml\"\n").unwrap();
    let config = Config::load(&file, &MapEnv::new()).unwrap().config;
    assert_eq!(
        config.accounts[0].credentials,
        Credentials::File(dir.path().join("fleet/keys/u1.json"))
    );
}

#[test]
fn two_accounts_on_one_credentials_source_are_refused() {
    let text = r#"
[[accounts]]
id = "a"
type = "platform"
broker = "kraken"
credentials = { file = "keys/kraken.json" }

[[accounts]]
id = "b"
type = "user"
broker = "kraken"
credentials = { file = "keys/kraken.json" }
"#;
    let err = errors(text);
    assert!(
        matches!(&err.errors[..], [ConfigError::SharedCredentials { key, other, .. }]
            if key == "accounts[1].credentials" && other == "accounts[0]"),
        "{err}"
    );
}

#[test]
fn the_config_file_is_found_from_the_flag_or_nija_config() {
    let sample = examples().join("nija.toml");
    let env = MapEnv::new().with("NIJA_CONFIG", sample.to_str().unwrap());
    assert_eq!(Config::locate(None, &env), Some(sample.clone()));
    let flag = Path::new("/elsewhere/nija.toml");
    assert_eq!(Config::locate(Some(flag), &env).as_deref(), Some(flag));
    assert!(Config::load_located(None, &env).is_ok());

    let err = Config::load_located(None, &MapEnv::new()).unwrap_err();
    assert_eq!(err.errors, [ConfigError::NoConfigFile]);
    let err = Config::load_located(Some(flag), &env).unwrap_err();
    assert!(
        matches!(&err.errors[..], [ConfigError::Read { .. }]),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_are_reported_with_their_position() {
    let err = errors("[policy\nmax_positions = 8\n");
    assert!(
        matches!(&err.errors[..], [ConfigError::Syntax { message, .. }] if message.contains("line 1")),
        "{err}"
    );
}

#[test]
fn many_thousands_of_accounts_load() {
    let mut text = String::with_capacity(20_000 * 120);
    for i in 0..20_000 {
        text.push_str(&format!(
            "[[accounts]]\nid = \"user-{i:05}\"\ntype = \"user\"\nbroker = \"coinbase\"\n\
             credentials = {{ k8s_secret = \"nija-user-{i:05}\" }}\n"
        ));
    }
    let config = parse(&text).unwrap().config;
    assert_eq!(config.accounts.len(), 20_000);
    let last = account(&config, "user-19999");
    assert_eq!(config.policy_for(last).max_positions, 5);
    assert!(config.partition_of(&last.id).0 < 64);
}

/// The example of DESIGN §5, verbatim: the format the simulator and operators write.
const DESIGN_EXAMPLE: &str = r#"
[nats]
url = "nats://127.0.0.1:4222"          # NATS_URL overrides; a list of URLs is allowed

[policy]                                # defaults; every key may be overridden per account
max_positions = 8                       # MAX_POSITIONS_ALLOWED overrides the PLATFORM default
user_max_positions = 5
dust_threshold_usd = "1.00"
stop_loss_pct = "3.0"
take_profit_pct = "8.0"
trailing_stop_pct = "5.0"
trailing_activation_pct = "0"
max_hold_hours = 24
max_liquidation_fraction = "0.5"
cash_assets = ["USD", "USDC", "USDT", "USDP"]

[schedule]
enforce_every = "60s"
exit_sweep_every = "10s"

[[accounts]]
id = "platform"
type = "platform"                       # platform | user
broker = "kraken"                       # coinbase | kraken | alpaca
base_url = "http://127.0.0.1:18002"     # optional: simulator, sandbox or paper endpoint
credentials = { file = "/var/run/secrets/nija/platform.json" }   # or { env = "NIJA_PLATFORM_KRAKEN" }

[[accounts]]
id = "user-0001"
type = "user"
broker = "coinbase"
credentials = { env = "NIJA_USER_0001_COINBASE" }
max_positions = 5
"#;

#[test]
fn the_design_example_loads() {
    let Loaded { config, warnings } = parse(DESIGN_EXAMPLE).unwrap();
    assert_eq!(warnings, []);
    assert_eq!(config.accounts.len(), 2);
    let platform = &config.accounts[0];
    assert_eq!(
        platform.credentials,
        Credentials::File("/var/run/secrets/nija/platform.json".into())
    );
    assert_eq!(config.policy_for(platform).max_positions, 8);
    assert_eq!(config.policy_for(&config.accounts[1]).max_positions, 5);
}

#[test]
fn sections_of_the_wrong_shape_and_misspelt_sections_are_named() {
    let err = errors("nats = \"nats://a:1\"\naccounts = 3\n[polcy]\nmax_positions = 3\n");
    let got: Vec<(&str, &str)> = err
        .errors
        .iter()
        .map(|e| (e.key().unwrap_or(""), kind(e)))
        .collect();
    assert_eq!(
        got,
        [
            ("nats", "wrong_type"),
            ("accounts", "wrong_type"),
            ("polcy", "unknown_key")
        ]
    );
    assert!(err.to_string().contains("did you mean \"policy\""), "{err}");
}

#[test]
fn durations_and_counts_are_bounded() {
    assert_eq!(
        kind(&errors("[worker]\nheartbeat_every = \"11years\"\n").errors[0]),
        "invalid"
    );
    assert_eq!(
        kind(&errors("[worker]\nconcurrency = 0\n").errors[0]),
        "invalid"
    );
    assert_eq!(
        kind(&errors("[worker]\nheartbeat_every = 5\n").errors[0]),
        "wrong_type"
    );
    // Zero is a legal cooldown and cache TTL (tests run fast), and a legal cap.
    let config = parse(
        "[worker]\nconnect_cooldown = \"0s\"\nprice_cache_ttl = \"0ms\"\n\
         [policy]\nmax_positions = 0\n[http]\nlisten = \":0\"\n[tls]\nextra_ca = \"ca.pem\"\n",
    )
    .unwrap()
    .config;
    assert_eq!(config.worker.connect_cooldown, Duration::ZERO);
    assert_eq!(config.worker.price_cache_ttl, Duration::ZERO);
    assert_eq!(config.policy.max_positions, 0);
    assert_eq!(config.http_listen(Role::Coordinator).port(), 0);
    assert_eq!(config.tls.extra_ca, [PathBuf::from("/etc/nija/ca.pem")]);
}

#[test]
fn syntax_errors_name_the_file_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nija.toml");
    fs::write(&file, "accounts_file = \"accounts.toml\"\n").unwrap();
    fs::write(dir.path().join("accounts.toml"), "[[accounts]\n").unwrap();
    let err = Config::load(&file, &MapEnv::new()).unwrap_err();
    assert!(
        matches!(&err.errors[..], [ConfigError::Syntax { file: f, .. }] if f.ends_with("accounts.toml")),
        "{err}"
    );
    fs::write(&file, "mode = \n").unwrap();
    let err = Config::load(&file, &MapEnv::new()).unwrap_err();
    assert!(
        matches!(&err.errors[..], [ConfigError::Syntax { file: f, .. }] if f == &file),
        "{err}"
    );
}

#[test]
fn account_lookup_stays_right_after_the_list_is_edited() {
    let text = "[[accounts]]\nid = \"a\"\ntype = \"user\"\nbroker = \"kraken\"\ncredentials = { env = \"A\" }\n\
                [[accounts]]\nid = \"b\"\ntype = \"user\"\nbroker = \"kraken\"\ncredentials = { env = \"B\" }\n";
    let mut config = parse(text).unwrap().config;
    assert_eq!(account(&config, "b").id.as_str(), "b");
    config.accounts.remove(0);
    assert_eq!(account(&config, "b").id.as_str(), "b");
    assert!(config.account(&AccountId::new("a").unwrap()).is_none());
}

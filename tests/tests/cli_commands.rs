//! The operator commands of the real `nija` binary against a running stack: normalize (dry run,
//! then the real run, with an exact report checked against the simulator's order log), pause,
//! blacklist, track, config validate, the exit codes, and the operator's guide's runbook anchors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nija_e2e::fleets::{PRICES, over_cap_with_dust};
use nija_e2e::{Stack, StackOptions, target_bin_dir, workspace_root};
use nija_proto::messages::decode;
use nija_proto::names::account_symbol_key;
use nija_proto::state::{PositionSource, TrackedPosition};
use nija_proto::{AccountId, Symbol};
use nija_sim::{FaultSpec, ScenarioHolding};
use rust_decimal::Decimal;

const WAIT: Duration = Duration::from_secs(240);
/// Every account also holds $50 of this; its price lookups fail, so it is unpriced everywhere.
const UNPRICED: &str = "XRP-USD";

fn nija(args: &[&str]) -> Output {
    Command::new(target_bin_dir().join("nija"))
        .args(args)
        .env_remove("NATS_URL")
        .env_remove("NIJA_CONFIG")
        .output()
        .expect("the nija binary runs")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn account_id(i: usize) -> String {
    if i == 0 {
        "platform".into()
    } else {
        format!("user-{i:04}")
    }
}

/// Symbols of account `i`'s material holdings, smallest value first (see `over_cap_with_dust`).
fn material(i: usize, cap: u32) -> Vec<String> {
    (0..cap as usize + 3)
        .map(|j| format!("{}-USD", PRICES[(i + j) % PRICES.len()].0))
        .collect()
}

fn sells_by_account(report: &serde_json::Value, field: &str) -> BTreeMap<String, BTreeSet<String>> {
    report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            let symbols = a[field]
                .as_array()
                .expect("symbols")
                .iter()
                .map(|s| s.as_str().expect("symbol").to_string())
                .collect();
            (a["account"].as_str().expect("id").to_string(), symbols)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_a_hundred_accounts_dry_run_then_for_real() -> anyhow::Result<()> {
    const ACCOUNTS: usize = 100;
    const TARGET: u32 = 2;
    let (mut scenario, expected) = over_cap_with_dust(ACCOUNTS);
    scenario.prices.insert(UNPRICED.into(), Decimal::from(1));
    for account in &mut scenario.accounts {
        account.holdings.push(ScenarioHolding {
            asset: "XRP".into(),
            quantity: Decimal::from(50),
            avg_entry: None,
        });
    }
    let mut options = StackOptions::new(scenario);
    options.enforce_every = Duration::from_secs(3600);
    options.job_deadline = Duration::from_secs(90);
    // Normalizing to 2 sells most of each account: let the liquidation guard allow it, and keep
    // the start-up round's sales out of its window.
    let mut policy = toml::Table::new();
    policy.insert("max_liquidation_fraction".into(), "1".into());
    policy.insert("liquidation_window".into(), "1s".into());
    options.extra.insert("policy".into(), policy.into());
    let stack = Stack::start_with(options, |sim| {
        sim.admin().set_faults(FaultSpec {
            price_failures: Some([UNPRICED.to_string()].into()),
            ..Default::default()
        });
        Ok::<(), anyhow::Error>(())
    })
    .await?;
    let config = stack.config_path.display().to_string();
    stack
        .wait_results(WAIT, "the start-up enforce round", |rs| {
            rs.iter()
                .map(|r| r.account.to_string())
                .collect::<BTreeSet<_>>()
                .len()
                == ACCOUNTS
        })
        .await?;
    stack.sim.admin().reset_order_log();

    // What a correct normalization to 2 sells: the start-up round sold the four smallest priced
    // positions (the unpriced one counts toward the cap), leaving cap − 1 priced ones and the
    // unpriced one; normalizing to 2 keeps the largest priced one and the unpriced one.
    let want: BTreeMap<String, BTreeSet<String>> = (0..ACCOUNTS)
        .map(|i| {
            let id = account_id(i);
            let m = material(i, expected.caps[&id]);
            (id, m[4..m.len() - 1].iter().cloned().collect())
        })
        .collect();

    // Dry run: the plan, nothing placed.
    let dir = tempfile::tempdir()?;
    let dry_path = dir.path().join("dry.json");
    let target = TARGET.to_string();
    let out = nija(&[
        "normalize",
        "--all",
        "--dry-run",
        "--max-positions",
        &target,
        "--config",
        &config,
        "--operator",
        "ops",
        "--json",
        "--report",
        &dry_path.display().to_string(),
    ]);
    ok(&out);
    assert!(stack.order_log().is_empty(), "a dry run placed orders");
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        dry,
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&dry_path)?)?
    );
    assert!(dir.path().join("dry.md").exists());
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["operator"], "ops");
    assert_eq!(dry["accounts_processed"], ACCOUNTS);
    assert_eq!(sells_by_account(&dry, "planned_sells"), want);
    assert!(
        dry["positions_removed"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // Paused: nothing is placed; after resume the run proceeds.
    ok(&nija(&["pause", "--config", &config, "--operator", "ops"]));
    let out = nija(&[
        "normalize",
        "--account",
        "user-0001",
        "--max-positions",
        &target,
        "--config",
        &config,
        "--json",
        "--report",
        &dir.path().join("paused.json").display().to_string(),
    ]);
    ok(&out);
    let paused: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(paused["accounts"][0]["status"], "paused");
    assert!(stack.order_log().is_empty(), "orders placed while paused");
    ok(&nija(&["resume", "--config", &config, "--operator", "ops"]));

    // The real run carries out the dry run's plan.
    let real_path = dir.path().join("real.json");
    let started = std::time::Instant::now();
    let out = nija(&[
        "normalize",
        "--all",
        "--max-positions",
        &target,
        "--config",
        &config,
        "--operator",
        "ops",
        "--report",
        &real_path.display().to_string(),
    ]);
    ok(&out);
    eprintln!(
        "normalize of {ACCOUNTS} accounts to {TARGET} positions: {:?} (nija normalize, debug build)",
        started.elapsed()
    );
    let real: serde_json::Value = serde_json::from_slice(&std::fs::read(&real_path)?)?;
    let markdown = std::fs::read_to_string(dir.path().join("real.md"))?;
    assert!(
        markdown.contains("| Accounts processed | 100 (100 succeeded, 0 failed) |"),
        "{markdown}"
    );
    assert_eq!(real["accounts_failed"], 0);
    assert_eq!(real["cap_enforcements"], ACCOUNTS);
    assert_eq!(sells_by_account(&real, "sold"), want);
    let mut logged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in stack.order_log() {
        assert!(
            logged
                .entry(o.account.clone())
                .or_default()
                .insert(o.order.symbol.clone()),
            "{} sold {} twice",
            o.account,
            o.order.symbol
        );
    }
    assert_eq!(
        logged, want,
        "the report's sells are the simulator's orders"
    );
    let removed = real["positions_removed"].as_array().expect("removed");
    assert_eq!(
        removed.len(),
        want.values().map(BTreeSet::len).sum::<usize>()
    );
    let mut before = 0u64;
    for (i, a) in real["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .enumerate()
    {
        let id = account_id(i);
        assert_eq!(a["account"], id.as_str());
        assert_eq!(a["status"], "enforced", "{id}");
        assert_eq!(
            a["before"], expected.caps[&id],
            "{id}: cap − 1 priced + the unpriced one"
        );
        assert_eq!(a["after"], TARGET, "{id}: from the re-read");
        assert_eq!(a["unpriced"], serde_json::json!([UNPRICED]), "{id}");
        let largest = material(i, expected.caps[&id]).pop().expect("holdings");
        let kept: BTreeSet<&str> = a["kept"]
            .as_array()
            .expect("kept")
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        assert_eq!(kept, BTreeSet::from([largest.as_str(), UNPRICED]), "{id}");
        before += u64::from(expected.caps[&id]);
    }
    // Dust: reported, never sold (the start-up round blacklisted it already).
    assert_eq!(sells_by_account(&real, "dust"), expected.dust);
    assert!(
        real["dust_ignored"]
            .as_array()
            .expect("dust")
            .iter()
            .all(|d| d["newly_blacklisted"] == false)
    );
    assert_eq!(real["positions_before"], before);
    assert_eq!(real["positions_after"], ACCOUNTS as u64 * u64::from(TARGET));
    assert_eq!(real["unknown_after"], 0);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_blacklist_and_track_through_the_cli() -> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(3);
    let stack = Stack::start(StackOptions::new(scenario)).await?;
    stack
        .wait_results(WAIT, "the start-up round", |rs| rs.len() >= 3)
        .await?;
    let config = stack.config_path.display().to_string();
    let c = ["--config", config.as_str(), "--operator", "dave", "--json"];
    let with = |args: &[&str]| -> Output {
        let all: Vec<&str> = args.iter().chain(c.iter()).copied().collect();
        nija(&all)
    };

    // Enforce: the account is at its cap after the start-up round.
    let out = with(&["enforce", "--account", "user-0001"]);
    ok(&out);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reply["result"]["status"], "compliant");
    assert_eq!(
        reply["result"]["triggered_by"],
        serde_json::json!({"by": "operator", "name": "dave"})
    );
    let text = nija(&["enforce", "--account", "user-0001", "--config", &config]);
    ok(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("positions before 5 after 5 cap 5 excess 0"),
        "{text}"
    );
    let orders = stack.order_log().len();
    let dry = nija(&[
        "enforce",
        "--account",
        "user-0002",
        "--dry-run",
        "--config",
        &config,
    ]);
    ok(&dry);
    let dry = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.contains("(dry run): compliant"), "{dry}");
    assert_eq!(stack.order_log().len(), orders, "a dry run placed orders");

    // Blacklist: the dust the start-up round blacklisted, then add, remove, clear.
    let list = |out: &Output| -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["symbol"].as_str().expect("symbol").to_string())
            .collect()
    };
    let out = with(&["blacklist", "list", "--account", "user-0001"]);
    ok(&out);
    assert_eq!(list(&out), expected.dust["user-0001"]);
    let out = with(&[
        "blacklist",
        "add",
        "--account",
        "user-0001",
        "--symbol",
        "SHIB-USD",
    ]);
    ok(&out);
    let mut want = expected.dust["user-0001"].clone();
    want.insert("SHIB-USD".into());
    assert_eq!(list(&out), want);
    let out = with(&[
        "blacklist",
        "remove",
        "--account",
        "user-0001",
        "--symbol",
        "SHIB-USD",
    ]);
    ok(&out);
    assert_eq!(list(&out), expected.dust["user-0001"]);
    // Clear without --yes and without a terminal: refused, nothing changed.
    let out = with(&["blacklist", "clear", "--account", "user-0001"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let out = with(&["blacklist", "list", "--account", "user-0001"]);
    assert_eq!(list(&out), expected.dust["user-0001"]);
    let out = with(&["blacklist", "clear", "--account", "user-0001", "--yes"]);
    ok(&out);
    assert!(list(&out).is_empty());

    // Track: the tracker holds a strategy position.
    let out = with(&[
        "track",
        "--account",
        "user-0002",
        "--symbol",
        "DOGE-USD",
        "--entry-price",
        "0.15",
        "--entry-time",
        "2026-11-20T14:00:00Z",
    ]);
    ok(&out);
    let js = async_nats::jetstream::new(stack.client.clone());
    let kv = js.get_key_value("nija-tracker").await?;
    let entry = kv
        .get(account_symbol_key(
            &AccountId::new("user-0002")?,
            &Symbol::new("DOGE-USD")?,
        ))
        .await?
        .expect("the tracker holds the position");
    let position: TrackedPosition = decode(&entry)?;
    assert_eq!(position.source, PositionSource::NijaStrategy);
    assert_eq!(position.entry_price.to_string(), "0.15");
    assert_eq!(
        position.entry_time.to_rfc3339(),
        "2026-11-20T14:00:00+00:00"
    );

    // An unknown account is a usage error.
    let out = with(&["enforce", "--account", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    stack.shutdown().await;
    Ok(())
}

#[test]
fn config_validate_lists_every_error_and_unreachable_nats_exits_3() -> anyhow::Result<()> {
    nija_e2e::stack::ensure_binaries()?;
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "mode = \"sometimes\"\ncolour = \"red\"\n[nats]\nurl = \"nats://127.0.0.1:4222\"\n\
         [policy]\nstop_loss_pct = 0.5\ndust_treshold_usd = \"1\"\n\
         [schedule]\nenforce_every = \"soon\"\n",
    )?;
    let path = broken.display().to_string();
    let out = nija(&["config", "validate", &path, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let keys: BTreeSet<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["key"].as_str())
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "mode",
        "colour",
        "policy.stop_loss_pct",
        "policy.dust_treshold_usd",
        "schedule.enforce_every",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
        assert!(stderr.contains(key), "{key} missing from {stderr}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[nats]\nurl = \"nats://127.0.0.1:4222\"\n")?;
    ok(&nija(&["config", "validate", &good.display().to_string()]));

    // Every command explains itself with examples.
    for command in ["enforce", "normalize", "blacklist", "track", "config"] {
        let out = nija(&[command, "--help"]);
        ok(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:\n  nija "),
            "{command}"
        );
    }

    // NATS unreachable: 3, saying what was tried.
    let port = nija_e2e::free_port();
    let config = dir.path().join("nija.toml");
    std::fs::write(
        &config,
        format!("[nats]\nurl = \"nats://127.0.0.1:{port}\"\n"),
    )?;
    let config = config.display().to_string();
    for args in [
        vec!["enforce", "--account", "a"],
        vec!["normalize", "--all"],
        vec!["blacklist", "list", "--account", "a"],
        vec![
            "track",
            "--account",
            "a",
            "--symbol",
            "BTC-USD",
            "--entry-price",
            "1",
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--config", &config]);
        let out = nija(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(&port.to_string()), "{args:?}: {stderr}");
    }
    // Usage errors: 2.
    assert_eq!(
        nija(&["normalize", "--config", &config]).status.code(),
        Some(2)
    );
    Ok(())
}

/// GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_runbook_has_its_section_in_the_guide() -> anyhow::Result<()> {
    let root = workspace_root();
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/nija-rules.yml"))?;
    let guide = std::fs::read_to_string(root.join("docs/operations.md"))?;
    let anchors: BTreeSet<String> = guide
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let mut runbooks = 0;
    for line in rules.lines() {
        let Some(url) = line.trim().strip_prefix("runbook_url:") else {
            continue;
        };
        let url = url.trim().trim_matches('"');
        let (file, fragment) = url.split_once('#').expect("runbook_url has an anchor");
        assert_eq!(Path::new(file), Path::new("docs/operations.md"));
        assert!(anchors.contains(fragment), "no heading for #{fragment}");
        runbooks += 1;
    }
    let alerts = rules.matches("- alert:").count();
    assert!(runbooks > 0);
    assert_eq!(runbooks, alerts, "every alert has a runbook_url");
    Ok(())
}

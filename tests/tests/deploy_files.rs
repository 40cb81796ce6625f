//! The deployment files agree with the code they deploy.
//!
//! No container engine or cluster exists on the development machines (DESIGN §6), so these tests
//! hold the files to the workspace instead: the Dockerfile copies paths that exist and builds
//! binaries that exist, exposing the configuration's default ports; the Kubernetes ConfigMap's
//! TOML loads with nija-config; the NATS permissions and the KEDA triggers use exactly the names
//! of `proto/src/names.rs`; the derived files are current; and `deploy/check.sh` (render every
//! overlay, validate it offline) passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use nija_config::{Config, Credentials, MapEnv, Role};
use nija_e2e::workspace_root;
use nija_proto::Partition;
use nija_proto::names;

fn read(path: &str) -> anyhow::Result<String> {
    let full = workspace_root().join(path);
    std::fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))
}

/// Dockerfile instructions with their continuation lines joined.
fn dockerfile() -> anyhow::Result<Vec<String>> {
    let text = read("deploy/docker/Dockerfile")?;
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    Ok(out)
}

fn instruction_args<'a>(lines: &'a [String], name: &str) -> Vec<Vec<&'a str>> {
    lines
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == name).then(|| words.collect())
        })
        .collect()
}

/// `[[bin]]` names of every workspace package, from `cargo metadata`.
fn workspace_binaries() -> anyhow::Result<BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()?;
    ensure!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut bins = BTreeSet::new();
    for package in meta["packages"].as_array().context("packages")? {
        for target in package["targets"].as_array().context("targets")? {
            let is_bin = target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
            if is_bin {
                bins.insert(target["name"].as_str().context("name")?.to_string());
            }
        }
    }
    Ok(bins)
}

#[test]
fn dockerfile_copies_what_exists_including_every_member() -> anyhow::Result<()> {
    let lines = dockerfile()?;
    let mut copied = Vec::new();
    for args in instruction_args(&lines, "COPY") {
        if args.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        let (dest, sources) = args.split_last().context("COPY without arguments")?;
        ensure!(!dest.is_empty() && !sources.is_empty(), "COPY {args:?}");
        for source in sources {
            let path = workspace_root().join(source);
            ensure!(
                path.exists(),
                "the Dockerfile copies {source}, which does not exist"
            );
            copied.push(PathBuf::from(source));
        }
    }
    for needed in ["Cargo.toml", "Cargo.lock"] {
        ensure!(
            copied.contains(&PathBuf::from(needed)),
            "{needed} is not copied"
        );
    }
    let manifest: toml::Table = read("Cargo.toml")?.parse()?;
    let members = manifest["workspace"]["members"]
        .as_array()
        .context("workspace.members")?;
    for member in members {
        let member = Path::new(member.as_str().context("member")?);
        ensure!(
            copied.iter().any(|c| member.starts_with(c)),
            "workspace member {} is not copied: the build would fail",
            member.display()
        );
    }
    Ok(())
}

#[test]
fn dockerfile_toolchain_meets_the_workspace_rust_version() -> anyhow::Result<()> {
    let lines = dockerfile()?;
    let from = instruction_args(&lines, "FROM");
    let image = from
        .iter()
        .filter_map(|args| args.first())
        .find_map(|image| image.strip_prefix("rust:"))
        .context("no rust: builder image")?;
    let version = |v: &str| -> anyhow::Result<(u32, u32)> {
        let mut parts = v.split(['.', '-']);
        let major = parts.next().context("major")?.parse()?;
        let minor = parts.next().context("minor")?.parse()?;
        Ok((major, minor))
    };
    let manifest: toml::Table = read("Cargo.toml")?.parse()?;
    let wanted = manifest["workspace"]["package"]["rust-version"]
        .as_str()
        .context("workspace.package.rust-version")?;
    assert!(
        version(image)? >= version(wanted)?,
        "the builder image rust:{image} is older than rust-version {wanted}"
    );
    Ok(())
}

#[test]
fn dockerfile_builds_the_four_binaries_of_the_workspace() -> anyhow::Result<()> {
    let lines = dockerfile()?;
    let run = instruction_args(&lines, "RUN").concat();
    let built: BTreeSet<&str> = run
        .windows(2)
        .filter(|w| w[0] == "--bin")
        .map(|w| w[1])
        .collect();
    let wanted = BTreeSet::from(["nija", "nija-coordinator", "nija-sim", "nija-worker"]);
    assert_eq!(
        built, wanted,
        "the image must hold every binary of DESIGN §5"
    );
    let copied_out: BTreeSet<&str> = run
        .iter()
        .filter_map(|w| w.strip_prefix("target/release/"))
        .collect();
    assert_eq!(
        copied_out, wanted,
        "each built binary is copied into the image"
    );

    let binaries = workspace_binaries()?;
    let missing: Vec<_> = wanted.iter().filter(|b| !binaries.contains(**b)).collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile builds {missing:?}, which no workspace package defines (binaries: {binaries:?})"
    );
    Ok(())
}

#[test]
fn dockerfile_exposes_the_default_ports_and_runs_unprivileged() -> anyhow::Result<()> {
    let lines = dockerfile()?;
    let exposed: BTreeSet<u16> = instruction_args(&lines, "EXPOSE")
        .concat()
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, _>>()?;
    let defaults = Config::default();
    let wanted = BTreeSet::from([
        defaults.http_listen(Role::Coordinator).port(),
        defaults.http_listen(Role::Worker).port(),
    ]);
    assert_eq!(exposed, wanted);

    let users = instruction_args(&lines, "USER");
    let last = users
        .last()
        .context("no USER: the image would run as root")?;
    let user = last.first().context("USER without a value")?;
    assert!(
        !["root", "0", "0:0"].contains(user),
        "the image runs as {user}"
    );
    Ok(())
}

/// Loads a ConfigMap's TOML the way the pod sees it: every file of the ConfigMap in one folder.
fn load_configmap(files: &[(&str, &str)], role_file: &str) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir()?;
    for (name, path) in files {
        std::fs::write(dir.path().join(name), read(path)?)?;
    }
    let loaded = Config::load(&dir.path().join(role_file), &MapEnv::default())
        .map_err(|e| anyhow::anyhow!("{role_file}: {e}"))?;
    Ok(loaded.config)
}

/// The ConfigMap of each variant: base (account Secrets read through the API), dev (the
/// file-credentials component's accounts), prod (NATS over TLS).
fn configmaps() -> [Vec<(&'static str, &'static str)>; 3] {
    let base = vec![
        (
            "coordinator.toml",
            "deploy/k8s/base/config/coordinator.toml",
        ),
        ("worker.toml", "deploy/k8s/base/config/worker.toml"),
        ("accounts.toml", "deploy/k8s/base/config/accounts.toml"),
    ];
    let dev = vec![
        (
            "coordinator.toml",
            "deploy/k8s/base/config/coordinator.toml",
        ),
        ("worker.toml", "deploy/k8s/base/config/worker.toml"),
        (
            "accounts.toml",
            "deploy/k8s/components/file-credentials/accounts.toml",
        ),
    ];
    let prod = vec![
        (
            "coordinator.toml",
            "deploy/k8s/overlays/prod/config/coordinator.toml",
        ),
        ("worker.toml", "deploy/k8s/overlays/prod/config/worker.toml"),
        ("accounts.toml", "deploy/k8s/base/config/accounts.toml"),
    ];
    [base, dev, prod]
}

#[test]
fn kubernetes_configuration_loads_and_roles_agree() -> anyhow::Result<()> {
    let defaults = Config::default();
    let statefulset = read("deploy/k8s/base/nats/statefulset.yaml")?;
    let nats_nodes: u8 = statefulset
        .lines()
        .find_map(|l| l.strip_prefix("  replicas:"))
        .ok_or_else(|| anyhow::anyhow!("no spec.replicas in the NATS StatefulSet"))?
        .trim()
        .parse()?;
    for files in configmaps() {
        let coordinator = load_configmap(&files, "coordinator.toml")?;
        let worker = load_configmap(&files, "worker.toml")?;
        assert_eq!(
            coordinator.http_listen(Role::Coordinator).port(),
            defaults.http_listen(Role::Coordinator).port()
        );
        assert!(
            coordinator
                .http_listen(Role::Coordinator)
                .ip()
                .is_unspecified()
        );
        assert_eq!(
            worker.http_listen(Role::Worker),
            defaults.http_listen(Role::Worker)
        );
        // Apart from the listener (and the file each was read from), one configuration.
        let strip = |mut c: Config| {
            c.http = Default::default();
            c.file = None;
            c
        };
        assert_eq!(strip(coordinator.clone()), strip(worker.clone()));
        assert!(!worker.accounts.is_empty());
        assert!(
            worker.nats.nkey.is_some(),
            "every role authenticates to NATS with its nkey"
        );
        // The workers' grace period (90 s, deployment.yaml) outlasts a job.
        assert!(worker.schedule.job_deadline.as_secs() < 90);
        // Every stream and bucket lives on every node of the NATS StatefulSet.
        assert_eq!(
            coordinator.coordinator.stream_replicas, nats_nodes,
            "[coordinator] stream_replicas must equal the NATS StatefulSet's replicas"
        );
    }
    Ok(())
}

#[test]
fn worker_secret_role_names_exactly_the_account_secrets() -> anyhow::Result<()> {
    let [base, dev, _] = configmaps();
    let config = load_configmap(&base, "worker.toml")?;
    let wanted: BTreeSet<String> = config
        .accounts
        .iter()
        .filter_map(|a| match &a.credentials {
            Credentials::K8sSecret { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let role = read("deploy/k8s/base/worker/secrets-role.yaml")?;
    let listed: BTreeSet<String> = role
        .lines()
        .skip_while(|l| !l.contains("resourceNames:"))
        .skip(1)
        .filter_map(|l| l.trim().strip_prefix("- ").map(str::to_string))
        .collect();
    assert_eq!(listed, wanted);
    assert!(role.contains("verbs: [get]"), "get only: no list, no watch");

    // The file variant describes the same fleet, every credential under the projected mount.
    let files = load_configmap(&dev, "worker.toml")?;
    let ids = |c: &Config| c.accounts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&files), ids(&config));
    for account in &files.accounts {
        match &account.credentials {
            Credentials::File(path) => assert_eq!(
                path,
                Path::new(&format!(
                    "/var/run/secrets/nija/accounts/{}.json",
                    account.id
                ))
            ),
            other => bail!("{}: {other} in the file-credentials variant", account.id),
        }
    }
    Ok(())
}

#[test]
fn keda_triggers_cover_every_partition_consumer() -> anyhow::Result<()> {
    let [_, _, prod] = configmaps();
    let config = load_configmap(&prod, "worker.toml")?;
    let scaled = read("deploy/k8s/overlays/prod/scaledobject.yaml")?;
    let consumers: Vec<&str> = scaled
        .lines()
        .filter_map(|l| l.trim().strip_prefix("consumer: "))
        .collect();
    let wanted: Vec<String> = (0..config.worker.partitions)
        .map(|p| names::partition_consumer(Partition(p)))
        .collect();
    assert_eq!(consumers, wanted);
    let streams: BTreeSet<&str> = scaled
        .lines()
        .filter_map(|l| l.trim().strip_prefix("stream: "))
        .collect();
    assert_eq!(streams, BTreeSet::from([names::JOBS_STREAM]));
    Ok(())
}

/// Every quoted subject of the NATS permissions.
fn permission_subjects() -> anyhow::Result<Vec<String>> {
    let text = read("deploy/nats/accounts.conf")?;
    let mut subjects = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('"')
            && let Some(subject) = rest.strip_suffix('"')
        {
            subjects.push(subject.to_string());
        }
    }
    ensure!(!subjects.is_empty(), "no subjects found in accounts.conf");
    Ok(subjects)
}

#[test]
fn nats_permissions_use_exactly_the_wire_map_names() -> anyhow::Result<()> {
    let streams = [names::JOBS_STREAM, names::RESULTS_STREAM, names::DLQ_STREAM];
    let buckets = [
        names::BLACKLIST_BUCKET,
        names::TRACKER_BUCKET,
        names::LEASES_BUCKET,
        names::CONTROL_BUCKET,
        names::ACCOUNTS_BUCKET,
    ];
    let prefixes = [
        names::JOBS_PREFIX,
        names::RESULTS_PREFIX,
        names::DLQ_PREFIX,
        names::HEARTBEAT_PREFIX,
        names::CONTROL_PREFIX,
    ];
    let kv_streams: Vec<String> = buckets.iter().map(|b| format!("KV_{b}")).collect();
    let mut seen = BTreeSet::new();
    for subject in permission_subjects()? {
        let tokens: Vec<&str> = subject.split('.').collect();
        match tokens[0] {
            "nija" => {
                let prefix = format!("nija.{}", tokens.get(1).context("bare nija")?);
                if tokens[1] != ">" && !prefixes.contains(&prefix.as_str()) {
                    bail!("{subject}: {prefix} is not a subject prefix of proto::names");
                }
                seen.insert(prefix);
            }
            "$KV" => {
                let bucket = tokens.get(1).context("bare $KV")?;
                if *bucket != ">" && !buckets.contains(bucket) {
                    bail!("{subject}: {bucket} is not a bucket of proto::names");
                }
                seen.insert(bucket.to_string());
            }
            "$JS" => {
                for token in &tokens[2..] {
                    let is_name = token.starts_with("NIJA_") || token.starts_with("KV_");
                    if is_name && !streams.contains(token) && !kv_streams.iter().any(|k| k == token)
                    {
                        bail!("{subject}: {token} is not a stream of proto::names");
                    }
                    if is_name {
                        seen.insert(token.to_string());
                    }
                }
            }
            "_INBOX" => {}
            other => bail!("{subject}: unexpected subject root {other}"),
        }
    }
    for name in streams
        .iter()
        .map(|s| s.to_string())
        .chain(kv_streams)
        .chain(buckets.iter().map(|b| b.to_string()))
        .chain(prefixes.iter().map(|p| p.to_string()))
    {
        assert!(seen.contains(&name), "{name} appears in no permission");
    }
    Ok(())
}

#[test]
fn derived_files_are_current() -> anyhow::Result<()> {
    let out = Command::new("python3")
        .arg("deploy/k8s/sync.py")
        .arg("--check")
        .current_dir(workspace_root())
        .output()
        .context("python3 runs deploy/k8s/sync.py")?;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn every_overlay_renders_and_validates() -> anyhow::Result<()> {
    let out = Command::new("bash")
        .arg("deploy/check.sh")
        .current_dir(workspace_root())
        .output()
        .context("bash runs deploy/check.sh")?;
    assert!(
        out.status.success(),
        "deploy/check.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

//! The dashboards, the alert rules and docs/metrics.md use exactly the names the registries render.
//!
//! Every role's metrics are registered and exercised once (so labelled families have a series),
//! rendered, and compared with every `nija_*` token in `deploy/grafana/*.json`,
//! `deploy/prometheus/nija-rules.yml` and `docs/metrics.md`. Histograms render as `_bucket`,
//! `_sum` and `_count`, which is what queries use.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nija_telemetry::render;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `nija_*` metric names in `text`.
fn tokens(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("nija_") {
        let start = i + at;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let mut end = start + 5;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // Skip the bare prefix and Rust paths such as `nija_telemetry::metrics`.
        let rust_path = text[end..].starts_with("::");
        if boundary && end > start + 5 && !rust_path {
            found.insert(text[start..end].to_string());
        }
        i = end;
    }
    found
}

/// Sample names (`name` or `name{...}`) and metric family names (`# TYPE name`) rendered by every
/// role, with each family exercised once.
async fn rendered() -> (BTreeSet<String>, BTreeSet<String>) {
    let (coordinator, worker, _supervisor) = common::exercised_registries().await;
    let mut samples = BTreeSet::new();
    let mut families = BTreeSet::new();
    for text in [render(&coordinator), render(&worker)] {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                families.insert(rest.split_whitespace().next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                samples.insert(name.to_string());
            }
        }
    }
    (samples, families)
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn dashboards_and_rules_use_only_registered_names() {
    let (samples, _) = rendered().await;
    let mut sources = files_under(&repo().join("deploy/grafana"), "json");
    assert!(sources.len() >= 4, "dashboards missing: {sources:?}");
    sources.push(repo().join("deploy/prometheus/nija-rules.yml"));
    sources.extend(files_under(&repo().join("deploy/prometheus/tests"), "yml"));
    let mut unknown = Vec::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        let used = tokens(&text);
        assert!(!used.is_empty(), "{path:?} uses no metric");
        for name in used {
            if !samples.contains(&name) {
                unknown.push(format!("{}: {name}", path.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names not registered by nija-telemetry:\n{}",
        unknown.join("\n")
    );
}

#[tokio::test]
async fn docs_list_every_metric_and_nothing_else() {
    let (samples, families) = rendered().await;
    let docs = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    let documented = tokens(&docs);
    let undocumented: Vec<_> = families.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "missing from docs/metrics.md: {undocumented:?}"
    );
    let unknown: Vec<_> = documented
        .iter()
        .filter(|n| !samples.contains(*n) && !families.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/metrics.md names unknown metrics: {unknown:?}"
    );
}

#[test]
fn tokens_finds_whole_names_only() {
    let found = tokens(
        r#"rate(nija_jobs_published_total[5m]) x_nija_no "nija_paused" nija_ nija_telemetry::x"#,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["nija_jobs_published_total", "nija_paused"]
    );
}

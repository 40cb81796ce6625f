//! `nija normalize`: one normalize job per account, followed to the end with a progress bar (on a
//! terminal) or plain lines, then an exact report (JSON + Markdown) built from the results.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use clap::Args;
use nija_proto::AccountId;
use nija_proto::control::{
    MAX_PAGE, NormalizeReport, NormalizeReportRequest, NormalizeRequest, NormalizeStarted,
    VERB_NORMALIZE, VERB_NORMALIZE_REPORT,
};

use super::{Conn, EXIT_SOME_FAILED, Failure, Session, print_json, usage};
use crate::report::RunReport;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nija normalize --all --dry-run                       # the plan for every account\n  \
    nija normalize --all --max-positions 5 --report /tmp/norm.json\n  \
    nija normalize --account user-0001 --account user-0002 --json")]
pub struct NormalizeArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Every configured account.
    #[arg(long, conflicts_with = "account", required_unless_present = "account")]
    pub all: bool,
    /// These accounts (repeat the flag).
    #[arg(long)]
    pub account: Vec<AccountId>,
    /// Plan only; place nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Cap for this run (default: each account's configured cap).
    #[arg(long)]
    pub max_positions: Option<u32>,
    /// The JSON report's path; the Markdown summary goes beside it (`.md`).
    /// Default: `nija-normalize-<run>.json` in the current directory.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// How often to poll the run's progress.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub poll: Duration,
}

pub async fn run(args: NormalizeArgs) -> Result<(), Failure> {
    let session = Session::open(&args.conn).await?;
    let req = NormalizeRequest {
        accounts: (!args.all).then(|| args.account.clone()),
        dry_run: args.dry_run,
        max_positions: args.max_positions,
        operator: args.conn.operator(),
    };
    let started: NormalizeStarted = session.call(VERB_NORMALIZE, &req).await?;
    eprintln!(
        "normalization {} started: {} accounts{}",
        started.run_id,
        started.accounts,
        if args.dry_run { " (dry run)" } else { "" }
    );
    let bar = std::io::stderr().is_terminal();
    let mut last_printed = u32::MAX;
    let head = loop {
        let head: NormalizeReport = session
            .call(
                VERB_NORMALIZE_REPORT,
                &NormalizeReportRequest {
                    run_id: started.run_id.clone(),
                    offset: 0,
                    limit: Some(0),
                },
            )
            .await?;
        let done = head.finished + u32::try_from(head.stalled.len()).unwrap_or(u32::MAX);
        if done != last_printed {
            progress(bar, done, head.accounts);
            last_printed = done;
        }
        if head.is_done() {
            break head;
        }
        tokio::time::sleep(args.poll).await;
    };
    if bar {
        eprintln!();
    }
    let mut results = Vec::with_capacity(head.finished as usize);
    let mut offset = Some(0);
    while let Some(o) = offset {
        let page: NormalizeReport = session
            .call(
                VERB_NORMALIZE_REPORT,
                &NormalizeReportRequest {
                    run_id: started.run_id.clone(),
                    offset: o,
                    limit: Some(MAX_PAGE),
                },
            )
            .await?;
        results.extend(page.results);
        offset = page.next_offset;
    }
    let report = RunReport::build(&head, &results, Utc::now());
    let json_path = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("nija-normalize-{}.json", report.run_id)));
    let md_path = json_path.with_extension("md");
    let text = serde_json::to_string_pretty(&report).map_err(usage)?;
    std::fs::write(&json_path, text)
        .map_err(|e| usage(anyhow!("cannot write {}: {e}", json_path.display())))?;
    std::fs::write(&md_path, report.markdown())
        .map_err(|e| usage(anyhow!("cannot write {}: {e}", md_path.display())))?;
    eprintln!(
        "report written to {} and {}",
        json_path.display(),
        md_path.display()
    );
    if args.conn.json {
        print_json(&report)?;
    } else {
        println!(
            "{} accounts: {} succeeded, {} failed; positions {} → {} (re-read); {} removed (${}); \
             {} dust ignored; {} cap enforcements; {} errors",
            report.accounts_processed,
            report.accounts_succeeded,
            report.accounts_failed,
            report.positions_before,
            report.positions_after,
            report.positions_removed.len(),
            report.removed_usd,
            report.dust_ignored.len(),
            report.cap_enforcements,
            report.errors.len()
        );
        for a in &report.accounts {
            if args.dry_run && !a.planned_sells.is_empty() {
                let list: Vec<String> = a.planned_sells.iter().map(|s| s.to_string()).collect();
                println!("{} would sell {}", a.account, list.join(" "));
            }
        }
        for e in &report.errors {
            println!("{} error [{}] {}", e.account, e.class, e.message);
        }
    }
    if report.all_succeeded() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_SOME_FAILED,
            error: anyhow!(
                "{} of {} accounts failed (see the report)",
                report.accounts_failed,
                report.accounts_processed
            ),
        })
    }
}

fn progress(bar: bool, done: u32, total: u32) {
    if bar {
        const WIDTH: u32 = 40;
        let filled = (done.min(total) * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH);
        eprint!(
            "\r[{}{}] {done}/{total}",
            "#".repeat(filled as usize),
            "-".repeat((WIDTH - filled) as usize)
        );
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("progress {done}/{total}");
    }
}

//! The normalization report (DESIGN §1 "Normalization"): built from the jobs' results only, so
//! every count after a run comes from the workers' fresh re-reads, never from the cap. Written
//! as JSON (exact, for tools) and as a Markdown summary (for people).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use nija_proto::control::NormalizeReport;
use nija_proto::messages::{FillStatus, JobResult, ResultStatus};
use nija_proto::{AccountId, Quantity, Symbol, Usd};
use serde::{Deserialize, Serialize};

/// The whole report of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub operator: String,
    pub dry_run: bool,
    pub max_positions: Option<u32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub accounts_processed: u32,
    pub accounts_succeeded: u32,
    pub accounts_failed: u32,
    /// Material positions before, summed over the accounts' snapshots.
    pub positions_before: u64,
    /// Material positions after, summed over the accounts' fresh re-reads.
    pub positions_after: u64,
    /// Accounts whose count after is unknown (failed re-read): not in `positions_after`.
    pub unknown_after: u32,
    pub positions_removed: Vec<Removed>,
    pub removed_usd: Usd,
    pub dust_ignored: Vec<Dust>,
    /// Accounts whose cap was enforced by this run (status `enforced`).
    pub cap_enforcements: u32,
    pub by_status: BTreeMap<String, u32>,
    pub errors: Vec<AccountError>,
    pub accounts: Vec<AccountReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub account: AccountId,
    pub symbol: Symbol,
    pub quantity: Quantity,
    pub usd_value: Usd,
    pub order_id: Option<String>,
    pub fill_status: FillStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dust {
    pub account: AccountId,
    pub symbol: Symbol,
    pub usd_value: Usd,
    pub newly_blacklisted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountError {
    pub account: AccountId,
    pub class: String,
    pub message: String,
    pub symbol: Option<Symbol>,
}

/// One account: its snapshot before, the plan, what was sold, its count after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReport {
    pub account: AccountId,
    /// `stalled` when no result came before the job's deadline.
    pub status: String,
    pub cap: Option<u32>,
    pub before: Option<u32>,
    /// Material symbols in the snapshot before (kept, sold, unpriced, unsellable).
    pub before_symbols: Vec<Symbol>,
    /// From the fresh re-read after the run.
    pub after: Option<u32>,
    /// What the plan sells (a dry run's plan; a real run carries it out).
    pub planned_sells: Vec<Symbol>,
    pub sold: Vec<Symbol>,
    pub kept: Vec<Symbol>,
    pub dust: Vec<Symbol>,
    pub unpriced: Vec<Symbol>,
    pub unsellable: Vec<Symbol>,
    pub errors: u32,
}

impl RunReport {
    /// Builds the report from the run's header and every one of its results.
    pub fn build(head: &NormalizeReport, results: &[JobResult], now: DateTime<Utc>) -> RunReport {
        let mut report = RunReport {
            run_id: head.run_id.clone(),
            operator: head.operator.clone(),
            dry_run: head.dry_run,
            max_positions: head.max_positions,
            started_at: head.started_at,
            finished_at: now,
            accounts_processed: head.accounts,
            accounts_succeeded: 0,
            accounts_failed: 0,
            positions_before: 0,
            positions_after: 0,
            unknown_after: 0,
            positions_removed: Vec::new(),
            removed_usd: Usd::ZERO,
            dust_ignored: Vec::new(),
            cap_enforcements: 0,
            by_status: BTreeMap::new(),
            errors: Vec::new(),
            accounts: Vec::new(),
        };
        for r in results {
            report.add(r);
        }
        for account in &head.stalled {
            report.accounts_failed += 1;
            report.unknown_after += 1;
            *report.by_status.entry("stalled".into()).or_default() += 1;
            report.errors.push(AccountError {
                account: account.clone(),
                class: "deadline".into(),
                message: "no result before the job's deadline (see nija status)".into(),
                symbol: None,
            });
            report.accounts.push(AccountReport {
                account: account.clone(),
                status: "stalled".into(),
                cap: None,
                before: None,
                before_symbols: Vec::new(),
                after: None,
                planned_sells: Vec::new(),
                sold: Vec::new(),
                kept: Vec::new(),
                dust: Vec::new(),
                unpriced: Vec::new(),
                unsellable: Vec::new(),
                errors: 1,
            });
        }
        report.accounts.sort_by(|a, b| a.account.cmp(&b.account));
        report
    }

    fn add(&mut self, r: &JobResult) {
        if r.status.is_success() {
            self.accounts_succeeded += 1;
        } else {
            self.accounts_failed += 1;
        }
        if r.status == ResultStatus::Enforced {
            self.cap_enforcements += 1;
        }
        *self
            .by_status
            .entry(r.status.as_str().to_string())
            .or_default() += 1;
        self.positions_before += u64::from(r.count_before.unwrap_or(0));
        match r.count_after {
            Some(n) => self.positions_after += u64::from(n),
            None => self.unknown_after += 1,
        }
        for s in &r.sold {
            self.removed_usd = self.removed_usd + s.usd_value;
            self.positions_removed.push(Removed {
                account: r.account.clone(),
                symbol: s.symbol.clone(),
                quantity: s.filled_quantity,
                usd_value: s.usd_value,
                order_id: s.order_id.clone(),
                fill_status: s.fill_status,
            });
        }
        for e in &r.errors {
            self.errors.push(AccountError {
                account: r.account.clone(),
                class: e.class.clone(),
                message: e.message.clone(),
                symbol: e.symbol.clone(),
            });
        }
        let mut account = AccountReport {
            account: r.account.clone(),
            status: r.status.as_str().to_string(),
            cap: Some(r.max_allowed),
            before: r.count_before,
            before_symbols: Vec::new(),
            after: r.count_after,
            planned_sells: Vec::new(),
            sold: r.sold.iter().map(|s| s.symbol.clone()).collect(),
            kept: Vec::new(),
            dust: Vec::new(),
            unpriced: Vec::new(),
            unsellable: Vec::new(),
            errors: u32::try_from(r.errors.len()).unwrap_or(u32::MAX),
        };
        if let Some(plan) = &r.plan {
            for d in &plan.dust {
                self.dust_ignored.push(Dust {
                    account: r.account.clone(),
                    symbol: d.symbol.clone(),
                    usd_value: d.usd_value,
                    newly_blacklisted: d.newly_blacklisted,
                });
            }
            account.planned_sells = plan.sells.iter().map(|s| s.symbol.clone()).collect();
            account.kept = plan.kept.iter().map(|k| k.symbol.clone()).collect();
            account.dust = plan.dust.iter().map(|d| d.symbol.clone()).collect();
            account.unpriced = plan.unpriced.iter().map(|u| u.symbol.clone()).collect();
            account.unsellable = plan.unsellable.iter().map(|u| u.symbol.clone()).collect();
            let mut before: Vec<Symbol> = account
                .kept
                .iter()
                .chain(&account.planned_sells)
                .chain(&account.unsellable)
                .chain(plan.unpriced.iter().map(|u| &u.symbol))
                .cloned()
                .collect();
            before.sort();
            before.dedup();
            account.before_symbols = before;
        }
        self.accounts.push(account);
    }

    pub fn all_succeeded(&self) -> bool {
        self.accounts_failed == 0
    }

    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Normalization {}{}\n",
            self.run_id,
            if self.dry_run { " (dry run)" } else { "" }
        );
        let _ = writeln!(
            md,
            "Operator {}, started {}, finished {}, max positions {}.\n",
            self.operator,
            self.started_at,
            self.finished_at,
            self.max_positions
                .map_or("per account".into(), |n| n.to_string())
        );
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(
            md,
            "| Accounts processed | {} ({} succeeded, {} failed) |",
            self.accounts_processed, self.accounts_succeeded, self.accounts_failed
        );
        let _ = writeln!(
            md,
            "| Positions before → after (re-read) | {} → {}{} |",
            self.positions_before,
            self.positions_after,
            if self.unknown_after > 0 {
                format!(" ({} accounts unknown after)", self.unknown_after)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            md,
            "| Positions removed | {} (${}) |",
            self.positions_removed.len(),
            self.removed_usd
        );
        let _ = writeln!(md, "| Dust ignored | {} |", self.dust_ignored.len());
        let _ = writeln!(md, "| Cap enforcements | {} |", self.cap_enforcements);
        let _ = writeln!(md, "| Errors | {} |\n", self.errors.len());
        let _ = writeln!(md, "## Accounts\n");
        let _ = writeln!(
            md,
            "| Account | Status | Cap | Before | After | Sold | Dust | Unpriced | Errors |\n\
             |---|---|---|---|---|---|---|---|---|"
        );
        let join = |v: &[Symbol]| {
            v.iter()
                .map(Symbol::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let n = |v: Option<u32>| v.map_or("?".into(), |n| n.to_string());
        for a in &self.accounts {
            let sold = if self.dry_run {
                format!("would sell {}", join(&a.planned_sells))
            } else {
                join(&a.sold)
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                a.account,
                a.status,
                n(a.cap),
                n(a.before),
                n(a.after),
                sold,
                join(&a.dust),
                join(&a.unpriced),
                a.errors
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(md, "\n## Errors\n");
            for e in &self.errors {
                let _ = writeln!(
                    md,
                    "- {} [{}]{}: {}",
                    e.account,
                    e.class,
                    e.symbol.as_ref().map_or(String::new(), |s| format!(" {s}")),
                    e.message
                );
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nija_proto::ids::{JobKind, WorkerId};
    use nija_proto::messages::{JobError, TriggeredBy};
    use nija_proto::plan::{AccountType, Mode};

    fn result(account: &str, status: ResultStatus, before: u32, after: Option<u32>) -> JobResult {
        let account = AccountId::new(account).expect("test data");
        JobResult {
            job_id: nija_proto::JobId::new(format!("normalize-{account}-req-1"))
                .expect("test data"),
            kind: JobKind::Normalize,
            account,
            account_type: AccountType::User,
            worker: WorkerId::new("w-1").expect("test data"),
            status,
            triggered_by: TriggeredBy::Operator("ops".into()),
            mode: Mode::Act,
            dry_run: false,
            forced: false,
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            finished_at: DateTime::<Utc>::UNIX_EPOCH,
            count_before: Some(before),
            count_after: after,
            max_allowed: 2,
            excess: before.saturating_sub(2),
            sold: Vec::new(),
            plan: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn counts_come_from_the_results_and_failures_are_listed_with_their_class() {
        let ok = result("a", ResultStatus::Enforced, 5, Some(2));
        let mut failed = result("b", ResultStatus::Failed, 4, None);
        failed.errors.push(JobError {
            class: "snapshot".into(),
            message: "broker down".into(),
            symbol: None,
        });
        let head = NormalizeReport {
            run_id: "r1".into(),
            operator: "ops".into(),
            dry_run: false,
            max_positions: Some(2),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            accounts: 3,
            finished: 2,
            stalled: vec![AccountId::new("c").expect("test data")],
            summary: Default::default(),
            results: Vec::new(),
            offset: 0,
            next_offset: None,
        };
        let report = RunReport::build(&head, &[ok, failed], DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(report.accounts_succeeded, 1);
        assert_eq!(report.accounts_failed, 2);
        assert_eq!(report.positions_before, 9);
        assert_eq!(report.positions_after, 2);
        assert_eq!(report.unknown_after, 2);
        assert_eq!(report.cap_enforcements, 1);
        let classes: Vec<&str> = report.errors.iter().map(|e| e.class.as_str()).collect();
        assert_eq!(classes, ["snapshot", "deadline"]);
        assert!(!report.all_succeeded());
        let md = report.markdown();
        assert!(
            md.contains("| Accounts processed | 3 (1 succeeded, 2 failed) |"),
            "{md}"
        );
        assert!(md.contains("- b [snapshot]: broker down"), "{md}");
        assert!(md.contains("| c | stalled |"), "{md}");
    }
}

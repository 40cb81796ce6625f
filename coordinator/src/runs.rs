//! Normalization runs: one normalize job per account, collected into an exact report
//! (DESIGN §1 "Normalization", §7.11): every figure comes from the results' fresh re-reads.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use nija_proto::control::{NormalizeReport, NormalizeSummary};
use nija_proto::messages::JobResult;
use nija_proto::{AccountId, JobId};

#[derive(Debug, Clone)]
struct Entry {
    job_id: JobId,
    result: Option<JobResult>,
    stalled: bool,
}

#[derive(Debug, Clone)]
struct Run {
    operator: String,
    dry_run: bool,
    max_positions: Option<u32>,
    started_at: DateTime<Utc>,
    entries: BTreeMap<AccountId, Entry>,
}

/// Every normalization run since the coordinator started.
#[derive(Debug, Default)]
pub struct Runs {
    runs: HashMap<String, Run>,
    by_job: HashMap<JobId, String>,
}

impl Runs {
    pub fn start(
        &mut self,
        run_id: String,
        operator: String,
        dry_run: bool,
        max_positions: Option<u32>,
        jobs: Vec<(AccountId, JobId)>,
        now: DateTime<Utc>,
    ) {
        let mut entries = BTreeMap::new();
        for (account, job_id) in jobs {
            self.by_job.insert(job_id.clone(), run_id.clone());
            entries.insert(
                account,
                Entry {
                    job_id,
                    result: None,
                    stalled: false,
                },
            );
        }
        self.runs.insert(
            run_id,
            Run {
                operator,
                dry_run,
                max_positions,
                started_at: now,
                entries,
            },
        );
    }

    /// Records a result if it belongs to a run.
    pub fn record(&mut self, result: &JobResult) {
        let Some(run) = self
            .by_job
            .get(&result.job_id)
            .and_then(|id| self.runs.get_mut(id))
        else {
            return;
        };
        if let Some(e) = run.entries.get_mut(&result.account)
            && e.job_id == result.job_id
        {
            e.result = Some(result.clone());
            e.stalled = false;
        }
    }

    /// Marks a run's job as stalled (no result before its deadline).
    pub fn stalled(&mut self, account: &AccountId, job_id: &JobId) {
        let Some(run) = self.by_job.get(job_id).and_then(|id| self.runs.get_mut(id)) else {
            return;
        };
        if let Some(e) = run.entries.get_mut(account)
            && e.result.is_none()
        {
            e.stalled = true;
        }
    }

    /// The report of a run, with results `offset..offset+limit` (account order).
    pub fn report(&self, run_id: &str, offset: u32, limit: u32) -> Option<NormalizeReport> {
        let run = self.runs.get(run_id)?;
        let mut summary = NormalizeSummary::default();
        let mut finished = 0u32;
        let mut stalled = Vec::new();
        let mut done = Vec::new();
        for (account, e) in &run.entries {
            match &e.result {
                Some(r) => {
                    finished += 1;
                    summary.add(r);
                    done.push(r);
                }
                None if e.stalled => stalled.push(account.clone()),
                None => {}
            }
        }
        let start = offset as usize;
        let page: Vec<JobResult> = done
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|r| (*r).clone())
            .collect();
        let end = start + page.len();
        Some(NormalizeReport {
            run_id: run_id.to_string(),
            operator: run.operator.clone(),
            dry_run: run.dry_run,
            max_positions: run.max_positions,
            started_at: run.started_at,
            accounts: u32::try_from(run.entries.len()).unwrap_or(u32::MAX),
            finished,
            stalled,
            summary,
            results: page,
            offset,
            next_offset: (end < done.len()).then(|| u32::try_from(end).unwrap_or(u32::MAX)),
        })
    }
}

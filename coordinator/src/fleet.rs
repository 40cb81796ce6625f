//! What the coordinator knows about the fleet: each account's last results and counts, each
//! worker's liveness from its heartbeats. Pure; the service feeds it and the control API reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nija_proto::control::{AccountSummary, LastResult, WorkerSummary};
use nija_proto::ids::JobKind;
use nija_proto::messages::{Heartbeat, JobResult};
use nija_proto::plan::AccountType;
use nija_proto::{AccountId, Partition, WorkerId};

/// A configured account, as the coordinator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: AccountId,
    pub account_type: AccountType,
    pub broker: String,
}

#[derive(Debug, Clone)]
struct AccountState {
    info: AccountInfo,
    partition: Partition,
    last: BTreeMap<JobKind, LastResult>,
    by_status: BTreeMap<String, u64>,
    stalls: u64,
}

#[derive(Debug, Clone)]
struct WorkerState {
    last: Heartbeat,
    last_seen: DateTime<Utc>,
    alive: bool,
}

/// A change in a worker's liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Joined(WorkerId),
    /// Back after being declared dead.
    Recovered(WorkerId),
    /// Three heartbeats missed.
    Dead {
        worker: WorkerId,
        last_seen: DateTime<Utc>,
        draining: bool,
    },
}

/// Accounts and workers.
#[derive(Debug)]
pub struct Fleet {
    accounts: BTreeMap<AccountId, AccountState>,
    workers: BTreeMap<WorkerId, WorkerState>,
    heartbeat_every: Duration,
    results_by_status: BTreeMap<String, u64>,
    stalls: u64,
}

impl Fleet {
    pub fn new(
        accounts: impl IntoIterator<Item = AccountInfo>,
        partitions: u16,
        heartbeat_every: Duration,
    ) -> Fleet {
        Fleet {
            accounts: accounts
                .into_iter()
                .map(|info| {
                    let state = AccountState {
                        partition: Partition::of(&info.id, partitions),
                        info,
                        last: BTreeMap::new(),
                        by_status: BTreeMap::new(),
                        stalls: 0,
                    };
                    (state.info.id.clone(), state)
                })
                .collect(),
            workers: BTreeMap::new(),
            heartbeat_every,
            results_by_status: BTreeMap::new(),
            stalls: 0,
        }
    }

    pub fn account(&self, id: &AccountId) -> Option<&AccountInfo> {
        self.accounts.get(id).map(|a| &a.info)
    }

    pub fn account_ids(&self) -> impl Iterator<Item = &AccountId> {
        self.accounts.keys()
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Records a result (results of unknown accounts are counted fleet-wide only).
    pub fn record_result(&mut self, result: &JobResult) {
        let status = result.status.as_str().to_string();
        *self.results_by_status.entry(status.clone()).or_default() += 1;
        if let Some(a) = self.accounts.get_mut(&result.account) {
            *a.by_status.entry(status).or_default() += 1;
            let newer = a
                .last
                .get(&result.kind)
                .is_none_or(|l| l.finished_at <= result.finished_at);
            if newer {
                a.last.insert(result.kind, LastResult::of(result));
            }
        }
    }

    pub fn record_stall(&mut self, account: &AccountId) {
        self.stalls += 1;
        if let Some(a) = self.accounts.get_mut(account) {
            a.stalls += 1;
        }
    }

    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    pub fn results_by_status(&self) -> &BTreeMap<String, u64> {
        &self.results_by_status
    }

    /// Records a heartbeat received at `now`.
    pub fn heartbeat(&mut self, hb: Heartbeat, now: DateTime<Utc>) -> Option<Liveness> {
        let worker = hb.worker.clone();
        match self.workers.get_mut(&worker) {
            Some(w) => {
                let was_alive = w.alive;
                w.last = hb;
                w.last_seen = now;
                w.alive = true;
                (!was_alive).then_some(Liveness::Recovered(worker))
            }
            None => {
                self.workers.insert(
                    worker.clone(),
                    WorkerState {
                        last: hb,
                        last_seen: now,
                        alive: true,
                    },
                );
                Some(Liveness::Joined(worker))
            }
        }
    }

    /// Declares dead every live worker silent for three heartbeat intervals.
    pub fn check_workers(&mut self, now: DateTime<Utc>) -> Vec<Liveness> {
        let limit = TimeDelta::from_std(self.heartbeat_every * 3).unwrap_or(TimeDelta::MAX);
        let mut out = Vec::new();
        for (id, w) in &mut self.workers {
            if w.alive && now - w.last_seen > limit {
                w.alive = false;
                out.push(Liveness::Dead {
                    worker: id.clone(),
                    last_seen: w.last_seen,
                    draining: w.last.draining,
                });
            }
        }
        out
    }

    /// Heartbeat age of each live worker.
    pub fn heartbeat_ages(&self, now: DateTime<Utc>) -> Vec<(WorkerId, Duration)> {
        self.workers
            .iter()
            .filter(|(_, w)| w.alive)
            .map(|(id, w)| (id.clone(), (now - w.last_seen).to_std().unwrap_or_default()))
            .collect()
    }

    pub fn workers_alive(&self) -> usize {
        self.workers.values().filter(|w| w.alive).count()
    }

    pub fn workers(&self) -> Vec<WorkerSummary> {
        self.workers
            .values()
            .map(|w| WorkerSummary {
                worker: w.last.worker.clone(),
                alive: w.alive,
                version: w.last.version.clone(),
                started_at: w.last.started_at,
                last_seen: w.last_seen,
                partitions: w.last.partitions.clone(),
                leased_accounts: u32::try_from(w.last.leased_accounts.len()).unwrap_or(u32::MAX),
                jobs_in_flight: w.last.jobs_in_flight,
                draining: w.last.draining,
            })
            .collect()
    }

    /// Summaries of accounts in id order, from `offset`, at most `limit`; in-flight jobs and
    /// flags are filled in by the caller.
    pub fn summaries(&self, offset: usize, limit: usize) -> Vec<AccountSummary> {
        self.accounts
            .values()
            .skip(offset)
            .take(limit)
            .map(|a| self.summary_of(a))
            .collect()
    }

    pub fn summary(&self, id: &AccountId) -> Option<AccountSummary> {
        self.accounts.get(id).map(|a| self.summary_of(a))
    }

    fn summary_of(&self, a: &AccountState) -> AccountSummary {
        AccountSummary {
            account: a.info.id.clone(),
            account_type: a.info.account_type,
            broker: a.info.broker.clone(),
            partition: a.partition,
            in_flight: None,
            last: a.last.values().cloned().collect(),
            results_by_status: a.by_status.clone(),
            stalls: a.stalls,
            paused: None,
            quarantined: None,
        }
    }

    /// Accounts by the status of their latest enforce or normalize result.
    pub fn accounts_by_last_status(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for a in self.accounts.values() {
            let latest = [JobKind::Enforce, JobKind::Normalize]
                .iter()
                .filter_map(|k| a.last.get(k))
                .max_by_key(|l| l.finished_at);
            if let Some(l) = latest {
                *out.entry(l.status.as_str().to_string()).or_default() += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hb(worker: &str, at: DateTime<Utc>) -> Heartbeat {
        Heartbeat {
            worker: WorkerId::new(worker).expect("valid"),
            version: "0.1.0".into(),
            started_at: at,
            sent_at: at,
            partitions: vec![Partition(0)],
            leased_accounts: vec![],
            jobs_in_flight: 0,
            last_job_finished_at: None,
            draining: false,
        }
    }

    #[test]
    fn three_missed_heartbeats_make_a_worker_dead_and_a_new_one_revives_it() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut fleet = Fleet::new([], 4, Duration::from_millis(200));
        assert!(matches!(
            fleet.heartbeat(hb("w1", t0), t0),
            Some(Liveness::Joined(_))
        ));
        assert!(fleet.heartbeat(hb("w1", t0), t0).is_none());
        assert!(
            fleet
                .check_workers(t0 + TimeDelta::milliseconds(600))
                .is_empty()
        );
        let dead = fleet.check_workers(t0 + TimeDelta::milliseconds(601));
        assert!(matches!(&dead[..], [Liveness::Dead { .. }]));
        assert!(
            fleet.check_workers(t0 + TimeDelta::seconds(5)).is_empty(),
            "reported once"
        );
        assert_eq!(fleet.workers_alive(), 0);
        let t1 = t0 + TimeDelta::seconds(6);
        assert!(matches!(
            fleet.heartbeat(hb("w1", t1), t1),
            Some(Liveness::Recovered(_))
        ));
        assert_eq!(fleet.workers_alive(), 1);
    }
}

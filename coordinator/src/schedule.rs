//! The scheduler: when each account's enforce and exit-sweep jobs are due, and the rule that an
//! account never has more than one job in flight.
//!
//! Pure: time is passed in, jobs come out; the service publishes them. Scheduled job ids are
//! `kind-account-slot` with `slot = floor((t − phase) / interval)`, so a coordinator restarted
//! within a slot produces the same id (JetStream drops the duplicate by `Nats-Msg-Id`, and the
//! rebuilt last result tells the scheduler the slot is done). Each account gets a stable phase
//! within the start-up spread, so thousands of accounts do not all fire at the same instant.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, JobResult, TriggeredBy};
use nija_proto::{AccountId, JobId, Partition};

/// A job asked for by an operator, waiting for its account to be free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub job_id: JobId,
    pub kind: JobKind,
    pub account: AccountId,
    pub triggered_by: TriggeredBy,
    pub force: bool,
    pub dry_run: bool,
    pub max_positions: Option<u32>,
}

/// The job an account has in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub job_id: JobId,
    pub kind: JobKind,
    pub account: AccountId,
    pub published_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// One periodic job kind of one account.
#[derive(Debug, Clone)]
struct Periodic {
    every: Duration,
    phase: Duration,
    next_due: DateTime<Utc>,
    last_job: Option<JobId>,
}

impl Periodic {
    fn new(
        kind: JobKind,
        account: &AccountId,
        every: Duration,
        spread: Duration,
        now: DateTime<Utc>,
    ) -> Periodic {
        let window = spread.min(every);
        let phase = if window.is_zero() {
            Duration::ZERO
        } else {
            let h = stable_hash(account.as_str(), kind.as_str());
            Duration::from_nanos(h % window.as_nanos().max(1) as u64)
        };
        Periodic {
            every,
            phase,
            next_due: now + delta(phase),
            last_job: None,
        }
    }

    /// The slot that contains `t`.
    fn slot_at(&self, t: DateTime<Utc>) -> u64 {
        let ms = t.timestamp_millis().max(0) as u128;
        let phase = self.phase.as_millis();
        let every = self.every.as_millis().max(1);
        (ms.saturating_sub(phase) / every) as u64
    }

    fn slot_start(&self, slot: u64) -> DateTime<Utc> {
        let ms = u128::from(slot) * self.every.as_millis().max(1) + self.phase.as_millis();
        DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// FNV-1a over account and kind: stable across builds, so phases do not move on upgrade.
fn stable_hash(a: &str, b: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0u8]).chain(b.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[derive(Debug, Clone)]
struct AccountSchedule {
    partition: Partition,
    enforce: Periodic,
    sweep: Option<Periodic>,
    in_flight: Option<InFlight>,
    requests: VecDeque<Request>,
}

/// Schedule settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSettings {
    pub enforce_every: Duration,
    /// `None`: exit sweeps are off.
    pub exit_sweep_every: Option<Duration>,
    pub job_deadline: Duration,
    /// First jobs at start-up are spread over this window (each account at a stable phase).
    pub startup_spread: Duration,
    /// Extra time after a job's deadline before it counts as stalled (results in transit).
    pub stall_grace: Duration,
    pub partitions: u16,
}

/// Every account's schedule and in-flight job.
#[derive(Debug)]
pub struct Scheduler {
    settings: ScheduleSettings,
    accounts: BTreeMap<AccountId, AccountSchedule>,
}

impl Scheduler {
    pub fn new<'a>(
        settings: ScheduleSettings,
        accounts: impl IntoIterator<Item = &'a AccountId>,
        now: DateTime<Utc>,
    ) -> Scheduler {
        let accounts = accounts
            .into_iter()
            .map(|account| {
                let enforce = Periodic::new(
                    JobKind::Enforce,
                    account,
                    settings.enforce_every,
                    settings.startup_spread,
                    now,
                );
                let sweep = settings.exit_sweep_every.map(|every| {
                    Periodic::new(
                        JobKind::ExitSweep,
                        account,
                        every,
                        settings.startup_spread,
                        now,
                    )
                });
                let schedule = AccountSchedule {
                    partition: Partition::of(account, settings.partitions),
                    enforce,
                    sweep,
                    in_flight: None,
                    requests: VecDeque::new(),
                };
                (account.clone(), schedule)
            })
            .collect();
        Scheduler { settings, accounts }
    }

    pub fn settings(&self) -> &ScheduleSettings {
        &self.settings
    }

    pub fn knows(&self, account: &AccountId) -> bool {
        self.accounts.contains_key(account)
    }

    pub fn partition(&self, account: &AccountId) -> Option<Partition> {
        self.accounts.get(account).map(|a| a.partition)
    }

    pub fn in_flight(&self, account: &AccountId) -> Option<&InFlight> {
        self.accounts
            .get(account)
            .and_then(|a| a.in_flight.as_ref())
    }

    pub fn in_flight_count(&self) -> usize {
        self.accounts
            .values()
            .filter(|a| a.in_flight.is_some())
            .count()
    }

    /// Queues an operator job; it goes out before any scheduled job once the account is free.
    /// `false` for an unknown account.
    pub fn request(&mut self, request: Request) -> bool {
        match self.accounts.get_mut(&request.account) {
            Some(a) => {
                a.requests.push_back(request);
                true
            }
            None => false,
        }
    }

    /// Jobs to publish now; each is marked in flight.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Job> {
        let deadline = now + delta(self.settings.job_deadline);
        let mut jobs = Vec::new();
        for (account, a) in &mut self.accounts {
            if a.in_flight.is_some() {
                continue;
            }
            let job = if let Some(r) = a.requests.pop_front() {
                Some(Job {
                    job_id: r.job_id,
                    kind: r.kind,
                    account: account.clone(),
                    partition: a.partition,
                    scheduled_at: now,
                    deadline,
                    triggered_by: r.triggered_by,
                    force: r.force,
                    dry_run: r.dry_run,
                    max_positions: r.max_positions,
                })
            } else {
                // Enforce first when both are due.
                let due = [
                    Some((JobKind::Enforce, &mut a.enforce)),
                    a.sweep.as_mut().map(|s| (JobKind::ExitSweep, s)),
                ]
                .into_iter()
                .flatten()
                .find(|(_, p)| p.next_due <= now);
                due.and_then(|(kind, p)| {
                    let slot = p.slot_at(now);
                    let job_id = JobId::scheduled(kind, account, slot);
                    p.next_due = p.slot_start(slot + 1);
                    if p.last_job.as_ref() == Some(&job_id) {
                        return None; // this slot already ran (seen in the rebuilt results)
                    }
                    p.last_job = Some(job_id.clone());
                    Some(Job {
                        job_id,
                        kind,
                        account: account.clone(),
                        partition: a.partition,
                        scheduled_at: now,
                        deadline,
                        triggered_by: TriggeredBy::Schedule,
                        force: false,
                        dry_run: false,
                        max_positions: None,
                    })
                })
            };
            if let Some(job) = job {
                a.in_flight = Some(InFlight {
                    job_id: job.job_id.clone(),
                    kind: job.kind,
                    account: account.clone(),
                    published_at: now,
                    deadline: job.deadline,
                });
                jobs.push(job);
            }
        }
        jobs
    }

    /// A job could not be published: the account is free again and a scheduled job will be
    /// retried at the next tick; an operator job goes back to the front of the queue.
    pub fn publish_failed(&mut self, job: &Job) {
        let Some(a) = self.accounts.get_mut(&job.account) else {
            return;
        };
        if a.in_flight.as_ref().is_some_and(|f| f.job_id == job.job_id) {
            a.in_flight = None;
        }
        match job.triggered_by {
            TriggeredBy::Schedule => {
                let p = match job.kind {
                    JobKind::ExitSweep => a.sweep.as_mut(),
                    _ => Some(&mut a.enforce),
                };
                if let Some(p) = p {
                    p.last_job = None;
                    p.next_due = job.scheduled_at;
                }
            }
            TriggeredBy::Operator(_) => a.requests.push_front(Request {
                job_id: job.job_id.clone(),
                kind: job.kind,
                account: job.account.clone(),
                triggered_by: job.triggered_by.clone(),
                force: job.force,
                dry_run: job.dry_run,
                max_positions: job.max_positions,
            }),
        }
    }

    /// A result arrived: frees the account if it was this job, and remembers scheduled job ids
    /// (a rebuilt result tells a restarted coordinator which slot already ran). Returns whether
    /// the job was the one in flight.
    pub fn on_result(&mut self, result: &JobResult) -> bool {
        let Some(a) = self.accounts.get_mut(&result.account) else {
            return false;
        };
        if result.triggered_by == TriggeredBy::Schedule {
            let p = match result.kind {
                JobKind::Enforce => Some(&mut a.enforce),
                JobKind::ExitSweep => a.sweep.as_mut(),
                JobKind::Normalize => None,
            };
            if let Some(p) = p
                && p.last_job.is_none()
            {
                p.last_job = Some(result.job_id.clone());
            }
        }
        if a.in_flight
            .as_ref()
            .is_some_and(|f| f.job_id == result.job_id)
        {
            a.in_flight = None;
            return true;
        }
        false
    }

    /// Marks a job found still queued in `NIJA_JOBS` at start-up as in flight (a restarted
    /// coordinator never puts a second job beside it). Returns whether it was applied.
    pub fn restore(&mut self, job: &Job) -> bool {
        let Some(a) = self.accounts.get_mut(&job.account) else {
            return false;
        };
        if job.triggered_by == TriggeredBy::Schedule {
            let p = match job.kind {
                JobKind::Enforce => Some(&mut a.enforce),
                JobKind::ExitSweep => a.sweep.as_mut(),
                JobKind::Normalize => None,
            };
            if let Some(p) = p {
                p.last_job = Some(job.job_id.clone());
            }
        }
        if a.in_flight.is_some() {
            return false;
        }
        a.in_flight = Some(InFlight {
            job_id: job.job_id.clone(),
            kind: job.kind,
            account: job.account.clone(),
            published_at: job.scheduled_at,
            deadline: job.deadline,
        });
        true
    }

    /// Jobs past their deadline (plus grace) without a result: they are stalls, and their
    /// accounts are free again.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<InFlight> {
        let grace = delta(self.settings.stall_grace);
        let mut stalled = Vec::new();
        for a in self.accounts.values_mut() {
            if a.in_flight
                .as_ref()
                .is_some_and(|f| f.deadline + grace < now)
            {
                stalled.extend(a.in_flight.take());
            }
        }
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn settings() -> ScheduleSettings {
        ScheduleSettings {
            enforce_every: Duration::from_secs(60),
            exit_sweep_every: Some(Duration::from_secs(10)),
            job_deadline: Duration::from_secs(5),
            startup_spread: Duration::from_secs(2),
            stall_grace: Duration::from_secs(1),
            partitions: 8,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn ids(n: usize) -> Vec<AccountId> {
        (0..n)
            .map(|i| AccountId::new(format!("user-{i}")).expect("valid"))
            .collect()
    }

    fn result_for(job: &Job) -> JobResult {
        JobResult {
            job_id: job.job_id.clone(),
            kind: job.kind,
            account: job.account.clone(),
            account_type: nija_proto::plan::AccountType::User,
            worker: nija_proto::WorkerId::new("w1").expect("valid"),
            status: nija_proto::messages::ResultStatus::Compliant,
            triggered_by: job.triggered_by.clone(),
            mode: nija_proto::plan::Mode::Act,
            dry_run: false,
            forced: false,
            started_at: job.scheduled_at,
            finished_at: job.scheduled_at,
            count_before: Some(1),
            count_after: Some(1),
            max_allowed: 5,
            excess: 0,
            sold: vec![],
            plan: None,
            errors: vec![],
        }
    }

    #[test]
    fn first_enforce_of_every_account_runs_within_the_spread() {
        let accounts = ids(50);
        let mut s = Scheduler::new(settings(), &accounts, t0());
        let jobs = s.due(t0() + TimeDelta::seconds(2));
        assert_eq!(jobs.len(), 50);
        assert!(jobs.iter().all(|j| j.kind == JobKind::Enforce));
        assert!(
            jobs.iter()
                .all(|j| j.deadline == t0() + TimeDelta::seconds(7))
        );
        // Phases are spread, not all zero.
        let early = Scheduler::new(settings(), &accounts, t0()).due(t0()).len();
        assert!(early < 50);
    }

    #[test]
    fn one_job_in_flight_per_account_and_sweep_after_enforce() {
        let accounts = ids(1);
        let mut s = Scheduler::new(settings(), &accounts, t0());
        let later = t0() + TimeDelta::seconds(3);
        let jobs = s.due(later);
        assert_eq!(jobs.len(), 1);
        assert!(
            s.due(later).is_empty(),
            "second job while the first is in flight"
        );
        assert!(s.on_result(&result_for(&jobs[0])));
        let next = s.due(later);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].kind, JobKind::ExitSweep);
    }

    #[test]
    fn scheduled_ids_are_stable_per_slot_and_a_rebuilt_result_skips_the_slot() {
        let accounts = ids(3);
        let at = t0() + TimeDelta::seconds(3);
        let mut first = Scheduler::new(settings(), &accounts, t0());
        let jobs = first.due(at);
        // A restarted coordinator in the same slot produces the same ids ...
        let mut again = Scheduler::new(settings(), &accounts, t0() + TimeDelta::seconds(1));
        let same = again.due(at);
        assert_eq!(
            jobs.iter().map(|j| &j.job_id).collect::<Vec<_>>(),
            same.iter().map(|j| &j.job_id).collect::<Vec<_>>()
        );
        // ... and one that has seen their results publishes no enforce for that slot.
        let mut rebuilt = Scheduler::new(settings(), &accounts, t0() + TimeDelta::seconds(1));
        for job in &jobs {
            rebuilt.on_result(&result_for(job));
        }
        assert!(rebuilt.due(at).iter().all(|j| j.kind == JobKind::ExitSweep));
    }

    #[test]
    fn a_job_past_its_deadline_is_a_stall_and_frees_the_account() {
        let accounts = ids(1);
        let mut s = Scheduler::new(settings(), &accounts, t0());
        let at = t0() + TimeDelta::seconds(3);
        let job = s.due(at).remove(0);
        assert!(
            s.expire(at + TimeDelta::seconds(6)).is_empty(),
            "within grace"
        );
        let stalled = s.expire(at + TimeDelta::seconds(7));
        assert_eq!(stalled.len(), 1);
        assert_eq!(stalled[0].job_id, job.job_id);
        assert_eq!(s.in_flight_count(), 0);
        // A late result for the stalled job is harmless.
        assert!(!s.on_result(&result_for(&job)));
    }

    #[test]
    fn operator_requests_wait_for_the_account_and_go_first() {
        let accounts = ids(1);
        let mut s = Scheduler::new(settings(), &accounts, t0());
        let at = t0() + TimeDelta::seconds(3);
        let scheduled = s.due(at).remove(0);
        let req = Request {
            job_id: JobId::requested(JobKind::Enforce, &accounts[0], uuid::Uuid::nil()),
            kind: JobKind::Enforce,
            account: accounts[0].clone(),
            triggered_by: TriggeredBy::Operator("alice".into()),
            force: true,
            dry_run: false,
            max_positions: None,
        };
        assert!(s.request(req.clone()));
        assert!(s.due(at).is_empty());
        s.on_result(&result_for(&scheduled));
        let next = s.due(at).remove(0);
        assert_eq!(next.job_id, req.job_id);
        assert!(next.force);
        assert!(!s.request(Request {
            account: AccountId::new("nobody").expect("valid"),
            ..req
        }));
    }

    #[test]
    fn a_job_still_queued_at_restart_is_in_flight_and_its_slot_is_not_republished() {
        let accounts = ids(1);
        let at = t0() + TimeDelta::seconds(3);
        let queued = Scheduler::new(settings(), &accounts, t0())
            .due(at)
            .remove(0);
        let mut restarted = Scheduler::new(settings(), &accounts, t0() + TimeDelta::seconds(1));
        assert!(restarted.restore(&queued));
        assert!(restarted.due(at).is_empty(), "one job in flight");
        assert!(restarted.on_result(&result_for(&queued)));
        assert!(
            restarted
                .due(at)
                .iter()
                .all(|j| j.kind == JobKind::ExitSweep)
        );
    }

    #[test]
    fn the_next_enforce_is_one_interval_later_in_the_next_slot() {
        let accounts = ids(1);
        let mut s = Scheduler::new(
            ScheduleSettings {
                exit_sweep_every: None,
                ..settings()
            },
            &accounts,
            t0(),
        );
        let first = s.due(t0() + TimeDelta::seconds(3)).remove(0);
        s.on_result(&result_for(&first));
        assert!(s.due(t0() + TimeDelta::seconds(30)).is_empty());
        let second = s.due(t0() + TimeDelta::seconds(63)).remove(0);
        assert_ne!(first.job_id, second.job_id);
    }
}

//! The coordinator's state behind one lock: the scheduler, the fleet view, normalization runs and
//! the operators waiting for a result. Methods are quick and synchronous; I/O happens outside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use nija_proto::JobId;
use nija_proto::messages::JobResult;
use nija_runtime::stores::ControlState;
use tokio::sync::oneshot;

use crate::fleet::Fleet;
use crate::runs::Runs;
use crate::schedule::{InFlight, Scheduler};

/// What a waiting operator gets: the result, or the stall of the job.
pub type Outcome = Result<JobResult, InFlight>;

pub struct Core {
    pub scheduler: Scheduler,
    pub fleet: Fleet,
    pub runs: Runs,
    pub control: Arc<ControlState>,
    pub started_at: DateTime<Utc>,
    waiters: HashMap<JobId, Vec<oneshot::Sender<Outcome>>>,
    /// Stream sequence of the last result applied (a restarted follower continues after it).
    pub last_result_seq: u64,
}

impl Core {
    pub fn new(scheduler: Scheduler, fleet: Fleet, now: DateTime<Utc>) -> Core {
        Core {
            scheduler,
            fleet,
            runs: Runs::default(),
            control: Arc::new(ControlState::default()),
            started_at: now,
            waiters: HashMap::new(),
            last_result_seq: 0,
        }
    }

    /// Registers interest in a job's outcome.
    pub fn wait_for(&mut self, job_id: JobId) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(job_id).or_default().push(tx);
        rx
    }

    /// Applies a result everywhere; returns whether it freed its account.
    pub fn apply_result(&mut self, result: &JobResult) -> bool {
        let freed = self.scheduler.on_result(result);
        self.fleet.record_result(result);
        self.runs.record(result);
        for tx in self.waiters.remove(&result.job_id).unwrap_or_default() {
            let _ = tx.send(Ok(result.clone()));
        }
        freed
    }

    /// Applies a stall everywhere.
    pub fn apply_stall(&mut self, stalled: &InFlight) {
        self.fleet.record_stall(&stalled.account);
        self.runs.stalled(&stalled.account, &stalled.job_id);
        for tx in self.waiters.remove(&stalled.job_id).unwrap_or_default() {
            let _ = tx.send(Err(stalled.clone()));
        }
    }
}

/// The shared core.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Core>>);

impl Shared {
    pub fn new(core: Core) -> Shared {
        Shared(Arc::new(Mutex::new(core)))
    }

    /// Locks the core. A panic while it was held cannot leave it half-updated in a way that
    /// matters more than stopping the coordinator would, so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

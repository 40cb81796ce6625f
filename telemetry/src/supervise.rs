//! Long-running tasks that are restarted when they die, and that prove they are alive.
//!
//! [`Supervisor::supervise`] runs a task made by a factory; when the task panics, fails or returns,
//! the supervisor logs `thread died` with the cause, counts it in `nija_task_deaths_total`, and
//! starts a fresh one after a backoff (doubling up to a ceiling, reset after a long healthy run).
//! Each task gets a [`Liveness`] and must call [`Liveness::tick`] at least every `max_silence`;
//! a task that stops ticking (stuck on a lock, a hung call) makes `/healthz` fail, so the
//! orchestrator restarts the process.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::TelemetryError;

/// Why a supervised task ended: it panicked, returned an error, or returned at all.
const CAUSES: [&str; 3] = ["panic", "error", "exit"];

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Wait before the first restart.
    pub initial_backoff: Duration,
    /// Ceiling of the doubling backoff; a task that ran this long restarts at `initial_backoff`.
    pub max_backoff: Duration,
    /// Default longest time between two ticks of a healthy task.
    pub max_silence: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_silence: Duration::from_secs(60),
        }
    }
}

/// Runs and restarts tasks; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    config: SupervisorConfig,
    epoch: Instant,
    tasks: Mutex<BTreeMap<String, Arc<Slot>>>,
    deaths: IntCounterVec,
    restarts: IntCounterVec,
    shutdown: CancellationToken,
}

/// One supervised task's liveness record.
struct Slot {
    /// Milliseconds since the supervisor's epoch at the last tick.
    last_tick_ms: AtomicU64,
    max_silence: Duration,
    deaths: AtomicU64,
}

/// Given to a supervised task: tick to prove progress, watch for shutdown.
#[derive(Clone)]
pub struct Liveness {
    slot: Arc<Slot>,
    epoch: Instant,
    shutdown: CancellationToken,
}

impl Liveness {
    /// Records progress. Call it from the task's loop, at least every `max_silence`.
    pub fn tick(&self) {
        self.slot
            .last_tick_ms
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Resolves when the supervisor shuts down; the task should then return.
    pub async fn cancelled(&self) {
        self.shutdown.cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Follows `stream` for a task whose work is its items: [`Following::next`] ticks on every
    /// item and every second while the stream is quiet (an idle subscription is not a stuck task).
    pub fn follow<S: Stream + Unpin>(&self, stream: S) -> Following<'_, S> {
        Following {
            live: self,
            stream,
            idle: tokio::time::interval(Duration::from_secs(1)),
        }
    }
}

/// A stream followed by a supervised task (see [`Liveness::follow`]).
pub struct Following<'a, S> {
    live: &'a Liveness,
    stream: S,
    idle: tokio::time::Interval,
}

/// What [`Following::next`] found.
pub enum Next<T> {
    Item(T),
    /// The stream ended (a subscription closed): the task should fail and be restarted.
    Ended,
    /// The supervisor is shutting down: the task should return.
    Shutdown,
}

impl<S: Stream + Unpin> Following<'_, S> {
    pub async fn next(&mut self) -> Next<S::Item> {
        loop {
            tokio::select! {
                _ = self.live.cancelled() => return Next::Shutdown,
                _ = self.idle.tick() => self.live.tick(),
                item = self.stream.next() => {
                    self.live.tick();
                    return item.map_or(Next::Ended, Next::Item);
                }
            }
        }
    }
}

/// A task as `/healthz` reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskHealth {
    pub name: String,
    pub alive: bool,
    /// Seconds since the last tick.
    pub since_tick_seconds: f64,
    pub max_silence_seconds: f64,
    /// Times the task died and was restarted.
    pub deaths: u64,
}

impl Supervisor {
    /// Registers `nija_task_deaths_total{task, cause}` and `nija_task_restarts_total{task}`.
    pub fn new(
        registry: &Registry,
        config: SupervisorConfig,
    ) -> Result<Supervisor, TelemetryError> {
        let deaths = IntCounterVec::new(
            Opts::new(
                "nija_task_deaths_total",
                "Supervised tasks that died, by cause: panic, error or exit.",
            ),
            &["task", "cause"],
        )?;
        let restarts = IntCounterVec::new(
            Opts::new("nija_task_restarts_total", "Supervised tasks restarted."),
            &["task"],
        )?;
        registry.register(Box::new(deaths.clone()))?;
        registry.register(Box::new(restarts.clone()))?;
        Ok(Supervisor {
            inner: Arc::new(Inner {
                config,
                epoch: Instant::now(),
                tasks: Mutex::new(BTreeMap::new()),
                deaths,
                restarts,
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// Runs `factory(liveness)` as task `name` until shutdown, restarting it whenever it ends.
    /// Must be called inside a tokio runtime.
    pub fn supervise<F, Fut, E>(&self, name: &str, factory: F) -> JoinHandle<()>
    where
        F: FnMut(Liveness) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        self.supervise_with(name, self.inner.config.max_silence, factory)
    }

    /// As [`Supervisor::supervise`], with this task's own longest silence between ticks.
    pub fn supervise_with<F, Fut, E>(
        &self,
        name: &str,
        max_silence: Duration,
        mut factory: F,
    ) -> JoinHandle<()>
    where
        F: FnMut(Liveness) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let inner = self.inner.clone();
        let slot = Arc::new(Slot {
            last_tick_ms: AtomicU64::new(millis_since(inner.epoch)),
            max_silence,
            deaths: AtomicU64::new(0),
        });
        inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), slot.clone());
        for cause in CAUSES {
            inner.deaths.with_label_values(&[name, cause]);
        }
        inner.restarts.with_label_values(&[name]);
        let name = name.to_string();
        tokio::spawn(async move {
            let liveness = Liveness {
                slot: slot.clone(),
                epoch: inner.epoch,
                shutdown: inner.shutdown.clone(),
            };
            let mut backoff = inner.config.initial_backoff;
            loop {
                liveness.tick();
                let started = Instant::now();
                let outcome = tokio::spawn(factory(liveness.clone())).await;
                if inner.shutdown.is_cancelled() {
                    tracing::debug!(task = %name, "supervised task stopped for shutdown");
                    return;
                }
                let (cause, detail) = match outcome {
                    Ok(Ok(())) => ("exit", "returned while it should run until shutdown".into()),
                    Ok(Err(e)) => ("error", e.to_string()),
                    Err(e) if e.is_panic() => ("panic", panic_message(e.into_panic())),
                    Err(e) => ("exit", e.to_string()),
                };
                if started.elapsed() >= inner.config.max_backoff {
                    backoff = inner.config.initial_backoff;
                }
                slot.deaths.fetch_add(1, Ordering::Relaxed);
                inner
                    .deaths
                    .with_label_values(&[name.as_str(), cause])
                    .inc();
                tracing::error!(
                    task = %name,
                    cause,
                    error = %detail,
                    restart_in_ms = backoff.as_millis() as u64,
                    "thread died: supervised task {name} stopped ({cause}); restarting"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = inner.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(inner.config.max_backoff);
                inner.restarts.with_label_values(&[name.as_str()]).inc();
            }
        })
    }

    /// Every task with its liveness.
    pub fn health(&self) -> Vec<TaskHealth> {
        let now = millis_since(self.inner.epoch);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, slot)| {
                let since = Duration::from_millis(
                    now.saturating_sub(slot.last_tick_ms.load(Ordering::Relaxed)),
                );
                TaskHealth {
                    name: name.clone(),
                    alive: since <= slot.max_silence,
                    since_tick_seconds: since.as_secs_f64(),
                    max_silence_seconds: slot.max_silence.as_secs_f64(),
                    deaths: slot.deaths.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Every supervised task ticked within its `max_silence`.
    pub fn healthy(&self) -> bool {
        self.health().iter().all(|t| t.alive)
    }

    /// Stops restarting; tasks see [`Liveness::cancelled`] and should return.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The token cancelled by [`Supervisor::shutdown`], for the process's other loops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

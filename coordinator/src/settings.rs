//! The configuration file resolved into the coordinator's [`Settings`].
//!
//! Derived values (not keys of their own): the start-up spread of first jobs grows with the fleet
//! (100 µs per account, at most a quarter of `enforce_every` and 10 s), so 50 accounts start at
//! once and 10,000 over a second; a job counts as stalled `max(1 s, job_deadline / 10)` after its
//! deadline; the scheduler ticks every 100 ms (or half a heartbeat if shorter).

use std::time::Duration;

use nija_config::{Config, Role};
use nija_proto::plan::Mode;
use nija_runtime::connect::NatsSettings;
use nija_runtime::topology::TopologySettings;

use crate::fleet::AccountInfo;
use crate::schedule::ScheduleSettings;
use crate::service::Settings;

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let accounts: Vec<AccountInfo> = config
            .accounts
            .iter()
            .map(|a| AccountInfo {
                id: a.id.clone(),
                account_type: a.account_type,
                broker: a.broker.as_str().to_string(),
            })
            .collect();
        let schedule = &config.schedule;
        let per_account =
            Duration::from_micros(100) * u32::try_from(accounts.len()).unwrap_or(u32::MAX);
        let startup_spread = per_account
            .min(schedule.enforce_every / 4)
            .min(Duration::from_secs(10));
        let mut nats = NatsSettings::new(config.nats.urls.clone());
        nats.creds = config.nats.creds.clone();
        nats.nkey = config.nats.nkey.clone();
        nats.tls_ca = config.nats.tls_ca.clone();
        nats.tls_cert = config.nats.tls_cert.clone();
        nats.tls_key = config.nats.tls_key.clone();
        Settings {
            nats,
            schedule: ScheduleSettings {
                enforce_every: schedule.enforce_every,
                exit_sweep_every: schedule.exit_sweep_every,
                job_deadline: schedule.job_deadline,
                startup_spread,
                stall_grace: (schedule.job_deadline / 10).max(Duration::from_secs(1)),
                partitions: config.worker.partitions,
            },
            topology: TopologySettings {
                partitions: config.worker.partitions,
                job_deadline: schedule.job_deadline,
                duplicate_window: config.coordinator.jobs_duplicate_window,
                jobs_max_age: config.coordinator.jobs_max_age,
                results_max_age: config.coordinator.results_max_age,
                replicas: usize::from(config.coordinator.stream_replicas),
                ..TopologySettings::default()
            },
            heartbeat_every: config.worker.heartbeat_every,
            observe: config.mode == Mode::Observe,
            http_listen: config.http_listen(Role::Coordinator),
            metrics_accounts: config.metrics.per_account.iter().cloned().collect(),
            tick: Duration::from_millis(100).min(config.worker.heartbeat_every / 2),
            connect_patience: Duration::from_secs(30),
            accounts,
        }
    }
}

//! Per-account broker sessions (DESIGN §2 affinity, R2, R8, R9).
//!
//! A session is opened on an account's first job: account lease (with the API-key fingerprint),
//! the account's credentials (this account's only), the adapter, `connect()`, then the
//! `connect_cooldown` wait — once per session, not per job. It is kept while the worker holds the
//! account's partition; losing the partition drops the session and its credentials and releases
//! the lease (kept expired with the last nonce, for the next owner). Each account also has a slot whose lock serialises its jobs (one at a time).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use nija_brokers::{Broker, BrokerKind, BrokerSettings, Credentials, K8sApiSettings};
use nija_config::AccountConfig;
use nija_policy::snapshot::CapLiquidation;
use nija_proto::{AccountId, Partition, Usd};
use nija_runtime::lease::{Acquire, FenceError, Lease, LeaseError};
use thiserror::Error;

use crate::context::Context;
use crate::metered::MeteredBroker;

/// Consecutive authentication/permission failures after which an account is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;

/// Why a session could not be opened.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(
        "account {account} is leased by worker {owner} until {until}; this worker does not act on it"
    )]
    LeasedElsewhere {
        account: AccountId,
        owner: String,
        until: String,
    },
    #[error(
        "account {account} uses the same API key (fingerprint {fingerprint}) as account {other}, \
         which this worker already drives; two accounts may not share a key"
    )]
    SharedKey {
        account: AccountId,
        other: AccountId,
        fingerprint: String,
    },
    #[error("credentials of account {account}: {message}")]
    Credentials { account: AccountId, message: String },
    #[error("broker session of account {account}: {source}")]
    Broker {
        account: AccountId,
        source: nija_brokers::BrokerError,
    },
    #[error("broker session of account {account} did not connect within {waited:?}")]
    Timeout {
        account: AccountId,
        waited: Duration,
    },
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl SessionError {
    /// The class reported in a job result's errors.
    pub fn class(&self) -> &'static str {
        match self {
            SessionError::LeasedElsewhere { .. } | SessionError::Lease(_) => "lease",
            SessionError::SharedKey { .. } | SessionError::Credentials { .. } => "credentials",
            SessionError::Broker { source, .. } => source.class().as_str(),
            SessionError::Timeout { .. } => "deadline",
        }
    }
}

/// An open session of one account.
pub struct Session {
    pub account: AccountConfig,
    pub broker: Arc<dyn Broker>,
    /// The market-data venue key (broker + endpoint) for the shared cache.
    pub venue: String,
    pub fingerprint: String,
    pub partition: Partition,
    lease: tokio::sync::Mutex<Option<Lease>>,
    lost: AtomicBool,
    /// Cap liquidations within the guard window: loaded from results on first need, then kept.
    pub liquidations: Mutex<Option<Vec<CapLiquidation>>>,
    /// The reconciliation total of the previous snapshot.
    pub previous_total: Mutex<Option<Usd>>,
}

impl Session {
    /// Whether the lease was lost (renewal failed): the session must be reopened.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The order fence (R2) for this session's account. A held lease with less than half its TTL
    /// left is renewed first (compare-and-set on our revision, so a lease someone else took over
    /// or one already expired stays lost): a renewal task delayed by load must not refuse orders
    /// of a worker that still owns the account. The fence itself then reads the lease from KV.
    pub async fn fence(&self, ctx: &Context) -> Result<(), FenceError> {
        {
            let mut lease = self.lease.lock().await;
            let Some(held) = lease.as_mut() else {
                return Err(FenceError::NotLeased {
                    account: self.account.id.clone(),
                });
            };
            if ctx.leases.renewal_due(held, Utc::now())
                && let Err(err) = ctx
                    .leases
                    .renew_with_nonce(held, self.broker.last_nonce())
                    .await
            {
                tracing::warn!(account = %self.account.id, error = %err, "account lease renewal before an order failed");
            }
        }
        ctx.leases.fence(&self.account.id).await
    }
}

/// The per-account lock and the account's open session, if any.
#[derive(Default)]
pub struct Slot {
    pub session: tokio::sync::Mutex<Option<Arc<Session>>>,
    credential_failures: AtomicU32,
}

impl Slot {
    /// Counts an authentication/permission failure; returns the consecutive count.
    pub fn credential_failure(&self) -> u32 {
        self.credential_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn credential_success(&self) {
        self.credential_failures.store(0, Ordering::Relaxed);
    }
}

/// Every slot and open session of this worker.
#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<AccountId, Arc<Slot>>>,
    open: Mutex<HashMap<AccountId, Arc<Session>>>,
    /// API-key fingerprint → the account whose open session uses it.
    keys: Mutex<HashMap<String, AccountId>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    pub fn slot(&self, account: &AccountId) -> Arc<Slot> {
        lock(&self.slots)
            .entry(account.clone())
            .or_default()
            .clone()
    }

    /// Accounts with an open session.
    pub fn leased_accounts(&self) -> Vec<AccountId> {
        let mut accounts: Vec<AccountId> = lock(&self.open).keys().cloned().collect();
        accounts.sort();
        accounts
    }

    fn sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.open).values().cloned().collect()
    }

    fn other_with_fingerprint(&self, account: &AccountId, fingerprint: &str) -> Option<AccountId> {
        lock(&self.keys)
            .get(fingerprint)
            .filter(|other| *other != account)
            .cloned()
    }

    fn register(&self, session: &Arc<Session>) {
        lock(&self.open).insert(session.account.id.clone(), session.clone());
        lock(&self.keys).insert(session.fingerprint.clone(), session.account.id.clone());
    }

    fn forget(&self, session: &Session) {
        lock(&self.open).remove(&session.account.id);
        let mut keys = lock(&self.keys);
        if keys.get(&session.fingerprint) == Some(&session.account.id) {
            keys.remove(&session.fingerprint);
        }
    }

    /// Renews the account leases that are due ([`Leases::renewal_due`]; called every
    /// [`Leases::check_every`]). A lease that cannot be renewed marks its session lost: the next
    /// job reopens it, or is refused if someone else has it.
    pub async fn renew_due(&self, ctx: &Context) {
        use futures::StreamExt;
        let now = Utc::now();
        futures::stream::iter(self.sessions())
            .for_each_concurrent(64, |session| async move {
                let mut lease = session.lease.lock().await;
                let Some(held) = lease.as_mut() else { return };
                if !ctx.leases.renewal_due(held, now) {
                    return;
                }
                if let Err(err) = ctx
                    .leases
                    .renew_with_nonce(held, session.broker.last_nonce())
                    .await
                {
                    if matches!(err, LeaseError::Lost { .. }) {
                        tracing::warn!(account = %session.account.id, error = %err, "account lease lost; session and credentials dropped (reopened on the next job)");
                        session.lost.store(true, Ordering::Relaxed);
                        *lease = None;
                        self.forget(&session);
                        // Drop the adapter (and the credentials) now unless a job is using it;
                        // that job's orders fail the fence, and the next job reopens.
                        let slot = self.slot(&session.account.id);
                        if let Ok(mut current) = slot.session.try_lock() {
                            current.take();
                        }
                    } else {
                        tracing::warn!(account = %session.account.id, error = %err, "account lease renewal failed; retrying");
                    }
                }
            })
            .await;
    }

    /// Drops the sessions of the accounts in `partition` (their jobs have finished) and releases
    /// their leases.
    pub async fn drop_partition(&self, ctx: &Context, partition: Partition) {
        let accounts: Vec<AccountId> = lock(&self.open)
            .values()
            .filter(|s| s.partition == partition)
            .map(|s| s.account.id.clone())
            .collect();
        for account in accounts {
            let slot = self.slot(&account);
            let mut current = slot.session.lock().await;
            if let Some(session) = current.take() {
                self.close(ctx, &session).await;
            }
        }
    }

    /// Drops every session (shutdown).
    pub async fn drop_all(&self, ctx: &Context) {
        let accounts: Vec<AccountId> = lock(&self.open).keys().cloned().collect();
        for account in accounts {
            let slot = self.slot(&account);
            let mut current = slot.session.lock().await;
            if let Some(session) = current.take() {
                self.close(ctx, &session).await;
            }
        }
    }

    /// Forgets a session, drops its adapter (and with it the credentials) and releases its lease
    /// with the last nonce used, so the next owner starts above it.
    pub async fn close(&self, ctx: &Context, session: &Session) {
        self.forget(session);
        let lease = session.lease.lock().await.take();
        if let Some(lease) = lease
            && let Err(err) = ctx
                .leases
                .release_with_nonce(lease, session.broker.last_nonce())
                .await
        {
            tracing::warn!(account = %session.account.id, error = %err, "account lease not released; it will expire");
        }
        tracing::info!(account = %session.account.id, "broker session closed");
    }

    /// The account's session, opening it if needed. `current` is the slot's content, locked by
    /// the caller for the whole job.
    pub async fn ensure(
        &self,
        ctx: &Context,
        account: &AccountConfig,
        current: &mut Option<Arc<Session>>,
        time_left: Duration,
    ) -> Result<Arc<Session>, SessionError> {
        if let Some(session) = current.as_ref()
            && !session.is_lost()
        {
            return Ok(session.clone());
        }
        if let Some(stale) = current.take() {
            self.close(ctx, &stale).await;
        }
        let session = Arc::new(
            tokio::time::timeout(time_left, self.open(ctx, account))
                .await
                .map_err(|_| SessionError::Timeout {
                    account: account.id.clone(),
                    waited: time_left,
                })??,
        );
        self.register(&session);
        *current = Some(session.clone());
        Ok(session)
    }

    async fn open(&self, ctx: &Context, account: &AccountConfig) -> Result<Session, SessionError> {
        let id = &account.id;
        let kind = broker_kind(account.broker);
        let credentials = load_credentials(kind, account, &ctx.k8s_api).await?;
        let fingerprint = credentials.fingerprint();
        if let Some(other) = self.other_with_fingerprint(id, &fingerprint) {
            return Err(SessionError::SharedKey {
                account: id.clone(),
                other,
                fingerprint,
            });
        }
        let lease = match ctx.leases.acquire_account(id, &fingerprint).await? {
            Acquire::Acquired(lease) => {
                if lease.took_over() {
                    ctx.metrics
                        .lease_taken_over(nija_telemetry::LeaseScope::Account);
                    tracing::info!(account = %id, "account lease taken over from an expired owner");
                }
                lease
            }
            Acquire::HeldBy { owner, expires_at } => {
                return Err(SessionError::LeasedElsewhere {
                    account: id.clone(),
                    owner: owner.to_string(),
                    until: expires_at.to_rfc3339(),
                });
            }
        };
        let mut settings = BrokerSettings::new(kind);
        settings.account = id.to_string();
        settings.base_url = account.base_url.clone();
        settings.data_url = account.data_url.clone();
        settings.extra_ca = ctx.config.tls.extra_ca.clone();
        settings.nonce_seed = lease.last_nonce();
        let connected = async {
            let broker = MeteredBroker::wrap(
                nija_brokers::build_broker(settings, credentials)?,
                ctx.metrics.broker.clone(),
            );
            broker.connect().await?;
            Ok::<_, nija_brokers::BrokerError>(broker)
        };
        let connected = match connected.await {
            Ok(broker) => broker,
            Err(source) => {
                if let Err(err) = ctx.leases.release(lease).await {
                    tracing::warn!(account = %id, error = %err, "account lease not released; it will expire");
                }
                return Err(SessionError::Broker {
                    account: id.clone(),
                    source,
                });
            }
        };
        let cooldown = ctx.config.worker.connect_cooldown;
        tracing::info!(account = %id, broker = %kind, fingerprint, cooldown = ?cooldown, "broker session opened");
        if !cooldown.is_zero() {
            tokio::time::sleep(cooldown).await;
            ctx.metrics.broker.waited(
                kind.as_str(),
                nija_telemetry::WaitReason::Cooldown,
                cooldown,
            );
        }
        Ok(Session {
            venue: format!("{kind} {}", account.effective_data_url()),
            partition: ctx.config.partition_of(id),
            account: account.clone(),
            broker: connected,
            fingerprint,
            lease: tokio::sync::Mutex::new(Some(lease)),
            lost: AtomicBool::new(false),
            liquidations: Mutex::new(None),
            previous_total: Mutex::new(None),
        })
    }
}

pub fn broker_kind(broker: nija_config::Broker) -> BrokerKind {
    match broker {
        nija_config::Broker::Coinbase => BrokerKind::Coinbase,
        nija_config::Broker::Kraken => BrokerKind::Kraken,
        nija_config::Broker::Alpaca => BrokerKind::Alpaca,
    }
}

/// Attempts at reading a Kubernetes Secret when the API answers with a transient error.
const K8S_ATTEMPTS: u32 = 3;
/// The wait before the first retry of a Secret read; doubled for each further one.
const K8S_RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Loads one account's credentials from where the configuration says (R8: only for accounts this
/// worker is about to lease; they live in the session and are dropped with it).
async fn load_credentials(
    kind: BrokerKind,
    account: &AccountConfig,
    k8s: &K8sApiSettings,
) -> Result<Credentials, SessionError> {
    let err = |message: String| SessionError::Credentials {
        account: account.id.clone(),
        message,
    };
    match &account.credentials {
        nija_config::Credentials::File(path) => {
            Credentials::from_file(kind, path).map_err(|e| err(e.to_string()))
        }
        nija_config::Credentials::Env(var) => {
            Credentials::from_env(kind, var).map_err(|e| err(e.to_string()))
        }
        nija_config::Credentials::K8sSecret { name, key } => {
            let mut backoff = K8S_RETRY_BACKOFF;
            let mut attempt = 1;
            loop {
                match Credentials::from_k8s_secret(kind, name, key.as_deref(), k8s).await {
                    Ok(credentials) => return Ok(credentials),
                    Err(e) if e.is_transient() && attempt < K8S_ATTEMPTS => {
                        tracing::warn!(account = %account.id, secret = %name, attempt, error = %e, "reading the account's Kubernetes Secret failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    Err(e) => return Err(err(e.to_string())),
                }
            }
        }
    }
}

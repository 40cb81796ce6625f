//! Typed access to the state kept in JetStream: per-account maps keyed by symbol (blacklist,
//! tracker), the control flags (pause, quarantine) with a live view for workers, and publishing of
//! jobs, results and dead letters with their de-duplication ids.
//!
//! Values are stored in nija's versioned envelope (`"schema": "MAJOR.MINOR"`), like every message.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use nija_proto::control::ControlFlag;
use nija_proto::messages::{DeadLetter, DecodeError, Job, JobResult, Message, decode, encode};
use nija_proto::names::{
    PAUSED_KEY, account_symbol_key, dlq_subject, job_subject, paused_account_key,
    quarantined_account_key, result_subject,
};
use nija_proto::state::{BlacklistEntry, TrackedPosition};
use nija_proto::{AccountId, Symbol};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::watch;

use crate::topology::Topology;

/// Why a read or write of state failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("NATS error while {action} in {bucket}: {source}")]
    Nats {
        bucket: String,
        action: String,
        source: async_nats::Error,
    },
    #[error("value of {key:?} in {bucket} cannot be read: {source}")]
    Corrupt {
        bucket: String,
        key: String,
        source: DecodeError,
    },
    #[error("cannot publish to {subject}: {source} (is the stream present and NATS reachable?)")]
    Publish {
        subject: String,
        source: async_nats::Error,
    },
}

fn nats_err<E: Into<async_nats::Error>>(
    bucket: &str,
    action: impl Into<String>,
) -> impl FnOnce(E) -> StoreError {
    let bucket = bucket.to_string();
    let action = action.into();
    move |e| StoreError::Nats {
        bucket,
        action,
        source: e.into(),
    }
}

/// A value with the KV revision it was read at (for compare-and-set updates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// The latest value of every key matching `filter` (a KV key pattern such as `user-1.>`), deleted
/// keys left out, with its revision. One ordered consumer, so it costs one round trip plus the
/// data. Only control requests and start-up read this way: jobs read the workers' live views.
pub async fn scan_keys(
    js: &Context,
    store: &kv::Store,
    filter: &str,
) -> Result<Vec<(String, Bytes, u64)>, StoreError> {
    let bucket = store.name.as_str();
    let consumer = store
        .stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: js.client().new_inbox(),
            filter_subject: format!("{}{}", store.prefix, filter),
            deliver_policy: DeliverPolicy::LastPerSubject,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(nats_err(bucket, format!("listing {filter}")))?;
    let mut out = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats_err(bucket, format!("listing {filter}")))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(nats_err(bucket, format!("listing {filter}")))?;
        let info = message
            .info()
            .map_err(nats_err(bucket, format!("listing {filter}")))?;
        let (revision, pending) = (info.stream_sequence, info.pending);
        let deleted = message
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
        if !deleted {
            let key = message
                .subject
                .as_str()
                .strip_prefix(store.prefix.as_str())
                .unwrap_or(message.subject.as_str())
                .to_string();
            out.push((key, message.payload.clone(), revision));
        }
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}

/// A per-account map from symbol to `T` in one bucket (keys `<account>.<symbol-token>`): the
/// blacklist (`proto::state::BlacklistEntry`) and the tracker (`proto::state::TrackedPosition`).
#[derive(Debug, Clone)]
pub struct AccountSymbolMap<T> {
    js: Context,
    kv: kv::Store,
    _value: PhantomData<fn() -> T>,
}

impl<T: Message + DeserializeOwned> AccountSymbolMap<T> {
    pub fn new(js: Context, kv: kv::Store) -> Self {
        AccountSymbolMap {
            js,
            kv,
            _value: PhantomData,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.kv.name
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
        decode(bytes).map_err(|source| StoreError::Corrupt {
            bucket: self.kv.name.clone(),
            key: key.to_string(),
            source,
        })
    }

    pub async fn get(
        &self,
        account: &AccountId,
        symbol: &Symbol,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        let key = account_symbol_key(account, symbol);
        let entry = self
            .kv
            .entry(key.clone())
            .await
            .map_err(nats_err(&self.kv.name, format!("reading {key}")))?;
        match entry {
            Some(e) if e.operation == Operation::Put => Ok(Some(Versioned {
                value: self.decode(&key, &e.value)?,
                revision: e.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Every entry of one account, ordered by symbol. Keys that do not decode as a symbol are
    /// skipped with a warning (they were not written by nija).
    pub async fn list(&self, account: &AccountId) -> Result<BTreeMap<Symbol, T>, StoreError> {
        let prefix = format!("{account}.");
        let mut out = BTreeMap::new();
        for (key, bytes, _) in scan_keys(&self.js, &self.kv, &format!("{account}.>")).await? {
            let Some(token) = key.strip_prefix(&prefix) else {
                continue;
            };
            match Symbol::from_token(token) {
                Ok(symbol) => {
                    out.insert(symbol, self.decode(&key, &bytes)?);
                }
                Err(err) => {
                    tracing::warn!(bucket = %self.kv.name, key, error = %err, "ignoring a key that is not <account>.<symbol>")
                }
            }
        }
        Ok(out)
    }

    /// Writes `value`, returning the new revision.
    pub async fn put(
        &self,
        account: &AccountId,
        symbol: &Symbol,
        value: &T,
    ) -> Result<u64, StoreError> {
        let key = account_symbol_key(account, symbol);
        self.kv
            .put(key.as_str(), encode(value).into())
            .await
            .map_err(nats_err(&self.kv.name, format!("writing {key}")))
    }

    /// Writes `value` only if the key is still at `revision` (0 = must not exist). `Ok(None)` when
    /// someone else changed it first.
    pub async fn put_if(
        &self,
        account: &AccountId,
        symbol: &Symbol,
        value: &T,
        revision: u64,
    ) -> Result<Option<u64>, StoreError> {
        let key = account_symbol_key(account, symbol);
        let result = if revision == 0 {
            self.kv
                .create(key.as_str(), encode(value).into())
                .await
                .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.into()))
        } else {
            self.kv
                .update(key.as_str(), encode(value).into(), revision)
                .await
                .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.into()))
        };
        match result {
            Ok(rev) => Ok(Some(rev)),
            Err((true, _)) => Ok(None),
            Err((false, source)) => Err(nats_err::<async_nats::Error>(
                &self.kv.name,
                format!("writing {key}"),
            )(source)),
        }
    }

    /// Removes one entry; `true` if it was there.
    pub async fn remove(&self, account: &AccountId, symbol: &Symbol) -> Result<bool, StoreError> {
        let existed = self.get(account, symbol).await?.is_some();
        if existed {
            let key = account_symbol_key(account, symbol);
            self.kv
                .delete(key.as_str())
                .await
                .map_err(nats_err(&self.kv.name, format!("deleting {key}")))?;
        }
        Ok(existed)
    }

    /// Removes every entry of one account; returns how many there were.
    pub async fn clear(&self, account: &AccountId) -> Result<usize, StoreError> {
        let entries = scan_keys(&self.js, &self.kv, &format!("{account}.>")).await?;
        for (key, _, _) in &entries {
            self.kv
                .delete(key.as_str())
                .await
                .map_err(nats_err(&self.kv.name, format!("deleting {key}")))?;
        }
        Ok(entries.len())
    }
}

/// Why orders are blocked for an account right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `nija pause` (all accounts).
    PausedGlobally(ControlFlag),
    /// `nija pause --account`.
    Paused(ControlFlag),
    /// Quarantined after repeated authentication or permission failures (the flag holds the reason).
    Quarantined(ControlFlag),
}

impl Block {
    /// The word used in results and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Block::PausedGlobally(_) | Block::Paused(_) => "paused",
            Block::Quarantined(_) => "quarantined",
        }
    }

    pub fn flag(&self) -> &ControlFlag {
        match self {
            Block::PausedGlobally(f) | Block::Paused(f) | Block::Quarantined(f) => f,
        }
    }
}

/// Every control flag at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlState {
    pub paused: Option<ControlFlag>,
    pub paused_accounts: BTreeMap<AccountId, ControlFlag>,
    pub quarantined: BTreeMap<AccountId, ControlFlag>,
}

impl ControlState {
    /// Whether (and why) orders for `account` are blocked: global pause first, then quarantine,
    /// then the account's pause.
    pub fn block(&self, account: &AccountId) -> Option<Block> {
        if let Some(flag) = &self.paused {
            return Some(Block::PausedGlobally(flag.clone()));
        }
        if let Some(flag) = self.quarantined.get(account) {
            return Some(Block::Quarantined(flag.clone()));
        }
        self.paused_accounts
            .get(account)
            .map(|flag| Block::Paused(flag.clone()))
    }

    /// Applies one key's new value (`None` = deleted). Unknown keys are ignored.
    fn apply(&mut self, key: &str, flag: Option<ControlFlag>) {
        if key == PAUSED_KEY {
            self.paused = flag;
            return;
        }
        let (map, id) = if let Some(id) = key.strip_prefix("paused.") {
            (&mut self.paused_accounts, id)
        } else if let Some(id) = key.strip_prefix("quarantined.") {
            (&mut self.quarantined, id)
        } else {
            return;
        };
        let Ok(account) = AccountId::new(id) else {
            return;
        };
        match flag {
            Some(flag) => {
                map.insert(account, flag);
            }
            None => {
                map.remove(&account);
            }
        }
    }
}

/// The pause and quarantine flags in `nija-control`.
#[derive(Debug, Clone)]
pub struct ControlStore {
    js: Context,
    kv: kv::Store,
}

impl ControlStore {
    pub fn new(js: Context, kv: kv::Store) -> Self {
        ControlStore { js, kv }
    }

    async fn set(&self, key: &str, by: &str) -> Result<(), StoreError> {
        let flag = ControlFlag {
            by: by.to_string(),
            at: Utc::now(),
        };
        self.kv
            .put(key, encode(&flag).into())
            .await
            .map_err(nats_err(&self.kv.name, format!("setting {key}")))?;
        Ok(())
    }

    async fn unset(&self, key: &str) -> Result<(), StoreError> {
        self.kv
            .delete(key)
            .await
            .map_err(nats_err(&self.kv.name, format!("clearing {key}")))
    }

    async fn read(&self, key: &str) -> Result<Option<ControlFlag>, StoreError> {
        let bytes = self
            .kv
            .get(key)
            .await
            .map_err(nats_err(&self.kv.name, format!("reading {key}")))?;
        bytes
            .map(|b| {
                decode(&b).map_err(|source| StoreError::Corrupt {
                    bucket: self.kv.name.clone(),
                    key: key.to_string(),
                    source,
                })
            })
            .transpose()
    }

    /// Pauses all order placement (`nija pause`).
    pub async fn pause_all(&self, operator: &str) -> Result<(), StoreError> {
        self.set(PAUSED_KEY, operator).await
    }

    pub async fn resume_all(&self) -> Result<(), StoreError> {
        self.unset(PAUSED_KEY).await
    }

    pub async fn pause_account(
        &self,
        account: &AccountId,
        operator: &str,
    ) -> Result<(), StoreError> {
        self.set(&paused_account_key(account), operator).await
    }

    /// Resumes one account: lifts its pause and its quarantine.
    pub async fn resume_account(&self, account: &AccountId) -> Result<(), StoreError> {
        self.unset(&paused_account_key(account)).await?;
        self.unset(&quarantined_account_key(account)).await
    }

    /// Quarantines an account (R9); `reason` says which failures led to it.
    pub async fn quarantine(&self, account: &AccountId, reason: &str) -> Result<(), StoreError> {
        self.set(&quarantined_account_key(account), reason).await
    }

    /// Whether orders for `account` are blocked, read from the server now (three key reads).
    pub async fn block(&self, account: &AccountId) -> Result<Option<Block>, StoreError> {
        if let Some(flag) = self.read(PAUSED_KEY).await? {
            return Ok(Some(Block::PausedGlobally(flag)));
        }
        if let Some(flag) = self.read(&quarantined_account_key(account)).await? {
            return Ok(Some(Block::Quarantined(flag)));
        }
        Ok(self
            .read(&paused_account_key(account))
            .await?
            .map(Block::Paused))
    }

    /// Every flag, read from the server now.
    pub async fn state(&self) -> Result<ControlState, StoreError> {
        let mut state = ControlState::default();
        for (key, bytes, _) in scan_keys(&self.js, &self.kv, ">").await? {
            match decode::<ControlFlag>(&bytes) {
                Ok(flag) => state.apply(&key, Some(flag)),
                Err(source) => {
                    return Err(StoreError::Corrupt {
                        bucket: self.kv.name.clone(),
                        key,
                        source,
                    });
                }
            }
        }
        Ok(state)
    }

    /// A live view of the flags: loaded now, then kept current by a background task watching the
    /// bucket (a change reaches the view within a round trip). The task ends when every receiver
    /// is dropped.
    pub async fn watch(&self) -> Result<watch::Receiver<Arc<ControlState>>, StoreError> {
        // Watch first, then read: a change between the two is applied after the snapshot.
        let watcher = self
            .kv
            .watch_all()
            .await
            .map_err(nats_err(&self.kv.name, "watching"))?;
        let (tx, rx) = watch::channel(Arc::new(self.state().await?));
        let store = self.clone();
        tokio::spawn(async move { store.follow(watcher, tx).await });
        Ok(rx)
    }

    async fn follow(&self, mut watcher: kv::Watch, tx: watch::Sender<Arc<ControlState>>) {
        loop {
            while let Some(entry) = watcher.next().await {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        tracing::warn!(error = %err, "control watch interrupted; restarting it");
                        break;
                    }
                };
                let flag = match entry.operation {
                    Operation::Put => match decode::<ControlFlag>(&entry.value) {
                        Ok(flag) => Some(flag),
                        Err(err) => {
                            tracing::error!(key = entry.key, error = %err, "unreadable control flag ignored");
                            continue;
                        }
                    },
                    Operation::Delete | Operation::Purge => None,
                };
                let mut state = (**tx.borrow()).clone();
                state.apply(&entry.key, flag);
                if tx.send(Arc::new(state)).is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
            // Re-establish: watch again, then reload the whole state.
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if tx.is_closed() {
                    return;
                }
                let Ok(w) = self.kv.watch_all().await else {
                    continue;
                };
                let Ok(state) = self.state().await else {
                    continue;
                };
                watcher = w;
                if tx.send(Arc::new(state)).is_err() {
                    return;
                }
                break;
            }
        }
    }
}

/// The outcome of publishing to a de-duplicating stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// The server had already stored a message with this id (within the duplicate window).
    pub duplicate: bool,
}

/// Publishing jobs, results and dead letters to JetStream, awaiting the server's acknowledgement.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: Context,
}

/// The header carrying W3C trace context on job messages.
pub const TRACEPARENT_HEADER: &str = "traceparent";

impl Publisher {
    pub fn new(js: Context) -> Self {
        Publisher { js }
    }

    async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        payload: Vec<u8>,
        headers: HeaderMap,
    ) -> Result<Published, StoreError> {
        let err = |e: async_nats::Error| StoreError::Publish {
            subject: subject.clone(),
            source: e,
        };
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(payload.into())
                    .headers(headers)
                    .message_id(msg_id),
            )
            .await
            .map_err(|e| err(e.into()))?
            .await
            .map_err(|e| err(e.into()))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Publishes a job on `nija.jobs.<partition>.<kind>.<account>` with `Nats-Msg-Id` = job id,
    /// and `traceparent` when given.
    pub async fn job(&self, job: &Job, traceparent: Option<&str>) -> Result<Published, StoreError> {
        let mut headers = HeaderMap::new();
        if let Some(tp) = traceparent {
            headers.insert(TRACEPARENT_HEADER, tp);
        }
        self.publish(
            job_subject(job.partition, job.kind, &job.account),
            job.job_id.as_str(),
            encode(job),
            headers,
        )
        .await
    }

    /// Publishes a result on `nija.results.<kind>.<account>` with `Nats-Msg-Id` =
    /// `result-<job id>`.
    pub async fn result(&self, result: &JobResult) -> Result<Published, StoreError> {
        self.publish(
            result_subject(result.kind, &result.account),
            &format!("result-{}", result.job_id),
            encode(result),
            HeaderMap::new(),
        )
        .await
    }

    /// Publishes a dead letter on `nija.dlq.<kind>`.
    pub async fn dead_letter(
        &self,
        kind: &str,
        letter: &DeadLetter,
    ) -> Result<Published, StoreError> {
        let subject = dlq_subject(kind);
        let ack = self
            .js
            .publish(subject.clone(), encode(letter).into())
            .await
            .map_err(|e| StoreError::Publish {
                subject: subject.clone(),
                source: e.into(),
            })?
            .await
            .map_err(|e| StoreError::Publish {
                subject,
                source: e.into(),
            })?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// Each account's dust blacklist (`nija-blacklist`).
pub type BlacklistStore = AccountSymbolMap<BlacklistEntry>;
/// Each account's tracked positions (`nija-tracker`).
pub type TrackerStore = AccountSymbolMap<TrackedPosition>;

/// Typed handles on the state of one topology.
#[derive(Debug, Clone)]
pub struct Stores {
    pub blacklist: BlacklistStore,
    pub tracker: TrackerStore,
    pub control: ControlStore,
    pub publisher: Publisher,
}

impl Stores {
    pub fn new(topology: &Topology) -> Self {
        let js = topology.js.clone();
        Stores {
            blacklist: AccountSymbolMap::new(js.clone(), topology.blacklist.clone()),
            tracker: AccountSymbolMap::new(js.clone(), topology.tracker.clone()),
            control: ControlStore::new(js.clone(), topology.control.clone()),
            publisher: Publisher::new(js),
        }
    }
}

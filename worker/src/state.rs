//! In-memory views of the per-account state buckets (`nija-blacklist`, `nija-tracker`), loaded
//! once and kept current by a KV watch.
//!
//! A job reads its account's blacklist and tracker from here instead of asking the server, which
//! keeps a sweep over thousands of accounts to one broker round trip per account. An operator's
//! change (`nija blacklist remove`, `nija track`) reaches the view within a round trip; the
//! worker's own writes are applied to the view at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use nija_proto::messages::decode;
use nija_proto::names::parse_account_symbol_key;
use nija_proto::{AccountId, Symbol};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot watch KV bucket {bucket}: {message} (is NATS reachable?)")]
    Watch { bucket: String, message: String },
}

type Accounts<T> = HashMap<AccountId, BTreeMap<Symbol, T>>;

/// A live view of one `<account>.<symbol-token>` bucket.
pub struct StateView<T> {
    bucket: String,
    entries: Arc<RwLock<Accounts<T>>>,
}

impl<T> Clone for StateView<T> {
    fn clone(&self) -> Self {
        StateView {
            bucket: self.bucket.clone(),
            entries: self.entries.clone(),
        }
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> StateView<T> {
    /// Loads the bucket and starts following it; returns once the current content is loaded.
    pub async fn start(store: kv::Store) -> Result<StateView<T>, StateError> {
        let bucket = store.name.clone();
        let watch_err = |message: String| StateError::Watch {
            bucket: bucket.clone(),
            message,
        };
        let empty = store
            .status()
            .await
            .map_err(|e| watch_err(e.to_string()))?
            .values()
            == 0;
        let watch = store
            .watch_with_history(">")
            .await
            .map_err(|e| watch_err(e.to_string()))?;
        let view = StateView {
            bucket: bucket.clone(),
            entries: Arc::new(RwLock::new(HashMap::new())),
        };
        let (loaded_tx, loaded_rx) = oneshot::channel();
        let follower = view.clone();
        tokio::spawn(async move {
            follower
                .follow(store, watch, (!empty).then_some(loaded_tx))
                .await
        });
        if !empty {
            loaded_rx
                .await
                .map_err(|_| watch_err("the watch ended before the bucket was loaded".into()))?;
        }
        Ok(view)
    }

    async fn follow(
        &self,
        store: kv::Store,
        mut watch: kv::Watch,
        mut loaded: Option<oneshot::Sender<()>>,
    ) {
        loop {
            while let Some(entry) = watch.next().await {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        tracing::warn!(bucket = %self.bucket, error = %err, "state watch interrupted; restarting it");
                        break;
                    }
                };
                self.apply(&entry);
                if entry.seen_current
                    && let Some(tx) = loaded.take()
                {
                    let _ = tx.send(());
                }
            }
            // Re-establish; the history replay brings the view back to the bucket's content.
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match store.watch_with_history(">").await {
                    Ok(w) => {
                        watch = w;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(bucket = %self.bucket, error = %err, "state watch not restarted yet")
                    }
                }
            }
        }
    }

    fn apply(&self, entry: &kv::Entry) {
        let Some((account, symbol)) = parse_account_symbol_key(&entry.key) else {
            tracing::warn!(bucket = %self.bucket, key = %entry.key, "ignoring a key that is not <account>.<symbol>");
            return;
        };
        match entry.operation {
            Operation::Put => match decode::<T>(&entry.value) {
                Ok(value) => self.set(&account, symbol, Some(value)),
                Err(err) => {
                    tracing::error!(bucket = %self.bucket, key = %entry.key, error = %err, "unreadable state entry ignored")
                }
            },
            Operation::Delete | Operation::Purge => self.set(&account, symbol, None),
        }
    }

    /// Applies a value (or a removal) to the view; used for the worker's own writes.
    pub fn set(&self, account: &AccountId, symbol: Symbol, value: Option<T>) {
        let mut entries = match self.entries.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match value {
            Some(value) => {
                entries
                    .entry(account.clone())
                    .or_default()
                    .insert(symbol, value);
            }
            None => {
                if let Some(map) = entries.get_mut(account) {
                    map.remove(&symbol);
                    if map.is_empty() {
                        entries.remove(account);
                    }
                }
            }
        }
    }

    /// Every entry of one account, ordered by symbol.
    pub fn list(&self, account: &AccountId) -> Vec<T> {
        let entries = match self.entries.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries
            .get(account)
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default()
    }
}

//! Partition and account leases in `nija-leases`, and the order fence (DESIGN §2, R2).
//!
//! A lease is a KV value `{owner, expires_at, ...}`; every change (acquire, renew, release,
//! takeover of an expired lease) is a compare-and-set on the key's KV revision, so two workers can
//! never both believe they won. An expired lease is never renewed — it must be taken over like a
//! free one — so a worker frozen past its expiry (SIGSTOP) cannot quietly resurrect it.
//!
//! Account leases also carry the API-key fingerprint and the last Kraken nonce used, so a new
//! owner starts its nonces above the previous owner's even with clock skew. Releasing a lease
//! therefore does not delete it: the record stays, expired and marked released, with its nonce.

use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use nija_proto::names::{account_lease_key, partition_lease_key};
use nija_proto::{AccountId, Partition, WorkerId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The value stored under a lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    pub owner: WorkerId,
    pub expires_at: DateTime<Utc>,
    /// Account leases: a fingerprint of the API key the session uses (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Account leases: the last nonce used with this key (Kraken); a new owner starts above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_nonce: Option<u64>,
    /// Given up by its owner (graceful release): expired, free for anyone, kept for its nonce.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl LeaseValue {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// A lease this worker holds: the key, the KV revision it last wrote, and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    revision: u64,
    value: LeaseValue,
    took_over: bool,
}

impl Lease {
    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn revision(&self) -> u64 {
        self.revision
    }
    pub fn value(&self) -> &LeaseValue {
        &self.value
    }
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.value.expires_at
    }
    /// Whether acquiring it took over another owner's expired lease (not a released one).
    pub fn took_over(&self) -> bool {
        self.took_over
    }
    /// The last nonce recorded with this lease (by this owner or a previous one).
    pub fn last_nonce(&self) -> Option<u64> {
        self.value.last_nonce
    }
}

/// The outcome of an acquisition attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    Acquired(Lease),
    /// Someone else holds an unexpired lease (or won the race for it just now).
    HeldBy {
        owner: WorkerId,
        expires_at: DateTime<Utc>,
    },
}

/// Why a lease operation failed.
#[derive(Debug, Error)]
pub enum LeaseError {
    #[error("lease {key} is lost: {why}")]
    Lost { key: String, why: String },
    #[error(
        "lease store: {op} of {key} failed: {message} (is NATS reachable and the nija-leases bucket created by the coordinator?)"
    )]
    Store {
        op: &'static str,
        key: String,
        message: String,
    },
    #[error("lease {key} holds an unreadable value: {message} (delete the key to free it)")]
    Corrupt { key: String, message: String },
}

/// Why the fence refused an order.
#[derive(Debug, Error)]
pub enum FenceError {
    #[error("fence: account {account} has no lease; no order is placed")]
    NotLeased { account: AccountId },
    #[error(
        "fence: account {account} is leased by {owner}, not by this worker; no order is placed"
    )]
    OtherOwner { account: AccountId, owner: WorkerId },
    #[error(
        "fence: the lease of account {account} expires at {expires_at} (too close or past); no order is placed"
    )]
    Expiring {
        account: AccountId,
        expires_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// Lease operations of one worker on the `nija-leases` bucket.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    owner: WorkerId,
    ttl: Duration,
}

impl Leases {
    pub fn new(kv: kv::Store, owner: WorkerId, ttl: Duration) -> Leases {
        Leases { kv, owner, ttl }
    }

    pub fn owner(&self) -> &WorkerId {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often a holder renews: a third of the TTL, so two renewals may fail before expiry.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often held account leases are looked at for [`Leases::renewal_due`]: a sixth of the
    /// TTL.
    pub fn check_every(&self) -> Duration {
        self.ttl / 6
    }

    /// Whether a held lease should be renewed at `now`: once half its TTL has gone. Looked at
    /// every [`Leases::check_every`], each lease is renewed with between a third and a half of its
    /// TTL left — about every 7/12 of the TTL, at its own time rather than all leases together —
    /// and three attempts in a row may fail before it expires.
    pub fn renewal_due(&self, lease: &Lease, now: DateTime<Utc>) -> bool {
        let half = chrono::Duration::from_std(self.ttl / 2).unwrap_or(chrono::Duration::zero());
        lease.expires_at() <= now + half
    }

    fn expiry_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX)
    }

    /// Takes the lease of a partition if it is free, expired, or already ours.
    pub async fn acquire_partition(&self, partition: Partition) -> Result<Acquire, LeaseError> {
        self.acquire(partition_lease_key(partition), None).await
    }

    /// Takes the lease of an account if it is free, expired, or already ours, recording the
    /// API-key fingerprint. The last nonce of a previous owner is carried over.
    pub async fn acquire_account(
        &self,
        account: &AccountId,
        key_fingerprint: &str,
    ) -> Result<Acquire, LeaseError> {
        self.acquire(
            account_lease_key(account),
            Some(key_fingerprint.to_string()),
        )
        .await
    }

    async fn acquire(
        &self,
        key: String,
        key_fingerprint: Option<String>,
    ) -> Result<Acquire, LeaseError> {
        let now = Utc::now();
        let (expected_revision, last_nonce, took_over) = match self.read_entry(&key).await? {
            None => (0, None, false),
            Some((revision, None)) => (revision, None, false),
            Some((revision, Some(current))) => {
                if current.owner != self.owner && !current.is_expired(now) {
                    return Ok(Acquire::HeldBy {
                        owner: current.owner,
                        expires_at: current.expires_at,
                    });
                }
                let took_over = current.owner != self.owner && !current.released;
                (revision, current.last_nonce, took_over)
            }
        };
        let value = LeaseValue {
            owner: self.owner.clone(),
            expires_at: self.expiry_from(now),
            key_fingerprint,
            last_nonce,
            released: false,
        };
        match self.write(&key, &value, expected_revision).await? {
            Some(revision) => Ok(Acquire::Acquired(Lease {
                key,
                revision,
                value,
                took_over,
            })),
            // Someone else wrote first: report who holds it now.
            None => match self.read_entry(&key).await? {
                Some((_, Some(current))) => Ok(Acquire::HeldBy {
                    owner: current.owner,
                    expires_at: current.expires_at,
                }),
                _ => Err(LeaseError::Lost {
                    key,
                    why: "another worker changed it while we acquired it".into(),
                }),
            },
        }
    }

    /// Extends a held lease by one TTL. Fails with [`LeaseError::Lost`] when the lease expired
    /// (it must then be acquired again) or someone else changed it.
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        self.renew_with_nonce(lease, None).await
    }

    /// Renews and records `nonce` as the last nonce used (kept monotonic: never lowered).
    pub async fn renew_with_nonce(
        &self,
        lease: &mut Lease,
        nonce: Option<u64>,
    ) -> Result<(), LeaseError> {
        let now = Utc::now();
        if lease.value.is_expired(now) {
            return Err(LeaseError::Lost {
                key: lease.key.clone(),
                why: format!("it expired at {}", lease.value.expires_at),
            });
        }
        let mut value = lease.value.clone();
        value.expires_at = self.expiry_from(now);
        value.last_nonce = match (value.last_nonce, nonce) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match self.write(&lease.key, &value, lease.revision).await? {
            Some(revision) => {
                lease.revision = revision;
                lease.value = value;
                Ok(())
            }
            None => Err(LeaseError::Lost {
                key: lease.key.clone(),
                why: "another worker took it over".into(),
            }),
        }
    }

    /// Gives up a held lease: see [`Leases::release_with_nonce`].
    pub async fn release(&self, lease: Lease) -> Result<(), LeaseError> {
        self.release_with_nonce(lease, None).await
    }

    /// Gives up a held lease, recording `nonce` as the last nonce used. The record is kept,
    /// expired and marked released (owner and nonce stay), so the next owner takes it at once and
    /// starts its nonces above ours. Compare-and-set: a lease someone else took over is left alone.
    pub async fn release_with_nonce(
        &self,
        lease: Lease,
        nonce: Option<u64>,
    ) -> Result<(), LeaseError> {
        let mut value = lease.value;
        value.expires_at = Utc::now().min(value.expires_at);
        value.released = true;
        value.last_nonce = match (value.last_nonce, nonce) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.write(&lease.key, &value, lease.revision).await?;
        Ok(())
    }

    /// The order fence: reads the account's lease now and passes only when this worker owns it
    /// and at least a quarter of the TTL remains, so an order sent now ends before anyone else
    /// could take the account over.
    pub async fn fence(&self, account: &AccountId) -> Result<(), FenceError> {
        let key = account_lease_key(account);
        let current = match self.read_entry(&key).await? {
            Some((_, Some(value))) if !value.released => value,
            _ => {
                return Err(FenceError::NotLeased {
                    account: account.clone(),
                });
            }
        };
        if current.owner != self.owner {
            return Err(FenceError::OtherOwner {
                account: account.clone(),
                owner: current.owner,
            });
        }
        let margin = chrono::Duration::from_std(self.ttl / 4).unwrap_or(chrono::Duration::zero());
        if current.expires_at <= Utc::now() + margin {
            return Err(FenceError::Expiring {
                account: account.clone(),
                expires_at: current.expires_at,
            });
        }
        Ok(())
    }

    /// The current holder of a partition's lease, if any (expired and released leases included).
    pub async fn partition_holder(
        &self,
        partition: Partition,
    ) -> Result<Option<LeaseValue>, LeaseError> {
        Ok(self
            .read_entry(&partition_lease_key(partition))
            .await?
            .and_then(|(_, value)| value))
    }

    /// The current value of an account's lease, if any (expired and released leases included).
    pub async fn account_holder(
        &self,
        account: &AccountId,
    ) -> Result<Option<LeaseValue>, LeaseError> {
        Ok(self
            .read_entry(&account_lease_key(account))
            .await?
            .and_then(|(_, value)| value))
    }

    /// The key's last revision and value (`None` value: deleted or purged).
    async fn read_entry(&self, key: &str) -> Result<Option<(u64, Option<LeaseValue>)>, LeaseError> {
        let entry = self
            .kv
            .entry(key.to_string())
            .await
            .map_err(|err| LeaseError::Store {
                op: "read",
                key: key.to_string(),
                message: err.to_string(),
            })?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        match entry.operation {
            Operation::Delete | Operation::Purge => Ok(Some((entry.revision, None))),
            Operation::Put => {
                let value: LeaseValue =
                    serde_json::from_slice(&entry.value).map_err(|err| LeaseError::Corrupt {
                        key: key.to_string(),
                        message: err.to_string(),
                    })?;
                Ok(Some((entry.revision, Some(value))))
            }
        }
    }

    /// Compare-and-set write: `Some(new revision)`, or `None` when the revision moved.
    async fn write(
        &self,
        key: &str,
        value: &LeaseValue,
        expected_revision: u64,
    ) -> Result<Option<u64>, LeaseError> {
        let payload = serde_json::to_vec(value).map_err(|err| LeaseError::Corrupt {
            key: key.to_string(),
            message: err.to_string(),
        })?;
        match self
            .kv
            .update(key, Bytes::from(payload), expected_revision)
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(err) => Err(LeaseError::Store {
                op: "write",
                key: key.to_string(),
                message: err.to_string(),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use async_nats::jetstream;
    use nija_e2e::NatsServer;

    async fn bucket(server: &NatsServer) -> kv::Store {
        let client = async_nats::connect(server.url()).await.unwrap();
        jetstream::new(client)
            .create_key_value(kv::Config {
                bucket: nija_proto::names::LEASES_BUCKET.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    fn leases(kv: &kv::Store, owner: &str, ttl: Duration) -> Leases {
        Leases::new(kv.clone(), WorkerId::new(owner).unwrap(), ttl)
    }

    fn acquired(outcome: Acquire) -> Lease {
        match outcome {
            Acquire::Acquired(lease) => lease,
            other => panic!("expected to acquire, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn two_contenders_never_both_win() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let a = leases(&kv, "worker-a", Duration::from_secs(30));
        let b = leases(&kv, "worker-b", Duration::from_secs(30));
        for n in 0..40u16 {
            let p = Partition(n);
            let (ra, rb) = tokio::join!(a.acquire_partition(p), b.acquire_partition(p));
            let wins = [ra.unwrap(), rb.unwrap()]
                .into_iter()
                .filter(|r| matches!(r, Acquire::Acquired(_)))
                .count();
            assert_eq!(wins, 1, "partition {n}: {wins} winners");
        }
    }

    #[tokio::test]
    async fn an_unexpired_lease_is_refused_and_an_expired_one_taken_over() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let ttl = Duration::from_millis(600);
        let a = leases(&kv, "worker-a", ttl);
        let b = leases(&kv, "worker-b", ttl);
        let account = AccountId::new("user-1").unwrap();

        let mut held_a = acquired(a.acquire_account(&account, "fp-1").await.unwrap());
        a.renew_with_nonce(&mut held_a, Some(1_000)).await.unwrap();
        a.fence(&account).await.unwrap();
        match b.acquire_account(&account, "fp-1").await.unwrap() {
            Acquire::HeldBy { owner, .. } => assert_eq!(owner.as_str(), "worker-a"),
            other => panic!("b took a live lease: {other:?}"),
        }
        assert!(matches!(
            b.fence(&account).await,
            Err(FenceError::OtherOwner { .. })
        ));

        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        // A frozen holder finds its lease expired: no renewal, no order.
        assert!(matches!(
            a.fence(&account).await,
            Err(FenceError::Expiring { .. })
        ));
        let held_b = acquired(b.acquire_account(&account, "fp-1").await.unwrap());
        assert_eq!(held_b.last_nonce(), Some(1_000), "nonce carried over");
        assert!(held_b.took_over());
        assert!(matches!(
            a.renew(&mut held_a).await,
            Err(LeaseError::Lost { .. })
        ));
        assert!(matches!(
            a.fence(&account).await,
            Err(FenceError::OtherOwner { .. })
        ));
        b.fence(&account).await.unwrap();

        // A stale release by the old holder leaves the new holder's lease in place.
        a.release(held_a).await.unwrap();
        b.fence(&account).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_lease_is_not_renewed_even_when_nobody_took_it() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let ttl = Duration::from_millis(300);
        let a = leases(&kv, "worker-a", ttl);
        let mut held = acquired(a.acquire_partition(Partition(3)).await.unwrap());
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert!(matches!(
            a.renew(&mut held).await,
            Err(LeaseError::Lost { .. })
        ));
        // It can be acquired again explicitly.
        acquired(a.acquire_partition(Partition(3)).await.unwrap());
    }

    #[tokio::test]
    async fn renew_extends_and_release_frees() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let ttl = Duration::from_secs(30);
        let a = leases(&kv, "worker-a", ttl);
        let b = leases(&kv, "worker-b", ttl);
        let account = AccountId::new("acct").unwrap();
        assert!(matches!(
            a.fence(&account).await,
            Err(FenceError::NotLeased { .. })
        ));

        let mut held = acquired(a.acquire_account(&account, "fp").await.unwrap());
        assert!(!held.took_over());
        // Due for renewal once half the TTL has gone, not before.
        let now = Utc::now();
        assert!(!a.renewal_due(&held, now));
        assert!(!a.renewal_due(&held, now + chrono::Duration::seconds(14)));
        assert!(a.renewal_due(&held, now + chrono::Duration::seconds(16)));
        assert_eq!(a.check_every(), Duration::from_secs(5));
        let first = held.expires_at();
        let rev = held.revision();
        a.renew_with_nonce(&mut held, Some(7)).await.unwrap();
        a.renew_with_nonce(&mut held, Some(5)).await.unwrap();
        assert!(held.expires_at() >= first);
        assert!(held.revision() > rev);
        assert_eq!(held.last_nonce(), Some(7), "the nonce never goes down");
        let stored = a.account_holder(&account).await.unwrap().unwrap();
        assert_eq!(stored.key_fingerprint.as_deref(), Some("fp"));
        assert_eq!(stored.last_nonce, Some(7));

        a.release_with_nonce(held, Some(9)).await.unwrap();
        let kept = a.account_holder(&account).await.unwrap().unwrap();
        assert!(kept.released && kept.is_expired(Utc::now()));
        assert_eq!(
            kept.last_nonce,
            Some(9),
            "the release records the last nonce"
        );
        assert!(matches!(
            a.fence(&account).await,
            Err(FenceError::NotLeased { .. })
        ));
        // A new owner after a graceful release: taken at once, not a takeover, nonce above ours.
        let next = acquired(b.acquire_account(&account, "fp").await.unwrap());
        assert!(!next.took_over());
        assert_eq!(next.last_nonce(), Some(9));
        b.fence(&account).await.unwrap();
        let stored = b.account_holder(&account).await.unwrap().unwrap();
        assert!(!stored.released);
        assert_eq!(stored.owner.as_str(), "worker-b");
    }

    #[tokio::test]
    async fn a_partition_release_frees_it_for_the_next_owner() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let a = leases(&kv, "worker-a", Duration::from_secs(30));
        let b = leases(&kv, "worker-b", Duration::from_secs(30));
        let held = acquired(a.acquire_partition(Partition(2)).await.unwrap());
        assert!(matches!(
            b.acquire_partition(Partition(2)).await.unwrap(),
            Acquire::HeldBy { .. }
        ));
        a.release(held).await.unwrap();
        let next = acquired(b.acquire_partition(Partition(2)).await.unwrap());
        assert!(!next.took_over());
    }

    #[tokio::test]
    async fn reacquiring_an_own_lease_keeps_it() {
        let server = NatsServer::start().unwrap();
        let kv = bucket(&server).await;
        let a = leases(&kv, "worker-a", Duration::from_secs(30));
        let first = acquired(a.acquire_partition(Partition(1)).await.unwrap());
        let again = acquired(a.acquire_partition(Partition(1)).await.unwrap());
        assert!(again.revision() > first.revision());
        assert_eq!(
            a.partition_holder(Partition(1))
                .await
                .unwrap()
                .unwrap()
                .owner
                .as_str(),
            "worker-a"
        );
    }
}

//! Cap liquidations of an account within the guard's rolling window (DESIGN §3.4.6).
//!
//! Design: the results stream is the record of what was sold. The first time a session needs the
//! history (a plan with cap sells that is not forced), it reads the account's enforce and
//! normalize results published within `liquidation_window` and keeps the cap sells' filled values
//! in memory; every cap sell the session makes afterwards is appended. Accounts that never exceed
//! their cap never pay for the read, and a new owner (another worker, a restart) rebuilds the same
//! history from the same stream.

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use nija_policy::snapshot::CapLiquidation;
use nija_proto::ids::JobKind;
use nija_proto::messages::{FillStatus, JobResult, SoldPosition, decode};
use nija_proto::names::result_subject;
use nija_proto::plan::SellReason;
use nija_proto::{AccountId, Usd};
use nija_runtime::topology::Topology;

/// The cap liquidations of `account` found in results published since `since`.
pub async fn load(
    topology: &Topology,
    account: &AccountId,
    since: DateTime<Utc>,
) -> Result<Vec<CapLiquidation>, async_nats::Error> {
    let consumer = topology
        .results
        .create_consumer(push::OrderedConfig {
            deliver_subject: topology.js.client().new_inbox(),
            filter_subjects: vec![
                result_subject(JobKind::Enforce, account),
                result_subject(JobKind::Normalize, account),
            ],
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp(since.timestamp())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await?;
    let name = consumer.cached_info().name.clone();
    let read = read_all(consumer).await;
    // Ordered consumers linger until their inactivity threshold: delete it now, so thousands
    // of sessions loading their history never pile consumers up on the stream.
    if let Err(err) = topology.results.delete_consumer(&name).await {
        tracing::debug!(consumer = name, error = %err, "history consumer not deleted; it will expire");
    }
    read
}

async fn read_all(
    consumer: async_nats::jetstream::consumer::Consumer<push::OrderedConfig>,
) -> Result<Vec<CapLiquidation>, async_nats::Error> {
    let mut out = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let pending = message.info()?.pending;
        match decode::<JobResult>(&message.payload) {
            Ok(result) => out.extend(cap_liquidations(&result)),
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "unreadable result skipped while loading liquidation history")
            }
        }
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}

/// The cap sells of one result that filled (fully or partly), valued at their fills.
pub fn cap_liquidations(result: &JobResult) -> Vec<CapLiquidation> {
    result
        .sold
        .iter()
        .filter_map(|s| liquidation(s, result.finished_at))
        .collect()
}

/// One sale as a cap liquidation at `at`, if it was a cap sell that filled (fully or partly).
pub fn liquidation(sold: &SoldPosition, at: DateTime<Utc>) -> Option<CapLiquidation> {
    let counted = matches!(
        sold.fill_status,
        FillStatus::Filled | FillStatus::PartiallyFilled | FillStatus::Open
    );
    if sold.reason != SellReason::Cap || sold.filled_quantity.is_zero() || !counted {
        return None;
    }
    let usd_value = match sold.average_fill_price {
        Some(price) => sold.filled_quantity * price,
        None if sold.quantity.is_zero() => Usd::default(),
        None => Usd(sold.usd_value.0 * sold.filled_quantity.0 / sold.quantity.0),
    };
    Some(CapLiquidation { at, usd_value })
}

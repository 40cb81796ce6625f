//! The job executors (enforce, normalize, exit sweep): fresh snapshot → plan (policy) → persist
//! state → for each sell: control flags, mode, fence, place-if-absent, wait → re-read and verify →
//! the result. Every path ends in a [`JobResult`]; nothing returns early without one (DESIGN §7.3).

mod orders;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use nija_brokers::BrokerError;
use nija_config::AccountConfig;
use nija_policy::snapshot::{AccountSnapshot, CapLiquidation, JobContext, PolicyInput};
use nija_policy::{PolicyParams, StateChanges};
use nija_proto::Symbol;
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, JobError, JobResult, ResultStatus, SoldPosition};
use nija_proto::plan::{Mode, Plan, SellReason};
use nija_runtime::stores::Block;
use tokio::time::Instant;
use tracing::Instrument;

use crate::context::Context;
use crate::liquidations;
use crate::session::{QUARANTINE_AFTER, Session, SessionError, Slot};
use orders::SellOutcome;

/// Converts the job's wall-clock deadline to a monotonic instant.
pub fn deadline_instant(deadline: DateTime<Utc>) -> Instant {
    let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

fn error(class: &str, message: impl Into<String>) -> JobError {
    JobError {
        class: class.to_string(),
        message: message.into(),
        symbol: None,
    }
}

/// A result with nothing done yet: `failed` until the job says otherwise.
pub fn blank_result(ctx: &Context, job: &Job, started_at: DateTime<Utc>) -> JobResult {
    let account = ctx.config.account(&job.account);
    JobResult {
        job_id: job.job_id.clone(),
        kind: job.kind,
        account: job.account.clone(),
        account_type: account.map_or(nija_proto::plan::AccountType::User, |a| a.account_type),
        worker: ctx.id.clone(),
        status: ResultStatus::Failed,
        triggered_by: job.triggered_by.clone(),
        mode: account.map_or(ctx.config.mode, |a| ctx.config.mode_for(a)),
        dry_run: job.dry_run,
        forced: job.force,
        started_at,
        finished_at: started_at,
        count_before: None,
        count_after: None,
        max_allowed: job.max_positions.unwrap_or_default(),
        excess: 0,
        sold: Vec::new(),
        plan: None,
        errors: Vec::new(),
    }
}

/// Runs one job to its result. `current` is the account's session slot, locked by the caller.
pub async fn run(
    ctx: &Context,
    job: &Job,
    slot: &Slot,
    current: &mut Option<Arc<Session>>,
    until: Instant,
) -> JobResult {
    let mut result = blank_result(ctx, job, Utc::now());
    match ctx.config.account(&job.account) {
        None => result.errors.push(error(
            "config",
            format!(
                "account {} is not in this worker's configuration: add it (or fix the job) and reload",
                job.account
            ),
        )),
        Some(account) => execute(ctx, job, account, slot, current, until, &mut result).await,
    }
    result.finished_at = Utc::now();
    result
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    ctx: &Context,
    job: &Job,
    account: &AccountConfig,
    slot: &Slot,
    current: &mut Option<Arc<Session>>,
    until: Instant,
    result: &mut JobResult,
) {
    let id = &account.id;
    let params = ctx.config.policy_for(account);
    let mode = ctx.config.mode_for(account);
    result.max_allowed = job.max_positions.unwrap_or(params.max_positions);

    // A quarantined account is not touched at all (R9): no session, no broker call.
    if let Some(block @ Block::Quarantined(_)) = ctx.control_view.borrow().block(id) {
        result.status = ResultStatus::Paused;
        result.errors.push(error(
            "quarantined",
            format!(
                "account is quarantined ({}): lift it with `nija resume --account {id}`",
                block.flag().by
            ),
        ));
        return;
    }

    let session = match ctx
        .sessions
        .ensure(ctx, account, current, left(until))
        .await
    {
        Ok(session) => session,
        Err(err) => {
            if let SessionError::Broker { source, .. } = &err {
                credential_check(ctx, slot, account, source).await;
            }
            tracing::warn!(account = %id, job_id = %job.job_id, error = %err, "no broker session: job failed");
            result.errors.push(error(err.class(), err.to_string()));
            return;
        }
    };

    let snapshot = match snapshot::take(
        ctx,
        &session,
        account.account_type,
        &params.cash_assets,
        left(until),
    )
    .await
    {
        Ok(snapshot) => snapshot,
        Err(err) => {
            credential_check(ctx, slot, account, &err).await;
            tracing::warn!(account = %id, job_id = %job.job_id, error = %err, "snapshot failed: job failed, nothing decided");
            result.errors.push(error(
                "snapshot",
                format!("fresh snapshot failed, so nothing was decided: {err}"),
            ));
            return;
        }
    };
    slot.credential_success();

    let mut input = PolicyInput {
        snapshot,
        blacklist: ctx.blacklist.list(id),
        tracker: ctx.tracker.list(id),
        recent_liquidations: cached_liquidations(&session).unwrap_or_default(),
        previous_total: *lock(&session.previous_total),
        now: Utc::now(),
        job: JobContext::from(job),
        params: params.clone(),
    };
    let mut decision = match nija_policy::decide(&input) {
        Ok(decision) => decision,
        Err(err) => {
            result.errors.push(error("policy", err.to_string()));
            return;
        }
    };
    if !job.force && needs_history(&decision.plan) && cached_liquidations(&session).is_none() {
        let since = input.now - params.liquidation_window;
        let loaded = {
            let _turn = ctx.history_loads.acquire().await;
            liquidations::load(&ctx.topology, id, since).await
        };
        match loaded {
            Ok(history) => {
                *lock(&session.liquidations) = Some(history.clone());
                input.recent_liquidations = history;
                decision = match nija_policy::decide(&input) {
                    Ok(decision) => decision,
                    Err(err) => {
                        result.errors.push(error("policy", err.to_string()));
                        return;
                    }
                };
            }
            Err(err) => {
                result.errors.push(error(
                    "guard",
                    format!("liquidation history unreadable, so no cap sell is made: {err}"),
                ));
                return;
            }
        }
    }

    persist(ctx, account, &decision.changes, result).await;
    report_plan(account, &decision.plan);
    *lock(&session.previous_total) = decision.plan.reconciliation.as_ref().map(|r| r.total_usd);
    let plan = decision.plan;
    result.count_before = Some(plan.count_before);
    result.max_allowed = plan.max_allowed;
    result.excess = plan.excess;

    let mut blocked = None;
    let observe = job.dry_run || mode == Mode::Observe;
    if observe {
        for sell in &plan.sells {
            tracing::info!(
                account = %id, symbol = %sell.symbol, quantity = %sell.quantity,
                usd_value = %sell.usd_value, reason = sell.reason.log_words(), job_id = %job.job_id,
                "{} sell planned; observe only, no order", sell.reason.log_words()
            );
        }
    } else {
        for sell in &plan.sells {
            if let Some(block) = current_block(ctx, account).await {
                ctx.metrics.fence_refused(match block {
                    Block::Quarantined(_) => nija_telemetry::FenceRefusal::Quarantined,
                    _ => nija_telemetry::FenceRefusal::Paused,
                });
                tracing::warn!(
                    account = %id, symbol = %sell.symbol, quantity = %sell.quantity,
                    usd_value = %sell.usd_value, reason = sell.reason.log_words(),
                    block = block.as_str(), by = %block.flag().by, job_id = %job.job_id,
                    "{} sell not placed: account {}", sell.reason.log_words(), block.as_str()
                );
                blocked = Some(block);
                break;
            }
            let span = tracing::info_span!(
                "sell",
                symbol = %sell.symbol,
                reason = sell.reason.as_str(),
                quantity = %sell.quantity,
                usd_value = %sell.usd_value
            );
            match orders::place(ctx, &session, sell, until)
                .instrument(span)
                .await
            {
                Ok(SellOutcome::Placed(sold)) => {
                    log_sold(account, job, &sold);
                    if sold.reason == SellReason::Cap {
                        remember_liquidation(&session, &sold);
                    }
                    if sold.remainder > nija_proto::Quantity::default() {
                        result.errors.push(JobError {
                            class: "order".into(),
                            message: format!(
                                "order {} ended {:?} with {} unfilled; the remainder is reported, not re-sold",
                                sold.client_order_id, sold.fill_status, sold.remainder
                            ),
                            symbol: Some(sold.symbol.clone()),
                        });
                    }
                    result.sold.push(sold);
                }
                Ok(SellOutcome::NotPlaced(err)) => {
                    tracing::warn!(
                        account = %id, symbol = %sell.symbol, quantity = %sell.quantity,
                        usd_value = %sell.usd_value, reason = sell.reason.log_words(),
                        class = %err.class, error = %err.message, job_id = %job.job_id,
                        "{} sell not placed", sell.reason.log_words()
                    );
                    result.errors.push(err);
                }
                Ok(SellOutcome::Unknown(sold, err)) => {
                    tracing::error!(
                        account = %id, symbol = %sell.symbol, quantity = %sell.quantity,
                        usd_value = %sell.usd_value, reason = sell.reason.log_words(),
                        client_order_id = %sell.client_order_id, error = %err.message, job_id = %job.job_id,
                        "{} sell outcome unknown; not re-sent", sell.reason.log_words()
                    );
                    result.sold.push(sold);
                    result.errors.push(err);
                }
                Err(err) => {
                    credential_check(ctx, slot, account, &err).await;
                    result.errors.push(JobError {
                        class: err.class().as_str().into(),
                        message: err.to_string(),
                        symbol: Some(sell.symbol.clone()),
                    });
                    break;
                }
            }
        }
    }

    // Verify from a fresh re-read whenever something was sold (and always for normalize).
    let sold: Vec<Symbol> = result
        .sold
        .iter()
        .filter(|s| !s.filled_quantity.is_zero() || s.already_placed)
        .map(|s| s.symbol.clone())
        .collect();
    let reread_after = !sold.is_empty() || job.kind == JobKind::Normalize;
    let mut verified = plan.count_before <= plan.max_allowed;
    result.count_after = Some(plan.count_before);
    if reread_after {
        match reread(ctx, &session, account, &params, left(until)).await {
            Ok((count, snapshot)) => {
                result.count_after = Some(count);
                verified = count <= plan.max_allowed;
                if !sold.is_empty() {
                    close_sold(ctx, account, &params, &snapshot, &sold, result).await;
                }
            }
            Err(err) => {
                result.count_after = None;
                result.errors.push(error(
                    "verify",
                    format!("re-read after selling failed: {err}"),
                ));
            }
        }
    }
    if job.kind != JobKind::ExitSweep
        && let Some(count) = result.count_after
    {
        if !verified {
            tracing::error!(account = %id, count_after = count, max_allowed = plan.max_allowed, job_id = %job.job_id, cap_unreachable = plan.cap_unreachable, "OVER CAP after enforcement");
        } else if reread_after {
            tracing::info!(account = %id, count_after = count, max_allowed = plan.max_allowed, job_id = %job.job_id, "SAFETY VERIFIED");
        } else {
            tracing::debug!(account = %id, count_after = count, max_allowed = plan.max_allowed, job_id = %job.job_id, "SAFETY VERIFIED (no sells, snapshot count)");
        }
    }

    result.status = if blocked.is_some() {
        ResultStatus::Paused
    } else if observe {
        if plan.sells.is_empty() {
            plain_status(&plan)
        } else {
            ResultStatus::ObserveOnly
        }
    } else if !result.errors.is_empty() {
        ResultStatus::Partial
    } else if plan.guard_refusal.is_some() {
        ResultStatus::RefusedByGuard
    } else if plan.cap_unreachable {
        ResultStatus::CapUnreachable
    } else if !verified && job.kind != JobKind::ExitSweep {
        ResultStatus::Partial
    } else if !result.sold.is_empty() {
        ResultStatus::Enforced
    } else {
        ResultStatus::Compliant
    };
    if let Some(block) = blocked {
        result.errors.push(error(
            block.as_str(),
            format!(
                "orders are {} (by {}); nothing was placed",
                block.as_str(),
                block.flag().by
            ),
        ));
    }
    result.plan = Some(plan);
}

/// The status of a plan with no sells.
fn plain_status(plan: &Plan) -> ResultStatus {
    if plan.guard_refusal.is_some() {
        ResultStatus::RefusedByGuard
    } else if plan.cap_unreachable {
        ResultStatus::CapUnreachable
    } else {
        ResultStatus::Compliant
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cached_liquidations(session: &Session) -> Option<Vec<CapLiquidation>> {
    lock(&session.liquidations).clone()
}

fn needs_history(plan: &Plan) -> bool {
    plan.guard_refusal.is_some() || plan.sells.iter().any(|s| s.reason == SellReason::Cap)
}

fn remember_liquidation(session: &Session, sold: &SoldPosition) {
    if let Some(history) = lock(&session.liquidations).as_mut() {
        history.extend(liquidations::liquidation(sold, Utc::now()));
    }
}

/// The block in force for `account`: the watched view, then a fresh read (R7: a pause must stop
/// the very next order even if the watch lags).
async fn current_block(ctx: &Context, account: &AccountConfig) -> Option<Block> {
    if let Some(block) = ctx.control_view.borrow().block(&account.id) {
        return Some(block);
    }
    match ctx.control.block(&account.id).await {
        Ok(block) => block,
        Err(err) => Some(Block::Paused(nija_proto::control::ControlFlag {
            by: format!("control flags unreadable ({err}); not placing orders blind"),
            at: Utc::now(),
        })),
    }
}

/// Counts an authentication/permission failure and quarantines the account at the threshold.
async fn credential_check(ctx: &Context, slot: &Slot, account: &AccountConfig, err: &BrokerError) {
    if !err.is_credential_failure() {
        return;
    }
    let failures = slot.credential_failure();
    tracing::warn!(account = %account.id, failures, error = %err, "broker refused the account's credentials");
    if failures >= QUARANTINE_AFTER {
        let reason = format!(
            "{failures} consecutive {} failures: {err}",
            err.class().as_str()
        );
        match ctx.control.quarantine(&account.id, &reason).await {
            Ok(()) => {
                tracing::error!(account = %account.id, reason, "account QUARANTINED: no further broker calls until `nija resume --account`")
            }
            Err(e) => {
                tracing::error!(account = %account.id, error = %e, "quarantine flag not written")
            }
        }
    }
}

/// Writes the decision's state changes (blacklist additions, tracker records) and applies them to
/// the worker's views. A failed write is reported in the result; it never hides a position.
async fn persist(
    ctx: &Context,
    account: &AccountConfig,
    changes: &StateChanges,
    result: &mut JobResult,
) {
    let id = &account.id;
    let blacklist = join_all(changes.blacklist_additions.iter().map(|entry| async move {
        (
            entry,
            ctx.blacklist_store.put(id, &entry.symbol, entry).await,
        )
    }));
    let tracker = join_all(
        changes
            .tracker_upserts
            .iter()
            .chain(&changes.tracker_closures)
            .map(|record| async move {
                (
                    record,
                    ctx.tracker_store.put(id, &record.symbol, record).await,
                )
            }),
    );
    let (blacklist, tracker) = futures::join!(blacklist, tracker);
    for (entry, written) in blacklist {
        match written {
            Ok(_) => {
                ctx.blacklist
                    .set(id, entry.symbol.clone(), Some(entry.clone()));
                tracing::info!(account = %id, symbol = %entry.symbol, usd_value = %entry.usd_value, reason = "dust", "BLACKLISTED dust position");
            }
            Err(err) => result.errors.push(JobError {
                class: "state".into(),
                message: format!("blacklist entry not written: {err}"),
                symbol: Some(entry.symbol.clone()),
            }),
        }
    }
    for (record, written) in tracker {
        match written {
            Ok(_) => ctx
                .tracker
                .set(id, record.symbol.clone(), Some(record.clone())),
            Err(err) => result.errors.push(JobError {
                class: "state".into(),
                message: format!("tracker record not written: {err}"),
                symbol: Some(record.symbol.clone()),
            }),
        }
    }
    for peak in &changes.new_peaks {
        tracing::debug!(account = %id, symbol = %peak.symbol, previous = %peak.previous, peak = %peak.peak, "new peak persisted");
    }
}

/// Logs what the plan found that operators grep for.
fn report_plan(account: &AccountConfig, plan: &Plan) {
    for unpriced in &plan.unpriced {
        tracing::warn!(account = %account.id, symbol = %unpriced.symbol, quantity = %unpriced.quantity, reason = %unpriced.reason, "Price fetch failed: position unpriced (counted, never sold)");
    }
    if let Some(refusal) = &plan.guard_refusal {
        tracing::warn!(
            account = %account.id, planned_usd = %refusal.planned_usd, window_sold_usd = %refusal.window_sold_usd,
            allowed_usd = %refusal.allowed_usd, reason = "OVER CAP",
            "liquidation guard refused the cap sells (use --force to override)"
        );
    }
}

fn log_sold(account: &AccountConfig, job: &Job, sold: &SoldPosition) {
    tracing::info!(
        account = %account.id, symbol = %sold.symbol, quantity = %sold.quantity,
        filled_quantity = %sold.filled_quantity, remainder = %sold.remainder,
        usd_value = %sold.usd_value, reason = sold.reason.log_words(),
        fill_status = ?sold.fill_status, already_placed = sold.already_placed,
        order_id = sold.order_id.as_deref().unwrap_or(""), client_order_id = %sold.client_order_id,
        job_id = %job.job_id,
        "{} sell {}", sold.reason.log_words(),
        if sold.already_placed { "found already placed (not re-sent)" } else { "placed" }
    );
}

/// Re-reads the account and counts its material positions (DESIGN §3.4.5).
async fn reread(
    ctx: &Context,
    session: &Session,
    account: &AccountConfig,
    params: &PolicyParams,
    time_left: Duration,
) -> Result<(u32, AccountSnapshot), String> {
    let reread = snapshot::take(
        ctx,
        session,
        account.account_type,
        &params.cash_assets,
        time_left,
    )
    .await
    .map_err(|e| e.to_string())?;
    let blacklist = ctx.blacklist.list(&account.id);
    let count = nija_policy::verify::material_count(&reread, &blacklist, params)
        .map_err(|e| e.to_string())?;
    Ok((count, reread))
}

/// Brings the tracker in line with the re-read after this job's sells (`sold`: the symbols an
/// order of this job took effect on): a position sold entirely is closed as `closed_by_nija` now
/// (left to the next job, it would look vanished and be closed as `closed_externally`), one sold
/// in part is resized.
async fn close_sold(
    ctx: &Context,
    account: &AccountConfig,
    params: &PolicyParams,
    reread: &AccountSnapshot,
    sold: &[Symbol],
    result: &mut JobResult,
) {
    let outcome = nija_policy::adopt(
        reread,
        &ctx.tracker.list(&account.id),
        sold,
        params,
        Utc::now(),
    );
    persist(ctx, account, &StateChanges::from_adoption(outcome), result).await;
}

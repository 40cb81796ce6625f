//! The control API on `nija.ctl.<verb>`: request/reply for the CLI (status, enforce, normalize,
//! pause/resume, blacklist, track). Each request is handled in its own task, so a slow enforce
//! never holds up a status call.

use std::time::Duration;

use async_nats::Message;
use chrono::Utc;
use nija_proto::control::*;
use nija_proto::ids::JobKind;
use nija_proto::messages::{TriggeredBy, decode, encode};
use nija_proto::names::CONTROL_PREFIX;
use nija_proto::state::{
    AdoptionStatus, BlacklistEntry, BlacklistReason, EntryPriceSource, PositionSource,
    TrackedPosition,
};
use nija_proto::{AccountId, JobId, Quantity};
use nija_telemetry::{Liveness, Next};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::schedule::Request;
use crate::service::{Ctx, publish_all};

/// Queue group: several coordinators (during a rolling update) answer each request once.
const QUEUE_GROUP: &str = "nija-coordinator";

pub(crate) async fn serve(ctx: Ctx, live: Liveness) -> Result<(), async_nats::Error> {
    let mut requests = live.follow(
        ctx.client
            .queue_subscribe(format!("{CONTROL_PREFIX}.>"), QUEUE_GROUP.to_string())
            .await?,
    );
    loop {
        let message = match requests.next().await {
            Next::Item(message) => message,
            Next::Ended => return Err("control subscription ended".into()),
            Next::Shutdown => return Ok(()),
        };
        let ctx = ctx.clone();
        tokio::spawn(async move { handle(ctx, message).await });
    }
}

async fn handle(ctx: Ctx, message: Message) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!(subject = %message.subject, "control message without a reply subject ignored");
        return;
    };
    let verb = message
        .subject
        .as_str()
        .strip_prefix(CONTROL_PREFIX)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or("")
        .to_string();
    let body = &message.payload;
    let bytes = match verb.as_str() {
        VERB_STATUS => answer(body, |r| async { status(&ctx, r) }).await,
        VERB_ENFORCE => answer(body, |r| enforce(&ctx, r)).await,
        VERB_NORMALIZE => answer(body, |r| normalize(&ctx, r)).await,
        VERB_NORMALIZE_REPORT => answer(body, |r| async { normalize_report(&ctx, r) }).await,
        VERB_PAUSE => answer(body, |r| pause(&ctx, r, true)).await,
        VERB_RESUME => answer(body, |r| pause(&ctx, r, false)).await,
        VERB_BLACKLIST => answer(body, |r| blacklist(&ctx, r)).await,
        VERB_TRACK => answer(body, |r| track(&ctx, r)).await,
        other => encode(&Reply::<()>::Error(ControlError::new(
            ErrorCode::BadRequest,
            format!(
                "unknown control verb {other:?}: use status, enforce, normalize, normalize_report, \
                 pause, resume, blacklist or track"
            ),
        ))),
    };
    if let Err(e) = ctx.client.publish(reply_to, bytes.into()).await {
        tracing::warn!(verb, error = %e, "control reply not sent");
    }
}

/// Decodes the request, runs the handler, encodes the reply.
async fn answer<Req, Rep, F, Fut>(body: &[u8], handler: F) -> Vec<u8>
where
    Req: DeserializeOwned,
    Rep: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Rep, ControlError>>,
{
    let reply = match decode::<Req>(body) {
        Ok(request) => match handler(request).await {
            Ok(rep) => Reply::Ok(rep),
            Err(e) => Reply::Error(e),
        },
        Err(e) => Reply::Error(ControlError::new(ErrorCode::BadRequest, e.to_string())),
    };
    encode(&reply)
}

fn known(ctx: &Ctx, account: &AccountId) -> Result<(), ControlError> {
    if ctx.shared.lock().fleet.account(account).is_some() {
        Ok(())
    } else {
        Err(ControlError::new(
            ErrorCode::UnknownAccount,
            format!("account {account} is not in the coordinator's configuration"),
        ))
    }
}

fn internal(e: impl std::fmt::Display) -> ControlError {
    ControlError::new(ErrorCode::Internal, e.to_string())
}

fn status(ctx: &Ctx, req: StatusRequest) -> Result<StatusReply, ControlError> {
    let limit = req.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE) as usize;
    let core = ctx.shared.lock();
    let mut accounts = match &req.account {
        Some(id) => {
            let summary = core.fleet.summary(id).ok_or_else(|| {
                ControlError::new(
                    ErrorCode::UnknownAccount,
                    format!("account {id} is not configured"),
                )
            })?;
            vec![summary]
        }
        None => core.fleet.summaries(req.offset as usize, limit),
    };
    for a in &mut accounts {
        a.in_flight = core.scheduler.in_flight(&a.account).map(|f| InFlightJob {
            job_id: f.job_id.clone(),
            kind: f.kind,
            published_at: f.published_at,
            deadline: f.deadline,
        });
        a.paused = core.control.paused_accounts.get(&a.account).cloned();
        a.quarantined = core.control.quarantined.get(&a.account).cloned();
    }
    let total = core.fleet.account_count();
    let end = req.offset as usize + accounts.len();
    let next_offset = (req.account.is_none() && end < total).then_some(end as u32);
    Ok(StatusReply {
        coordinator_started_at: core.started_at,
        mode: if ctx.settings.observe {
            "observe"
        } else {
            "act"
        }
        .to_string(),
        paused: core.control.paused.clone(),
        workers: core.fleet.workers(),
        totals: Totals {
            accounts: total as u32,
            workers_alive: core.fleet.workers_alive() as u32,
            jobs_in_flight: core.scheduler.in_flight_count() as u32,
            stalls: core.fleet.stalls(),
            results_by_status: core.fleet.results_by_status().clone(),
            accounts_by_last_status: core.fleet.accounts_by_last_status(),
            paused_accounts: core.control.paused_accounts.len() as u32,
            quarantined_accounts: core.control.quarantined.len() as u32,
        },
        accounts,
        offset: req.offset,
        next_offset,
    })
}

/// How long an operator request waits for its job: behind a job in flight, then its own run.
fn wait_limit(ctx: &Ctx) -> Duration {
    let s = &ctx.settings.schedule;
    (s.job_deadline + s.stall_grace) * 2 + ctx.settings.tick * 4
}

async fn enforce(ctx: &Ctx, req: EnforceRequest) -> Result<EnforceReply, ControlError> {
    known(ctx, &req.account)?;
    let job_id = JobId::requested(JobKind::Enforce, &req.account, Uuid::new_v4());
    tracing::info!(account = %req.account, %job_id, operator = %req.operator, dry_run = req.dry_run, force = req.force, "operator enforce requested");
    let rx = {
        let mut core = ctx.shared.lock();
        let rx = core.wait_for(job_id.clone());
        core.scheduler.request(Request {
            job_id: job_id.clone(),
            kind: JobKind::Enforce,
            account: req.account.clone(),
            triggered_by: TriggeredBy::Operator(req.operator.clone()),
            force: req.force,
            dry_run: req.dry_run,
            max_positions: None,
        });
        rx
    };
    publish_due_now(ctx).await;
    match tokio::time::timeout(wait_limit(ctx), rx).await {
        Ok(Ok(Ok(result))) => Ok(EnforceReply { job_id, result }),
        Ok(Ok(Err(stalled))) => Err(ControlError::new(
            ErrorCode::Timeout,
            format!(
                "job {} stalled: no result by its deadline {}; check the workers (nija status)",
                stalled.job_id, stalled.deadline
            ),
        )),
        Ok(Err(_)) | Err(_) => Err(ControlError::new(
            ErrorCode::Timeout,
            format!(
                "no result for job {job_id} yet; it may still finish (nija status --account {})",
                req.account
            ),
        )),
    }
}

/// Publishes what is due at once instead of waiting for the next tick.
async fn publish_due_now(ctx: &Ctx) {
    let jobs = ctx.shared.lock().scheduler.due(Utc::now());
    if !jobs.is_empty() {
        publish_all(ctx, jobs).await;
    }
}

async fn normalize(ctx: &Ctx, req: NormalizeRequest) -> Result<NormalizeStarted, ControlError> {
    let accounts: Vec<AccountId> = match &req.accounts {
        Some(list) => {
            for a in list {
                known(ctx, a)?;
            }
            let mut list = list.clone();
            list.sort();
            list.dedup();
            list
        }
        None => ctx.shared.lock().fleet.account_ids().cloned().collect(),
    };
    if accounts.is_empty() {
        return Err(ControlError::new(
            ErrorCode::BadRequest,
            "no accounts to normalize",
        ));
    }
    let run = Uuid::new_v4();
    let run_id = run.simple().to_string();
    {
        let mut core = ctx.shared.lock();
        let mut jobs = Vec::with_capacity(accounts.len());
        for account in &accounts {
            let job_id = JobId::requested(JobKind::Normalize, account, run);
            core.scheduler.request(Request {
                job_id: job_id.clone(),
                kind: JobKind::Normalize,
                account: account.clone(),
                triggered_by: TriggeredBy::Operator(req.operator.clone()),
                force: false,
                dry_run: req.dry_run,
                max_positions: req.max_positions,
            });
            jobs.push((account.clone(), job_id));
        }
        core.runs.start(
            run_id.clone(),
            req.operator.clone(),
            req.dry_run,
            req.max_positions,
            jobs,
            Utc::now(),
        );
    }
    tracing::info!(%run_id, accounts = accounts.len(), operator = %req.operator, dry_run = req.dry_run, max_positions = ?req.max_positions, "normalization started");
    publish_due_now(ctx).await;
    Ok(NormalizeStarted {
        run_id,
        accounts: accounts.len() as u32,
    })
}

fn normalize_report(
    ctx: &Ctx,
    req: NormalizeReportRequest,
) -> Result<NormalizeReport, ControlError> {
    let limit = req.limit.unwrap_or(100).min(MAX_PAGE);
    ctx.shared
        .lock()
        .runs
        .report(&req.run_id, req.offset, limit)
        .ok_or_else(|| {
            ControlError::new(
                ErrorCode::UnknownRun,
                format!(
                    "no normalization run {:?} since the coordinator started",
                    req.run_id
                ),
            )
        })
}

async fn pause(ctx: &Ctx, req: PauseRequest, paused: bool) -> Result<PauseReply, ControlError> {
    let control = &ctx.stores.control;
    match (&req.account, paused) {
        (None, true) => control.pause_all(&req.operator).await,
        (None, false) => control.resume_all().await,
        (Some(a), true) => {
            known(ctx, a)?;
            control.pause_account(a, &req.operator).await
        }
        (Some(a), false) => {
            known(ctx, a)?;
            control.resume_account(a).await
        }
    }
    .map_err(internal)?;
    tracing::warn!(
        account = req.account.as_ref().map_or("all", |a| a.as_str()),
        operator = %req.operator,
        "{}",
        if paused { "order placement PAUSED" } else { "order placement resumed" }
    );
    Ok(PauseReply {
        account: req.account,
        paused,
    })
}

async fn blacklist(ctx: &Ctx, req: BlacklistRequest) -> Result<BlacklistReply, ControlError> {
    known(ctx, &req.account)?;
    let store = &ctx.stores.blacklist;
    let changed = match &req.op {
        BlacklistOp::List => 0,
        BlacklistOp::Add { symbol, usd_value } => {
            let entry = BlacklistEntry {
                account: req.account.clone(),
                symbol: symbol.clone(),
                usd_value: *usd_value,
                reason: BlacklistReason::Operator,
                added_at: Utc::now(),
                added_by: Some(req.operator.clone()),
            };
            store
                .put(&req.account, symbol, &entry)
                .await
                .map_err(internal)?;
            tracing::info!(account = %req.account, %symbol, operator = %req.operator, "BLACKLISTED by operator");
            1
        }
        BlacklistOp::Remove { symbol } => {
            let removed = store.remove(&req.account, symbol).await.map_err(internal)?;
            if removed {
                tracing::info!(account = %req.account, %symbol, operator = %req.operator, "removed from blacklist by operator");
            }
            u32::from(removed)
        }
        BlacklistOp::Clear => {
            let n = store.clear(&req.account).await.map_err(internal)?;
            tracing::info!(account = %req.account, removed = n, operator = %req.operator, "blacklist cleared by operator");
            n as u32
        }
    };
    let entries = store
        .list(&req.account)
        .await
        .map_err(internal)?
        .into_values()
        .collect();
    Ok(BlacklistReply {
        account: req.account,
        changed,
        entries,
    })
}

async fn track(ctx: &Ctx, req: TrackRequest) -> Result<TrackReply, ControlError> {
    known(ctx, &req.account)?;
    if req.entry_price.is_zero() || req.entry_price.is_sign_negative() {
        return Err(ControlError::new(
            ErrorCode::BadRequest,
            format!("entry price {} must be positive", req.entry_price),
        ));
    }
    let store = &ctx.stores.tracker;
    let replaced = store
        .get(&req.account, &req.symbol)
        .await
        .map_err(internal)?
        .is_some_and(|v| v.value.is_open());
    let position = TrackedPosition {
        account: req.account.clone(),
        symbol: req.symbol.clone(),
        quantity: req.quantity.unwrap_or(Quantity::ZERO),
        entry_price: req.entry_price,
        entry_price_source: EntryPriceSource::Strategy,
        entry_time: req.entry_time.unwrap_or_else(Utc::now),
        peak: req.entry_price,
        source: PositionSource::NijaStrategy,
        adoption_status: AdoptionStatus::Registered,
        tracked: true,
        closed_at: None,
    };
    store
        .put(&req.account, &req.symbol, &position)
        .await
        .map_err(internal)?;
    tracing::info!(account = %req.account, symbol = %req.symbol, entry_price = %req.entry_price, operator = %req.operator, replaced, "strategy position registered");
    Ok(TrackReply { position, replaced })
}

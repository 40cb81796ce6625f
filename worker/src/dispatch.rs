//! One job message from pull to ack: decode (or dead-letter), serialise per account, run with
//! in-progress acks, publish the result (awaited), then ack (DESIGN R3: a job is acknowledged only
//! after its result is stored; a worker that dies mid-job leaves it for redelivery).

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use chrono::Utc;
use nija_proto::ids::JobKind;
use nija_proto::messages::{DeadLetter, Job, JobResult, ResultStatus, decode};
use tokio::time::Instant;
use tracing::Instrument;

use crate::context::Context;
use crate::execute;

/// Handles one message of a partition's consumer.
pub async fn handle(ctx: &Context, message: jetstream::Message) {
    let job = match decode::<Job>(&message.payload) {
        Ok(job) => job,
        Err(err) => return dead_letter(ctx, message, err.to_string()).await,
    };
    let span =
        tracing::info_span!("job", job_id = %job.job_id, account = %job.account, kind = %job.kind);
    if let Some(headers) = message.headers.as_ref() {
        nija_telemetry::set_parent_from(&span, Some(headers));
    }
    ctx.jobs_in_flight.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.job_started();
    let status = run(ctx, &job, &message).instrument(span).await;
    ctx.metrics.job_finished(job.kind, status);
    ctx.jobs_in_flight.fetch_sub(1, Ordering::Relaxed);
}

async fn run(ctx: &Context, job: &Job, message: &jetstream::Message) -> ResultStatus {
    let until = execute::deadline_instant(job.deadline);
    let result = if Instant::now() >= until {
        let mut result = execute::blank_result(ctx, job, Utc::now());
        result.errors.push(nija_proto::messages::JobError {
            class: "deadline".into(),
            message: format!(
                "the job's deadline ({}) had passed when it reached the worker; nothing was done",
                job.deadline
            ),
            symbol: None,
        });
        result
    } else {
        let work = async {
            let slot = ctx.sessions.slot(&job.account);
            let mut current = slot.session.lock().await;
            execute::run(ctx, job, &slot, &mut current, until).await
        };
        with_progress(message, work, ctx.job_deadline()).await
    };
    ctx.job_finished(result.finished_at);
    finish(ctx, message, &result, until).await;
    result.status
}

/// Runs `work` while telling the server every so often that the message is still being worked on.
async fn with_progress<T>(
    message: &jetstream::Message,
    work: impl Future<Output = T>,
    job_deadline: Duration,
) -> T {
    let every = (job_deadline / 4).max(Duration::from_millis(250));
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticks.tick() => {
                if let Err(err) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %err, "in-progress ack not sent");
                }
            }
        }
    }
}

/// Publishes the result (retrying until the deadline plus a grace period), then acks the job.
/// If the result cannot be stored the job is not acked: it will be redelivered.
async fn finish(ctx: &Context, message: &jetstream::Message, result: &JobResult, until: Instant) {
    let give_up = until.max(Instant::now()) + Duration::from_secs(5);
    let mut pause = Duration::from_millis(100);
    loop {
        match ctx.publisher.result(result).await {
            Ok(_) => break,
            Err(err) if Instant::now() + pause < give_up => {
                tracing::warn!(error = %err, retry_in = ?pause, "result not stored yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(err) => {
                tracing::error!(error = %err, "result not stored: job left unacknowledged for redelivery");
                return;
            }
        }
    }
    tracing::debug!(
        status = result.status.as_str(),
        sold = result.sold.len(),
        "job finished"
    );
    if let Err(err) = message.ack().await {
        tracing::warn!(error = %err, "job ack not sent; the job may be redelivered (its result is stored, re-running is safe)");
    }
}

/// Dead-letters an undecodable message on `nija.dlq.<kind>` and terminates it.
async fn dead_letter(ctx: &Context, message: jetstream::Message, error: String) {
    let subject = message.subject.to_string();
    // `nija.jobs.<partition>.<kind>.<account>`: the kind token, when it is a known kind.
    let known = subject
        .split('.')
        .nth(3)
        .and_then(|k| k.parse::<JobKind>().ok());
    let kind = known.map_or("unknown", JobKind::as_str);
    let letter = DeadLetter {
        subject: subject.clone(),
        error: error.clone(),
        raw: String::from_utf8_lossy(&message.payload).into_owned(),
        worker: Some(ctx.id.clone()),
        received_at: Utc::now(),
    };
    tracing::error!(subject, kind, error, "undecodable job dead-lettered");
    match ctx.publisher.dead_letter(kind, &letter).await {
        Ok(_) => {
            ctx.metrics.dead_lettered(known);
            if let Err(err) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %err, "terminating the dead-lettered message failed");
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "dead letter not stored; the message stays for redelivery")
        }
    }
}

//! `nija status`, `nija pause`, `nija resume`: control requests to the coordinator.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use nija_config::{Config, ProcessEnv};
use nija_proto::AccountId;
use nija_proto::control::{
    ControlError, PauseReply, PauseRequest, Reply, StatusReply, StatusRequest, VERB_PAUSE,
    VERB_RESUME, VERB_STATUS,
};
use nija_proto::messages::{decode, encode};
use nija_proto::names::control_subject;
use nija_runtime::connect::{NatsSettings, connect};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Exit codes (DESIGN §5.4).
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    fn usage(e: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            error: e.into(),
        }
    }
    fn unreachable(e: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_UNREACHABLE,
            error: e.into(),
        }
    }
}

#[derive(Debug, Args)]
pub struct Common {
    /// The nija configuration file (for the NATS connection).
    #[arg(long, env = "NIJA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// How long to wait for the coordinator.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: Common,
    /// Only this account.
    #[arg(long)]
    account: Option<AccountId>,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    common: Common,
    /// Only this account (default: all order placement).
    #[arg(long)]
    account: Option<AccountId>,
    /// Recorded as who paused or resumed (default: the OS user).
    #[arg(long)]
    operator: Option<String>,
}

fn operator(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

async fn request<Req: Serialize, Rep: DeserializeOwned>(
    common: &Common,
    verb: &str,
    req: &Req,
) -> Result<Rep, Failure> {
    let loaded = Config::load_located(common.config.as_deref(), &ProcessEnv)
        .map_err(|e| Failure::usage(anyhow!("{e}")))?;
    let n = &loaded.config.nats;
    let mut settings = NatsSettings::new(n.urls.clone());
    settings.creds = n.creds.clone();
    settings.nkey = n.nkey.clone();
    settings.tls_ca = n.tls_ca.clone();
    settings.tls_cert = n.tls_cert.clone();
    settings.tls_key = n.tls_key.clone();
    let client = connect(&settings, "nija-cli")
        .await
        .map_err(Failure::unreachable)?;
    let reply = tokio::time::timeout(
        common.timeout,
        client.request(control_subject(verb), encode(req).into()),
    )
    .await
    .map_err(|_| {
        Failure::unreachable(anyhow!(
            "the coordinator did not answer within {:?}: is it running?",
            common.timeout
        ))
    })?
    .map_err(|e| {
        Failure::unreachable(anyhow!(
            "the coordinator is unreachable ({e}): is it running?"
        ))
    })?;
    match decode::<Reply<Rep>>(&reply.payload)
        .map_err(|e| Failure::unreachable(anyhow!("unreadable reply: {e}")))?
    {
        Reply::Ok(rep) => Ok(rep),
        Reply::Error(ControlError { code, message }) => {
            Err(Failure::usage(anyhow!("{code:?}: {message}")))
        }
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::usage(anyhow!("{e}")))?;
    println!("{text}");
    Ok(())
}

pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let mut pages = Vec::new();
    let mut offset = 0;
    loop {
        let req = StatusRequest {
            offset,
            limit: None,
            account: args.account.clone(),
        };
        let reply: StatusReply = request(&args.common, VERB_STATUS, &req).await?;
        let next = reply.next_offset;
        pages.push(reply);
        match next {
            Some(n) => offset = n,
            None => break,
        }
    }
    let Some(mut status) = pages.first().cloned() else {
        return Err(Failure::unreachable(anyhow!("empty status")));
    };
    status.accounts = pages.into_iter().flat_map(|p| p.accounts).collect();
    status.next_offset = None;
    if args.common.json {
        return print_json(&status);
    }
    let t = &status.totals;
    println!(
        "mode {}{}; {} accounts, {} workers alive, {} jobs in flight, {} stalls",
        status.mode,
        status.paused.as_ref().map_or(String::new(), |p| format!(
            ", PAUSED by {} at {}",
            p.by, p.at
        )),
        t.accounts,
        t.workers_alive,
        t.jobs_in_flight,
        t.stalls
    );
    for w in &status.workers {
        println!(
            "worker {:<24} {:<5} partitions {:>3} accounts {:>5} in flight {:>3} last seen {}",
            w.worker.as_str(),
            if w.alive { "alive" } else { "DEAD" },
            w.partitions.len(),
            w.leased_accounts,
            w.jobs_in_flight,
            w.last_seen
        );
    }
    for a in &status.accounts {
        let last: Vec<String> = a
            .last
            .iter()
            .map(|l| {
                let counts = match (l.count_before, l.count_after) {
                    (Some(b), Some(c)) => format!(" {b}→{c}/{}", l.max_allowed),
                    _ => String::new(),
                };
                format!("{} {}{counts}", l.kind.as_str(), l.status.as_str())
            })
            .collect();
        let flags = [
            a.paused.as_ref().map(|_| "PAUSED"),
            a.quarantined.as_ref().map(|_| "QUARANTINED"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        println!(
            "{:<16} {:<8} {:<8} {} {}",
            a.account.as_str(),
            a.account_type.as_str(),
            a.broker,
            last.join(", "),
            flags
        );
    }
    Ok(())
}

pub async fn pause(args: PauseArgs, paused: bool) -> Result<(), Failure> {
    let req = PauseRequest {
        account: args.account,
        operator: operator(args.operator),
    };
    let verb = if paused { VERB_PAUSE } else { VERB_RESUME };
    let reply: PauseReply = request(&args.common, verb, &req).await?;
    if args.common.json {
        return print_json(&reply);
    }
    let scope = reply
        .account
        .as_ref()
        .map_or("all order placement".to_string(), |a| {
            format!("account {a}")
        });
    println!(
        "{} {scope}",
        if reply.paused { "paused" } else { "resumed" }
    );
    Ok(())
}

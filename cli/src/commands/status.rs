//! `nija status`: workers, accounts and flags as the coordinator sees them, fetched page by page
//! (thousands of accounts never travel in one message).

use anyhow::anyhow;
use clap::Args;
use nija_proto::AccountId;
use nija_proto::control::{StatusReply, StatusRequest, VERB_STATUS};

use super::{Conn, Failure, Session, print_json, unreachable};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  nija status\n  nija status --account user-0001 --json")]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this account.
    #[arg(long)]
    account: Option<AccountId>,
}

pub async fn run(args: StatusArgs) -> Result<(), Failure> {
    let session = Session::open(&args.conn).await?;
    let mut pages = Vec::new();
    let mut offset = 0;
    loop {
        let req = StatusRequest {
            offset,
            limit: None,
            account: args.account.clone(),
        };
        let reply: StatusReply = session.call(VERB_STATUS, &req).await?;
        let next = reply.next_offset;
        pages.push(reply);
        match next {
            Some(n) => offset = n,
            None => break,
        }
    }
    let Some(mut status) = pages.first().cloned() else {
        return Err(unreachable(anyhow!("empty status")));
    };
    status.accounts = pages.into_iter().flat_map(|p| p.accounts).collect();
    status.next_offset = None;
    if args.conn.json {
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

//! `nija blacklist list|add|remove|clear`: one account's blacklist (dust and operator entries).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use nija_proto::control::{BlacklistOp, BlacklistReply, BlacklistRequest, VERB_BLACKLIST};
use nija_proto::{AccountId, Symbol, Usd};

use super::{Conn, Failure, Session, print_json, usage};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nija blacklist list --account user-0001\n  \
    nija blacklist add --account user-0001 --symbol SHIB-USD\n  \
    nija blacklist remove --account user-0001 --symbol SHIB-USD\n  \
    nija blacklist clear --account user-0001 --yes")]
pub struct BlacklistArgs {
    #[command(subcommand)]
    pub op: Op,
}

#[derive(Debug, Subcommand)]
pub enum Op {
    /// The account's blacklist.
    List(Target),
    /// Blacklist a symbol (never counted, never sold).
    Add(WithSymbol),
    /// Take a symbol off the blacklist.
    Remove(WithSymbol),
    /// Empty the account's blacklist (asks for confirmation unless --yes).
    Clear(ClearArgs),
}

#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long)]
    pub account: AccountId,
}

#[derive(Debug, Args)]
pub struct WithSymbol {
    #[command(flatten)]
    pub target: Target,
    /// The symbol, e.g. BTC-USD.
    #[arg(long)]
    pub symbol: Symbol,
    /// The position's value, recorded with the entry (add only).
    #[arg(long, default_value = "0")]
    pub usd_value: Usd,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    #[command(flatten)]
    pub target: Target,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(args: BlacklistArgs) -> Result<(), Failure> {
    let (target, op) = match args.op {
        Op::List(t) => (t, BlacklistOp::List),
        Op::Add(w) => (
            w.target,
            BlacklistOp::Add {
                symbol: w.symbol,
                usd_value: w.usd_value,
            },
        ),
        Op::Remove(w) => (w.target, BlacklistOp::Remove { symbol: w.symbol }),
        Op::Clear(c) => {
            if !c.yes {
                confirm(&c.target.account)?;
            }
            (c.target, BlacklistOp::Clear)
        }
    };
    let session = Session::open(&target.conn).await?;
    let req = BlacklistRequest {
        account: target.account,
        op,
        operator: target.conn.operator(),
    };
    let reply: BlacklistReply = session.call(VERB_BLACKLIST, &req).await?;
    if target.conn.json {
        return print_json(&reply);
    }
    if !matches!(req.op, BlacklistOp::List) {
        println!("{} entries changed", reply.changed);
    }
    println!(
        "blacklist of {}: {} entries",
        reply.account,
        reply.entries.len()
    );
    for e in &reply.entries {
        println!(
            "  {:<14} ${:<10} {:?} added {} by {}",
            e.symbol.to_string(),
            e.usd_value.to_string(),
            e.reason,
            e.added_at,
            e.added_by.as_deref().unwrap_or("nija")
        );
    }
    Ok(())
}

fn confirm(account: &AccountId) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(anyhow!(
            "clearing the blacklist of {account} needs confirmation: pass --yes"
        )));
    }
    eprint!("clear every blacklist entry of {account}? type yes: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(usage)?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(usage(anyhow!("not confirmed; nothing changed")))
    }
}

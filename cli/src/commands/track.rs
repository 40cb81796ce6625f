//! `nija track`: register a strategy-opened position (`source = nija_strategy`, DESIGN §5.4), so
//! its exits use the strategy's entry price.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use clap::Args;
use nija_proto::control::{TrackReply, TrackRequest, VERB_TRACK};
use nija_proto::{AccountId, Price, Quantity, Symbol};

use super::{Conn, Failure, Session, print_json};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nija track --account user-0001 --symbol ETH-USD --entry-price 3400\n  \
    nija track --account user-0001 --symbol ETH-USD --entry-price 3400 \
    --entry-time 2026-11-20T14:00:00Z --json")]
pub struct TrackArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long)]
    pub account: AccountId,
    /// The symbol, e.g. ETH-USD.
    #[arg(long)]
    pub symbol: Symbol,
    /// The strategy's entry price.
    #[arg(long)]
    pub entry_price: Price,
    /// When the strategy opened it (RFC 3339; default now).
    #[arg(long, value_parser = parse_time)]
    pub entry_time: Option<DateTime<Utc>>,
    /// Quantity (default: set from the broker by the next snapshot).
    #[arg(long)]
    pub quantity: Option<Quantity>,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, anyhow::Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| anyhow!("{s:?} is not an RFC 3339 time ({e}); e.g. 2026-11-20T14:00:00Z"))
}

pub async fn run(args: TrackArgs) -> Result<(), Failure> {
    let session = Session::open(&args.conn).await?;
    let req = TrackRequest {
        account: args.account,
        symbol: args.symbol,
        entry_price: args.entry_price,
        entry_time: args.entry_time,
        quantity: args.quantity,
        operator: args.conn.operator(),
    };
    let reply: TrackReply = session.call(VERB_TRACK, &req).await?;
    if args.conn.json {
        return print_json(&reply);
    }
    let p = &reply.position;
    println!(
        "{} {} tracked: entry {} at {} (source nija_strategy){}",
        p.account,
        p.symbol,
        p.entry_price,
        p.entry_time,
        if reply.replaced {
            ", replacing the open record"
        } else {
            ""
        }
    );
    Ok(())
}

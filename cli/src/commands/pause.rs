//! `nija pause` and `nija resume`: the kill switch, for all order placement or one account
//! (resume also lifts a quarantine).

use clap::Args;
use nija_proto::AccountId;
use nija_proto::control::{PauseReply, PauseRequest, VERB_PAUSE, VERB_RESUME};

use super::{Conn, Failure, Session, print_json};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nija pause\n  nija pause --account user-0001 --operator alice\n  nija resume --account user-0001"
)]
pub struct PauseArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this account (default: all order placement).
    #[arg(long)]
    account: Option<AccountId>,
}

pub async fn run(args: PauseArgs, paused: bool) -> Result<(), Failure> {
    let session = Session::open(&args.conn).await?;
    let req = PauseRequest {
        account: args.account,
        operator: args.conn.operator(),
    };
    let verb = if paused { VERB_PAUSE } else { VERB_RESUME };
    let reply: PauseReply = session.call(verb, &req).await?;
    if args.conn.json {
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

//! `nija enforce`: one enforce job for one account now, and its result (DESIGN §3.4).

use clap::Args;
use nija_proto::AccountId;
use nija_proto::control::{EnforceReply, EnforceRequest, VERB_ENFORCE};
use nija_proto::messages::JobResult;

use super::{Conn, EXIT_SOME_FAILED, Failure, Session, print_json};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nija enforce --account user-0001 --dry-run     # print the plan, place nothing\n  \
    nija enforce --account user-0001               # enforce the cap now\n  \
    nija enforce --account user-0001 --force --operator alice --json")]
pub struct EnforceArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// The account to enforce.
    #[arg(long)]
    pub account: AccountId,
    /// Print the plan; place nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Pass the liquidation guard (recorded with the operator).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: EnforceArgs) -> Result<(), Failure> {
    let session = Session::open(&args.conn).await?;
    let req = EnforceRequest {
        account: args.account,
        dry_run: args.dry_run,
        force: args.force,
        operator: args.conn.operator(),
    };
    let reply: EnforceReply = session.call(VERB_ENFORCE, &req).await?;
    if args.conn.json {
        print_json(&reply)?;
    } else {
        print!("{}", describe(&reply.result));
    }
    if reply.result.status.is_success() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_SOME_FAILED,
            error: anyhow::anyhow!(
                "account {} ended {}",
                reply.result.account,
                reply.result.status.as_str()
            ),
        })
    }
}

fn opt(n: Option<u32>) -> String {
    n.map_or("unknown".into(), |n| n.to_string())
}

/// A result as text: the fields of DESIGN §3.4.
pub fn describe(r: &JobResult) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} {} job {}{}{}: {}",
        r.account,
        r.kind.as_str(),
        r.job_id,
        if r.dry_run { " (dry run)" } else { "" },
        if r.forced { " (forced)" } else { "" },
        r.status.as_str()
    ));
    line(format!(
        "  positions before {} after {} cap {} excess {}",
        opt(r.count_before),
        opt(r.count_after),
        r.max_allowed,
        r.excess
    ));
    if r.dry_run
        && let Some(plan) = &r.plan
    {
        for s in &plan.sells {
            line(format!(
                "  would sell {} {} (${}) reason {:?}",
                s.symbol, s.quantity, s.usd_value, s.reason
            ));
        }
    }
    for s in &r.sold {
        line(format!(
            "  sold {} {} (${}) order {} {:?}",
            s.symbol,
            s.quantity,
            s.usd_value,
            s.order_id.as_deref().unwrap_or("-"),
            s.fill_status
        ));
    }
    if let Some(plan) = &r.plan {
        for k in &plan.kept {
            let usd = k.usd_value.map_or("unpriced".into(), |v| format!("${v}"));
            line(format!("  kept {} {} ({usd})", k.symbol, k.quantity));
        }
        for d in &plan.dust {
            line(format!(
                "  dust {} ${}{}",
                d.symbol,
                d.usd_value,
                if d.newly_blacklisted {
                    " (blacklisted now)"
                } else {
                    ""
                }
            ));
        }
        for u in &plan.unpriced {
            line(format!(
                "  unpriced {} {} ({})",
                u.symbol, u.quantity, u.reason
            ));
        }
        for u in &plan.unsellable {
            line(format!(
                "  unsellable {} ${} ({:?})",
                u.symbol, u.usd_value, u.reason
            ));
        }
        if let Some(g) = &plan.guard_refusal {
            line(format!("  liquidation guard refused: {g:?}"));
        }
    }
    for e in &r.errors {
        line(format!(
            "  error [{}]{} {}",
            e.class,
            e.symbol.as_ref().map_or(String::new(), |s| format!(" {s}")),
            e.message
        ));
    }
    out
}

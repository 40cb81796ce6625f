//! A fresh snapshot of one account: holdings, prices, product rules and market hours, turned into
//! the policy's [`AccountSnapshot`]. A failed holdings read fails the job — it is never an empty
//! account (DESIGN §7.1); a failed price leaves one position unpriced (§3.3).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use nija_brokers::BrokerError;
use nija_policy::snapshot::{AccountSnapshot, PositionSnapshot, SizeRules};
use nija_proto::Symbol;
use nija_proto::plan::AccountType;

use crate::context::Context;
use crate::session::Session;

/// Reads the account now. `time_left` bounds the whole read.
pub async fn take(
    ctx: &Context,
    session: &Session,
    account_type: AccountType,
    cash_assets: &[String],
    time_left: Duration,
) -> Result<AccountSnapshot, BrokerError> {
    let broker = session.broker.as_ref();
    let kind = broker.kind().as_str();
    let holdings = tokio::time::timeout(time_left, broker.holdings(cash_assets))
        .await
        .map_err(|_| BrokerError::Transient {
            broker: kind.to_string(),
            message: format!("holdings not read within {time_left:?}"),
        })??;
    let symbols: Vec<Symbol> = holdings
        .positions
        .iter()
        .map(|p| p.symbol.clone())
        .collect();
    let mut prices = ctx
        .market
        .prices(&session.venue, broker, &symbols, time_left)
        .await;
    let rules = join_all(
        symbols
            .iter()
            .map(|s| ctx.market.rules(&session.venue, broker, s, time_left)),
    )
    .await;
    let mut positions = Vec::with_capacity(holdings.positions.len());
    for (holding, rules) in holdings.positions.into_iter().zip(rules) {
        let market_open = match &rules {
            Some(r) if r.market_hours_only => {
                ctx.market
                    .market_open(&session.venue, broker, &holding.symbol, time_left)
                    .await
            }
            _ => true,
        };
        let price = prices.remove(&holding.symbol).unwrap_or_else(|| {
            nija_policy::snapshot::PriceObservation::Unpriced {
                reason: "price_fetch_failed: no quote".into(),
            }
        });
        positions.push(PositionSnapshot {
            tradable: rules.as_ref().is_none_or(|r| r.tradable),
            rules: rules.map(|r| SizeRules {
                min_size: r.min_size,
                size_increment: r.size_increment,
                min_notional: r.min_notional,
            }),
            symbol: holding.symbol,
            quantity: holding.quantity,
            available: holding.available,
            avg_entry_price: holding.avg_entry_price,
            price,
            market_open,
        });
    }
    let mut cash = BTreeMap::new();
    for balance in holdings.cash {
        let entry = cash.entry(balance.asset).or_insert_with(Default::default);
        *entry = *entry + balance.total;
    }
    Ok(AccountSnapshot {
        account: session.account.id.clone(),
        account_type,
        taken_at: Utc::now(),
        cash,
        positions,
        broker_total: holdings.broker_total,
    })
}

//! Placing one planned sell safely (DESIGN R1, R2, §3.4.8): fence, look the client order id up at
//! the broker, place only if absent, then wait for a terminal state within the job's deadline. A
//! partial fill is reported with its remainder and never re-sold.

use std::time::Duration;

use nija_brokers::{BrokerError, OrderState, OrderStatus, SellOrder};
use nija_proto::Quantity;
use nija_proto::messages::{FillStatus, JobError, SoldPosition};
use nija_proto::plan::PlannedSell;
use tokio::time::Instant;

use crate::context::Context;
use crate::session::Session;

/// Pause between order status polls while waiting for a terminal state.
const POLL: Duration = Duration::from_millis(200);

/// What happened to one planned sell.
pub enum SellOutcome {
    /// An order exists (placed now or by an earlier run of the same job).
    Placed(SoldPosition),
    /// No order was placed; the error says why.
    NotPlaced(JobError),
    /// An order may exist (the broker could not say): reported, never re-sent.
    Unknown(SoldPosition, JobError),
}

fn job_error(class: &str, message: String, sell: &PlannedSell) -> JobError {
    JobError {
        class: class.to_string(),
        message,
        symbol: Some(sell.symbol.clone()),
    }
}

async fn within<T>(
    until: Instant,
    what: &str,
    fut: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout_at(until, fut).await {
        Ok(result) => result,
        Err(_) => Err(BrokerError::Transient {
            broker: String::from("broker"),
            message: format!("{what} did not finish before the job deadline"),
        }),
    }
}

/// Places `sell` unless an order with its client order id already exists, and waits for it.
/// The caller has already checked the control flags and the mode; the fence is checked here, just
/// before the look-up and the placement.
pub async fn place(
    ctx: &Context,
    session: &Session,
    sell: &PlannedSell,
    until: Instant,
) -> Result<SellOutcome, BrokerError> {
    if let Err(err) = session.fence(ctx).await {
        ctx.metrics
            .fence_refused(nija_telemetry::FenceRefusal::LeaseLost);
        return Ok(SellOutcome::NotPlaced(job_error(
            "lease",
            err.to_string(),
            sell,
        )));
    }
    let broker = session.broker.as_ref();
    let kind = broker.kind().as_str();
    let metrics = &ctx.metrics.broker;
    let started = Instant::now();
    let existing = match within(
        until,
        "order look-up",
        broker.order_by_client_id(&sell.symbol, &sell.client_order_id),
    )
    .await
    {
        Ok(existing) => existing,
        Err(err) if err.is_credential_failure() => return Err(err),
        Err(err) => {
            // Whether an order exists is unknown: placing now could sell twice (R1).
            return Ok(SellOutcome::NotPlaced(job_error(
                err.class().as_str(),
                format!("cannot tell whether the order already exists, so none is placed: {err}"),
                sell,
            )));
        }
    };
    let already_placed = existing.is_some();
    let status = match existing {
        Some(status) => status,
        None => {
            let order = SellOrder {
                symbol: sell.symbol.clone(),
                quantity: sell.quantity,
                client_order_id: sell.client_order_id,
            };
            let placed = within(until, "order placement", broker.market_sell(&order)).await;
            if let Err(err) = &placed {
                metrics.order_failed(kind, matches!(err, BrokerError::OutcomeUnknown { .. }));
            }
            match placed {
                Ok(status) => status,
                Err(err) if err.is_credential_failure() => return Err(err),
                Err(err @ BrokerError::OutcomeUnknown { .. }) => {
                    let sold = report(sell, None, false, FillStatus::Unknown);
                    return Ok(SellOutcome::Unknown(
                        sold,
                        job_error("outcome_unknown", err.to_string(), sell),
                    ));
                }
                Err(err) => {
                    return Ok(SellOutcome::NotPlaced(job_error(
                        err.class().as_str(),
                        err.to_string(),
                        sell,
                    )));
                }
            }
        }
    };
    metrics.order_placed(kind, already_placed, started.elapsed());
    let status = wait_terminal(session, status, until).await;
    let fill = fill_status(status.state);
    Ok(SellOutcome::Placed(report(
        sell,
        Some(&status),
        already_placed,
        fill,
    )))
}

/// Polls the order until it is terminal or the deadline comes (then it is reported `open`).
async fn wait_terminal(session: &Session, mut status: OrderStatus, until: Instant) -> OrderStatus {
    while !status.state.is_terminal() && Instant::now() + POLL < until {
        tokio::time::sleep(POLL).await;
        match within(
            until,
            "order status",
            session.broker.order(&status.symbol, &status.order_id),
        )
        .await
        {
            Ok(fresh) => status = fresh,
            Err(err) => {
                tracing::warn!(account = %session.account.id, order_id = %status.order_id, error = %err, "order status not read; retrying")
            }
        }
    }
    status
}

fn fill_status(state: OrderState) -> FillStatus {
    match state {
        OrderState::Open => FillStatus::Open,
        OrderState::Filled => FillStatus::Filled,
        OrderState::PartiallyFilled => FillStatus::PartiallyFilled,
        OrderState::Cancelled => FillStatus::Cancelled,
        OrderState::Rejected => FillStatus::Rejected,
        OrderState::Expired => FillStatus::Expired,
    }
}

fn report(
    sell: &PlannedSell,
    status: Option<&OrderStatus>,
    already_placed: bool,
    fill_status: FillStatus,
) -> SoldPosition {
    let filled = status.map_or(Quantity::default(), |s| s.filled_quantity);
    let quantity = status.map_or(sell.quantity, |s| s.quantity);
    SoldPosition {
        symbol: sell.symbol.clone(),
        reason: sell.reason,
        fired: sell.fired.clone(),
        quantity,
        filled_quantity: filled,
        remainder: if filled < quantity {
            quantity - filled
        } else {
            Quantity::default()
        },
        usd_value: sell.usd_value,
        average_fill_price: status.and_then(|s| s.average_fill_price),
        order_id: status.map(|s| s.order_id.clone()),
        client_order_id: sell.client_order_id,
        fill_status,
        already_placed,
    }
}

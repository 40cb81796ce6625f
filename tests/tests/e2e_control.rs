//! The control API against a running stack: status, an operator enforce that waits for its
//! result, a normalization run with an exact report, pause/resume, blacklist and track.

use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions};
use nija_proto::control::*;
use nija_proto::messages::{ResultStatus, TriggeredBy};
use nija_proto::state::{AdoptionStatus, PositionSource};
use nija_proto::{AccountId, Price, Symbol, Usd};

const WAIT: Duration = Duration::from_secs(90);

async fn call<Req: nija_proto::messages::Message, Rep: serde::de::DeserializeOwned>(
    stack: &Stack,
    verb: &str,
    req: &Req,
) -> anyhow::Result<Rep> {
    stack
        .control(verb, req, WAIT)
        .await?
        .map_err(|e| anyhow::anyhow!("{verb}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_drives_and_reports_the_fleet() -> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(5);
    let mut options = StackOptions::new(scenario);
    // Scheduled enforce runs rarely: the operator drives this test (the first round still runs).
    options.enforce_every = Duration::from_secs(3600);
    // Kraken's call-rate counter slows a second job on the same account: give jobs time.
    options.job_deadline = Duration::from_secs(60);
    let stack = Stack::start(options).await?;
    stack
        .wait_results(WAIT, "the start-up enforce round", |rs| rs.len() >= 5)
        .await?;

    // Status: every account, both workers alive, last results.
    let status: StatusReply = call(&stack, VERB_STATUS, &StatusRequest::default()).await?;
    assert_eq!(status.totals.accounts, 5);
    assert_eq!(status.totals.workers_alive, 2);
    assert_eq!(status.accounts.len(), 5);
    assert!(status.accounts.iter().all(|a| !a.last.is_empty()));
    // Paged: two per page.
    let page: StatusReply = call(
        &stack,
        VERB_STATUS,
        &StatusRequest {
            offset: 2,
            limit: Some(2),
            account: None,
        },
    )
    .await?;
    assert_eq!(page.accounts.len(), 2);
    assert_eq!(page.next_offset, Some(4));

    // An operator enforce waits for its own result.
    let user = AccountId::new("user-0001")?;
    let reply: EnforceReply = call(
        &stack,
        VERB_ENFORCE,
        &EnforceRequest {
            account: user.clone(),
            dry_run: false,
            force: false,
            operator: "alice".into(),
        },
    )
    .await?;
    assert_eq!(reply.result.job_id, reply.job_id);
    assert_eq!(
        reply.result.triggered_by,
        TriggeredBy::Operator("alice".into())
    );
    assert_eq!(reply.result.status, ResultStatus::Compliant);
    let unknown = stack
        .control::<_, EnforceReply>(
            VERB_ENFORCE,
            &EnforceRequest {
                account: AccountId::new("nobody")?,
                dry_run: false,
                force: false,
                operator: "alice".into(),
            },
            WAIT,
        )
        .await?;
    assert_eq!(
        unknown.map_err(|e| e.code).err(),
        Some(ErrorCode::UnknownAccount)
    );

    // Normalization over every account, cap 3: an exact report from the results.
    let started: NormalizeStarted = call(
        &stack,
        VERB_NORMALIZE,
        &NormalizeRequest {
            accounts: None,
            dry_run: false,
            max_positions: Some(3),
            operator: "bob".into(),
        },
    )
    .await?;
    assert_eq!(started.accounts, 5);
    let report = loop {
        let report: NormalizeReport = call(
            &stack,
            VERB_NORMALIZE_REPORT,
            &NormalizeReportRequest {
                run_id: started.run_id.clone(),
                offset: 0,
                limit: Some(2),
            },
        )
        .await?;
        if report.is_done() {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.finished, 5, "stalled: {:?}", report.stalled);
    assert_eq!(report.results.len(), 2);
    assert_eq!(report.next_offset, Some(2));
    // Every page, then the summary must be exactly the sums over the results' re-reads.
    let mut results = report.results.clone();
    let mut next = report.next_offset;
    while let Some(offset) = next {
        let page: NormalizeReport = call(
            &stack,
            VERB_NORMALIZE_REPORT,
            &NormalizeReportRequest {
                run_id: started.run_id.clone(),
                offset,
                limit: Some(2),
            },
        )
        .await?;
        results.extend(page.results);
        next = page.next_offset;
    }
    assert_eq!(results.len(), 5);
    let sum =
        |f: &dyn Fn(&nija_proto::messages::JobResult) -> u64| results.iter().map(f).sum::<u64>();
    let s = &report.summary;
    assert_eq!(
        s.positions_before,
        sum(&|r| u64::from(r.count_before.unwrap_or(0)))
    );
    assert_eq!(
        s.positions_after,
        sum(&|r| u64::from(r.count_after.unwrap_or(0)))
    );
    assert_eq!(s.sold, sum(&|r| r.sold.len() as u64));
    assert_eq!(
        s.unknown_after as u64,
        sum(&|r| u64::from(r.count_after.is_none()))
    );
    for r in &results {
        assert_eq!(r.triggered_by, TriggeredBy::Operator("bob".into()));
        assert_eq!(r.max_allowed, 3, "{}", r.account);
        match r.status {
            ResultStatus::Enforced => assert_eq!(r.count_after, Some(3), "{}", r.account),
            // Selling down to 3 may exceed the liquidation guard (start-up sells count in its window).
            ResultStatus::RefusedByGuard => assert!(r.sold.is_empty(), "{}", r.account),
            other => panic!("{}: unexpected {other:?} {:?}", r.account, r.errors),
        }
    }
    let startup_sells: u64 = expected.sells.values().map(|s| s.len() as u64).sum();
    assert_eq!(stack.order_log().len() as u64, startup_sells + s.sold);

    // Pause everything: an operator enforce reports `paused` and places nothing.
    let paused: PauseReply = call(
        &stack,
        VERB_PAUSE,
        &PauseRequest {
            account: None,
            operator: "carol".into(),
        },
    )
    .await?;
    assert!(paused.paused);
    let status: StatusReply = call(&stack, VERB_STATUS, &StatusRequest::default()).await?;
    assert_eq!(status.paused.map(|p| p.by), Some("carol".to_string()));
    let _: PauseReply = call(
        &stack,
        VERB_RESUME,
        &PauseRequest {
            account: None,
            operator: "carol".into(),
        },
    )
    .await?;

    // Blacklist: list what the enforce blacklisted, add, remove, clear.
    let list: BlacklistReply = call(
        &stack,
        VERB_BLACKLIST,
        &BlacklistRequest {
            account: user.clone(),
            op: BlacklistOp::List,
            operator: "dave".into(),
        },
    )
    .await?;
    let listed: std::collections::BTreeSet<String> =
        list.entries.iter().map(|e| e.symbol.to_string()).collect();
    assert_eq!(&listed, &expected.dust["user-0001"]);
    let added: BlacklistReply = call(
        &stack,
        VERB_BLACKLIST,
        &BlacklistRequest {
            account: user.clone(),
            op: BlacklistOp::Add {
                symbol: Symbol::new("BRK.B-USD")?,
                usd_value: Usd::ZERO,
            },
            operator: "dave".into(),
        },
    )
    .await?;
    assert_eq!(added.entries.len(), listed.len() + 1);
    let removed: BlacklistReply = call(
        &stack,
        VERB_BLACKLIST,
        &BlacklistRequest {
            account: user.clone(),
            op: BlacklistOp::Remove {
                symbol: Symbol::new("BRK.B-USD")?,
            },
            operator: "dave".into(),
        },
    )
    .await?;
    assert_eq!(removed.changed, 1);
    let cleared: BlacklistReply = call(
        &stack,
        VERB_BLACKLIST,
        &BlacklistRequest {
            account: user.clone(),
            op: BlacklistOp::Clear,
            operator: "dave".into(),
        },
    )
    .await?;
    assert_eq!(cleared.changed as usize, listed.len());
    assert!(cleared.entries.is_empty());

    // Track a strategy-opened position.
    let tracked: TrackReply = call(
        &stack,
        VERB_TRACK,
        &TrackRequest {
            account: user.clone(),
            symbol: Symbol::new("DOGE-USD")?,
            entry_price: "0.15".parse::<Price>()?,
            entry_time: None,
            quantity: None,
            operator: "erin".into(),
        },
    )
    .await?;
    assert_eq!(tracked.position.source, PositionSource::NijaStrategy);
    assert_eq!(tracked.position.adoption_status, AdoptionStatus::Registered);
    stack.shutdown().await;
    Ok(())
}

//! Modes and refusals across real processes: observe mode places nothing, garbage on a job
//! subject goes to the dead-letter stream without stopping the workers, and an account whose
//! credentials are revoked is quarantined while the others proceed.

use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions};
use nija_proto::AccountId;
use nija_proto::control::{PauseReply, PauseRequest, VERB_RESUME};
use nija_proto::ids::JobKind;
use nija_proto::messages::{DeadLetter, ResultStatus, decode};
use nija_proto::names::{DLQ_STREAM, quarantined_account_key};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_plans_and_reports_but_places_no_order() -> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(6);
    let mut options = StackOptions::new(scenario);
    options.mode = "observe";
    let stack = Stack::start(options).await?;
    let results = stack
        .wait_results(WAIT, "an enforce result for all 6 accounts", |rs| {
            Stack::latest_by_account(rs, JobKind::Enforce).len() == 6
        })
        .await?;
    for (account, r) in Stack::latest_by_account(&results, JobKind::Enforce) {
        assert_eq!(
            r.status,
            ResultStatus::ObserveOnly,
            "{account}: {:?}",
            r.errors
        );
        assert!(r.sold.is_empty(), "{account}");
        let plan = r.plan.as_ref().expect("observe still plans");
        let planned: std::collections::BTreeSet<String> =
            plan.sells.iter().map(|s| s.symbol.to_string()).collect();
        assert_eq!(
            &planned,
            &expected.sells[account.as_str()],
            "{account}: the plan it would carry out"
        );
    }
    assert!(
        stack.order_log().is_empty(),
        "orders in observe mode: {:?}",
        stack.order_log()
    );
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_job_subject_is_dead_lettered_and_work_goes_on() -> anyhow::Result<()> {
    let (scenario, _) = over_cap_with_dust(3);
    let mut options = StackOptions::new(scenario);
    options.coordinator = false;
    let mut stack = Stack::start(options).await?;
    let js = async_nats::jetstream::new(stack.client.clone());
    // Not JSON, then JSON of an unknown major version, on partitions' job subjects.
    for (partition, payload) in [
        (0, b"this is not a job".to_vec()),
        (1, br#"{"schema":"9.0","job_id":"x"}"#.to_vec()),
    ] {
        js.publish(
            format!("nija.jobs.{partition}.enforce.user-0001"),
            payload.into(),
        )
        .await?
        .await?;
    }
    let dlq = js.get_stream(DLQ_STREAM).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut info = dlq.clone();
        if info.info().await?.state.messages >= 2 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no dead letters\n{}",
            stack.logs_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Two partitions, possibly two workers: the letters may arrive in either order.
    let mut letters = Vec::new();
    for seq in [1, 2] {
        letters.push(decode::<DeadLetter>(
            &dlq.get_raw_message(seq).await?.payload,
        )?);
    }
    let garbage = letters
        .iter()
        .find(|l| l.raw == "this is not a job")
        .ok_or_else(|| anyhow::anyhow!("no dead letter for the garbage: {letters:?}"))?;
    assert!(!garbage.error.is_empty());
    let future = letters
        .iter()
        .find(|l| l.raw.contains(r#""schema":"9.0""#))
        .ok_or_else(|| anyhow::anyhow!("no dead letter for schema 9.0: {letters:?}"))?;
    assert!(future.error.contains("9.0"), "{}", future.error);

    // The workers are still running and still do real work.
    assert!(stack.workers.iter_mut().all(|w| w.is_running()));
    stack.start_coordinator()?;
    stack
        .wait_results(WAIT, "enforce results after the garbage", |rs| {
            Stack::latest_by_account(rs, JobKind::Enforce).len() == 3
        })
        .await?;
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_credentials_quarantine_the_account_and_others_proceed() -> anyhow::Result<()> {
    let (scenario, expected) = over_cap_with_dust(4);
    let mut options = StackOptions::new(scenario);
    // Every failing job counts; quarantine comes after three consecutive failures.
    options.enforce_every = Duration::from_secs(1);
    let stack =
        Stack::start_with(options, |sim| sim.admin().set_revoked("user-0002", true)).await?;
    let js = async_nats::jetstream::new(stack.client.clone());
    let control = js.get_key_value("nija-control").await?;
    let revoked = AccountId::new("user-0002")?;
    let key = quarantined_account_key(&revoked);
    let deadline = tokio::time::Instant::now() + WAIT;
    while control.get(&key).await?.is_none() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "user-0002 was not quarantined\n{}",
            stack.logs_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The others were enforced; nothing was ever sent for the revoked account.
    let results = stack
        .wait_results(WAIT, "the other accounts enforced", |rs| {
            rs.iter()
                .filter(|r| r.status == ResultStatus::Enforced)
                .map(|r| r.account.to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 3
        })
        .await?;
    assert!(
        results
            .iter()
            .filter(|r| r.account == revoked)
            .all(|r| matches!(r.status, ResultStatus::Failed | ResultStatus::Paused))
    );
    let log = stack.order_log();
    assert!(log.iter().all(|o| o.account != "user-0002"));
    for account in ["platform", "user-0001", "user-0003"] {
        let sold = log.iter().filter(|o| o.account == account).count();
        assert_eq!(sold, expected.sells[account].len(), "{account}");
    }
    // The operator lifts the quarantine.
    let reply: Result<PauseReply, _> = stack
        .control(
            VERB_RESUME,
            &PauseRequest {
                account: Some(revoked.clone()),
                operator: "e2e".into(),
            },
            Duration::from_secs(10),
        )
        .await?;
    assert!(!reply.map_err(|e| anyhow::anyhow!("{e}"))?.paused);
    assert!(control.get(&key).await?.is_none());
    stack.shutdown().await;
    Ok(())
}

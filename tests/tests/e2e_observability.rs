//! Observability end to end: a real Prometheus, loaded with the alert rules, scrapes a running
//! local stack (coordinator and two workers that have enforced over-cap accounts with dust, run
//! exit sweeps, retried transient broker errors and met revoked credentials), and `deploy/prometheus/e2e-check.sh --strict` runs every
//! dashboard query against it: each must parse and return data, every dashboard variable must
//! find values and every rule must evaluate without error.
//!
//! Needs `prometheus` (Debian's package; `PROMETHEUS_BIN` overrides) and python3; CI installs both
//! (scripts/setup).

use std::process::Command;
use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions};
use nija_proto::ids::JobKind;
use nija_sim::FaultSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_stack_and_every_dashboard_query_returns_data() -> anyhow::Result<()>
{
    let (scenario, _) = over_cap_with_dust(6);
    let mut options = StackOptions::new(scenario);
    options.exit_sweep_every = Some(Duration::from_secs(1));
    let stack = Stack::start_with(options, |sim| {
        // Transient broker errors (retried) for the retry series; revoked credentials of one
        // account for the error series (authentication errors are not retried).
        sim.admin().set_faults(FaultSpec {
            server_errors: Some(3),
            ..FaultSpec::default()
        });
        sim.admin().set_revoked("user-0002", true)
    })
    .await?;
    stack
        .wait_results(
            Duration::from_secs(120),
            "an enforce and an exit-sweep result for all 6 accounts",
            |rs| {
                Stack::latest_by_account(rs, JobKind::Enforce).len() == 6
                    && Stack::latest_by_account(rs, JobKind::ExitSweep).len() == 6
            },
        )
        .await?;

    let limit = Duration::from_secs(30);
    let coordinator = stack
        .coordinator
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no coordinator"))?
        .metrics_addr(limit)
        .await?;
    let mut args = vec!["--strict".to_string(), coordinator];
    for worker in &stack.workers {
        args.push(worker.metrics_addr(limit).await?);
    }
    let script = nija_e2e::workspace_root().join("deploy/prometheus/e2e-check.sh");
    let output =
        tokio::task::spawn_blocking(move || Command::new("bash").arg(script).args(&args).output())
            .await??;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{printed}");
    assert!(
        output.status.success(),
        "e2e-check.sh failed:\n{printed}\n{}",
        stack.logs_tail()
    );
    assert!(printed.contains("0 without data, 0 failures"), "{printed}");
    stack.shutdown().await;
    Ok(())
}

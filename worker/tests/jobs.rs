//! Job execution end to end within the worker library: a real nats-server, the simulator over real
//! HTTP, jobs in through JetStream and results out of it.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use nija_proto::ids::JobKind;
use nija_proto::messages::{DeadLetter, ResultStatus, decode};
use nija_proto::plan::{Mode, SellReason};
use nija_runtime::lease::LeaseValue;
use rust_decimal_macros::dec;
use serde_json::json;
use support::Harness;

/// Eight crypto positions worth 640, 340, 150, 80, 60, 35, 28 and 18 USD: three over a user's cap
/// of five, so ATOM, DOT and AVAX (the smallest) are the sells.
fn eight_positions() -> serde_json::Value {
    json!([
        {"asset": "BTC", "quantity": "0.01"},
        {"asset": "ETH", "quantity": "0.1"},
        {"asset": "SOL", "quantity": "1"},
        {"asset": "LTC", "quantity": "1"},
        {"asset": "LINK", "quantity": "4"},
        {"asset": "AVAX", "quantity": "1"},
        {"asset": "DOT", "quantity": "4"},
        {"asset": "ATOM", "quantity": "2"}
    ])
}

fn five_positions() -> serde_json::Value {
    json!([
        {"asset": "BTC", "quantity": "0.01"},
        {"asset": "ETH", "quantity": "0.1"},
        {"asset": "SOL", "quantity": "1"},
        {"asset": "LTC", "quantity": "1"},
        {"asset": "LINK", "quantity": "4"}
    ])
}

fn account(id: &str, holdings: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "type": "user", "broker": "coinbase", "cash": "100", "holdings": holdings})
}

fn symbols(orders: &[nija_sim::Order]) -> BTreeSet<String> {
    orders.iter().map(|o| o.symbol.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_cap_account_is_enforced_with_exact_sells_and_a_rerun_sells_nothing_twice() {
    let mut h = Harness::start(json!({"accounts": [account("over", eight_positions())]})).await;
    let worker = h.spawn_worker("w1");

    let job = h.job(JobKind::Enforce, "over");
    let result = h.run(&job).await;
    assert_eq!(result.status, ResultStatus::Enforced, "{result:#?}");
    assert_eq!(result.count_before, Some(8));
    assert_eq!(result.count_after, Some(5));
    assert_eq!(result.excess, 3);
    let sold: BTreeSet<String> = result.sold.iter().map(|s| s.symbol.to_string()).collect();
    let expected: BTreeSet<String> = ["ATOM-USD", "DOT-USD", "AVAX-USD"].map(String::from).into();
    assert_eq!(sold, expected);
    let orders = h.orders("over");
    assert_eq!(symbols(&orders), expected);
    assert_eq!(orders.len(), 3);
    let atom = orders.iter().find(|o| o.symbol == "ATOM-USD").unwrap();
    assert_eq!(atom.quantity, dec!(2));
    assert!(result.sold.iter().all(|s| !s.already_placed));

    // The same job again after the positions came back (a crash before the ack, a stale read):
    // the same client order ids are found at the broker, nothing is sent twice (R1).
    for (asset, quantity) in [("AVAX", dec!(1)), ("DOT", dec!(4)), ("ATOM", dec!(2))] {
        h.sim
            .admin()
            .set_holding("over", asset, quantity, None)
            .unwrap();
    }
    h.republish(&job).await;
    let again = h.result_of(&job).await;
    assert_eq!(again.sold.len(), 3, "{again:#?}");
    assert!(again.sold.iter().all(|s| s.already_placed), "{again:#?}");
    assert_eq!(h.orders("over").len(), 3, "no second order");

    // The worker's long-running tasks are supervised, alive, and have not died.
    let health = worker.supervisor.health();
    let names: BTreeSet<&str> = health.iter().map(|t| t.name.as_str()).collect();
    let expected = ["account-leases", "heartbeat", "membership", "partitions"];
    assert_eq!(names, expected.into());
    assert!(
        health.iter().all(|t| t.alive && t.deaths == 0),
        "{health:#?}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fence_places_no_order() {
    let mut h = Harness::start(json!({"accounts": [account("fenced", five_positions())]})).await;
    let worker = h.spawn_worker("w1");
    let first = h.run(&h.job(JobKind::Enforce, "fenced")).await;
    assert_eq!(first.status, ResultStatus::Compliant, "{first:#?}");

    // Another worker takes the account's lease over; then the account goes over its cap.
    let intruder = LeaseValue {
        owner: nija_proto::WorkerId::new("intruder").unwrap(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
        key_fingerprint: None,
        last_nonce: None,
        released: false,
    };
    h.topology
        .leases
        .put(
            "account.fenced",
            serde_json::to_vec(&intruder).unwrap().into(),
        )
        .await
        .unwrap();
    for asset in ["AVAX", "DOT"] {
        h.sim
            .admin()
            .set_holding("fenced", asset, dec!(4), None)
            .unwrap();
    }
    let second = h.run(&h.job(JobKind::Enforce, "fenced")).await;
    assert!(
        matches!(second.status, ResultStatus::Partial | ResultStatus::Failed),
        "{second:#?}"
    );
    assert!(
        second.errors.iter().any(|e| e.class == "lease"),
        "{second:#?}"
    );
    assert!(h.orders("fenced").is_empty(), "no order without the lease");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_observed_accounts_place_no_order() {
    let mut h = Harness::start(json!({"accounts": [
        account("paused", eight_positions()),
        account("watched", eight_positions()),
    ]}))
    .await;
    let watched = Harness::account("watched");
    h.config
        .accounts
        .iter_mut()
        .find(|a| a.id == watched)
        .unwrap()
        .mode = Some(Mode::Observe);
    h.control
        .pause_account(&Harness::account("paused"), "tester")
        .await
        .unwrap();
    let worker = h.spawn_worker("w1");

    let paused = h.run(&h.job(JobKind::Enforce, "paused")).await;
    assert_eq!(paused.status, ResultStatus::Paused, "{paused:#?}");
    assert!(paused.sold.is_empty());
    assert!(h.orders("paused").is_empty());

    let observed = h.run(&h.job(JobKind::Enforce, "watched")).await;
    assert_eq!(observed.status, ResultStatus::ObserveOnly, "{observed:#?}");
    assert_eq!(observed.mode, Mode::Observe);
    assert_eq!(observed.plan.as_ref().unwrap().sells.len(), 3);
    assert!(h.orders("watched").is_empty());

    // Resumed, the paused account is enforced.
    h.control
        .resume_account(&Harness::account("paused"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let resumed = h.run(&h.job(JobKind::Enforce, "paused")).await;
    assert_eq!(resumed.status, ResultStatus::Enforced, "{resumed:#?}");
    assert_eq!(h.orders("paused").len(), 3);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_snapshot_is_a_failed_job_and_repeated_auth_failures_quarantine() {
    let mut h = Harness::start(json!({"accounts": [account("broken", eight_positions())]})).await;
    h.sim.admin().set_revoked("broken", true).unwrap();
    let worker = h.spawn_worker("w1");
    for _ in 0..3 {
        let result = h.run(&h.job(JobKind::Enforce, "broken")).await;
        assert_eq!(result.status, ResultStatus::Failed, "{result:#?}");
        assert_eq!(result.count_before, None, "never an empty account");
        assert!(!result.errors.is_empty());
    }
    assert!(h.orders("broken").is_empty());
    let flag = h
        .topology
        .control
        .get("quarantined.broken")
        .await
        .unwrap()
        .expect("quarantined after repeated authentication failures");
    assert!(String::from_utf8_lossy(&flag).contains("authentication"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let quarantined = h.run(&h.job(JobKind::Enforce, "broken")).await;
    assert_eq!(quarantined.status, ResultStatus::Paused, "{quarantined:#?}");
    assert!(quarantined.errors.iter().any(|e| e.class == "quarantined"));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_job_is_dead_lettered_and_the_worker_keeps_going() {
    let mut h = Harness::start(json!({"accounts": [account("fine", five_positions())]})).await;
    let mut dlq = h.client.subscribe("nija.dlq.>").await.unwrap();
    let worker = h.spawn_worker("w1");
    let partition = h.config.partition_of(&Harness::account("fine"));
    let subject = format!("nija.jobs.{partition}.enforce.fine");
    h.js.publish(subject.clone(), "{not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    h.js.publish(subject.clone(), r#"{"schema":"9.0","job_id":"x"}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Both are dead-lettered (in either order: jobs run concurrently).
    let mut errors = Vec::new();
    for _ in 0..2 {
        let next = futures::StreamExt::next(&mut dlq);
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), next)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.subject.as_str(), "nija.dlq.enforce");
        let letter: DeadLetter = decode(&message.payload).unwrap();
        assert_eq!(letter.subject, subject);
        assert_eq!(letter.worker.as_ref().map(|w| w.as_str()), Some("w1"));
        errors.push(letter.error);
    }
    for expected in ["not valid JSON", "unsupported schema version"] {
        assert!(errors.iter().any(|e| e.contains(expected)), "{errors:?}");
    }
    let result = h.run(&h.job(JobKind::Enforce, "fine")).await;
    assert_eq!(result.status, ResultStatus::Compliant, "{result:#?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_sweep_uses_a_peak_persisted_by_an_earlier_session() {
    let mut h = Harness::start(json!({
        "prices": {"SOL-USD": "150"},
        "accounts": [account("exit", json!([{"asset": "SOL", "quantity": "10"}]))]
    }))
    .await;
    let first = h.spawn_worker("w1");
    let adopted = h.run(&h.job(JobKind::ExitSweep, "exit")).await;
    assert_eq!(adopted.status, ResultStatus::Compliant, "{adopted:#?}");
    h.sim.admin().set_price("SOL-USD", dec!(160), true).unwrap();
    let peaked = h.run(&h.job(JobKind::ExitSweep, "exit")).await;
    assert_eq!(peaked.status, ResultStatus::Compliant, "{peaked:#?}");
    assert!(h.orders("exit").is_empty());
    first.stop().await;

    let raw = h
        .topology
        .tracker
        .get("exit.SOL-USD")
        .await
        .unwrap()
        .unwrap();
    let tracked: nija_proto::state::TrackedPosition = decode(&raw).unwrap();
    assert_eq!(tracked.peak, nija_proto::Price(dec!(160)));

    // A new worker, a new session: 151 is 5.6 % under the persisted peak (trailing stop 5 %)
    // while the position is still up 0.7 % from entry.
    let second = h.spawn_worker("w2");
    h.sim.admin().set_price("SOL-USD", dec!(151), true).unwrap();
    let exited = h.run(&h.job(JobKind::ExitSweep, "exit")).await;
    assert_eq!(exited.status, ResultStatus::Enforced, "{exited:#?}");
    assert_eq!(exited.sold.len(), 1);
    assert_eq!(exited.sold[0].reason, SellReason::TrailingStop);
    let orders = h.orders("exit");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].quantity, dec!(10));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_with_one_api_key_are_not_both_driven() {
    let mut h = Harness::start(json!({"accounts": [
        account("first", five_positions()),
        account("second", five_positions()),
    ]}))
    .await;
    // Misconfiguration: the second account points at the first one's key.
    let index = |id: &str| h.config.accounts.iter().position(|a| a.id.as_str() == id);
    let (first, second) = (index("first").unwrap(), index("second").unwrap());
    h.config.accounts[second].credentials = h.config.accounts[first].credentials.clone();
    let worker = h.spawn_worker("w1");
    let first = h.run(&h.job(JobKind::Enforce, "first")).await;
    assert_eq!(first.status, ResultStatus::Compliant, "{first:#?}");
    let second = h.run(&h.job(JobKind::Enforce, "second")).await;
    assert_eq!(second.status, ResultStatus::Failed, "{second:#?}");
    assert!(
        second
            .errors
            .iter()
            .any(|e| e.class == "credentials" && e.message.contains("first")),
        "{second:#?}"
    );
    assert!(h.orders("second").is_empty());
    worker.stop().await;
}

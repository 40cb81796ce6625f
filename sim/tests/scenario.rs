//! Scenario files: JSON and TOML load, and bad scenarios are refused with a clear reason.

#![allow(clippy::unwrap_used)]

use nija_sim::{Scenario, Sim, SimOptions};

async fn start_err(json: &str) -> String {
    let scenario: Scenario = serde_json::from_str(json).unwrap();
    match Sim::start(SimOptions::from_scenario(scenario)).await {
        Ok(_) => panic!("scenario accepted: {json}"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn json_scenario_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(
        &path,
        r#"{"seed": 4, "prices": {"FOO-USD": "2.5"}, "price_failures": ["FOO-USD"],
            "accounts": [{"id": "p", "type": "platform", "broker": "kraken", "cash": "10",
                          "holdings": [{"asset": "FOO", "quantity": "4"}]}]}"#,
    )
    .unwrap();
    let mut options = SimOptions::from_scenario(Scenario::load(&path).unwrap());
    options.motion.frozen = true;
    let sim = Sim::start(options).await.unwrap();
    let balances = sim.admin().balances("p").unwrap();
    assert!(
        balances
            .balances
            .iter()
            .any(|b| b.asset == "FOO" && b.total.to_string() == "4")
    );
    assert_eq!(
        sim.admin().quote("FOO-USD").unwrap().last.to_string(),
        "2.5"
    );
    assert_eq!(
        sim.admin().faults()[0]
            .price_failures
            .as_ref()
            .unwrap()
            .len(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_scenarios_are_refused_clearly() {
    let unpriced = start_err(
        r#"{"accounts": [{"id": "a", "type": "user", "broker": "kraken", "holdings": [{"asset": "ZZZ", "quantity": "1"}]}]}"#,
    )
    .await;
    assert!(unpriced.contains("add it under [prices]"), "{unpriced}");
    let duplicate = start_err(
        r#"{"accounts": [{"id": "a", "type": "user", "broker": "kraken"}, {"id": "a", "type": "user", "broker": "alpaca"}]}"#,
    )
    .await;
    assert!(duplicate.contains("duplicate"), "{duplicate}");
    let bad_id =
        start_err(r#"{"accounts": [{"id": "a b", "type": "user", "broker": "kraken"}]}"#).await;
    assert!(bad_id.contains("a b"), "{bad_id}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "[[accounts]]\nid = \"a\"\ntype = \"user\"\nbroker = \"kraken\"\ncolour = 1\n",
    )
    .unwrap();
    let error = Scenario::load(&path).unwrap_err().to_string();
    assert!(error.contains("colour"), "{error}");
}

//! DESIGN R8: no secret reaches `Debug`, `Display`, errors or logs. Each broker's session runs
//! its ordinary calls, an order and an authentication failure against the simulator while every
//! tracing event (all levels, all crates) is captured; then the captured text, the credentials'
//! formatting and the errors are searched for the secret material.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use nija_brokers::{BrokerKind, Credentials, SellOrder, build_broker};
use nija_proto::Quantity;
use support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The secret strings of a payload, and pieces of them long enough to be telling.
fn secrets(kind: BrokerKind, payload: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        BrokerKind::Coinbase => {
            let pem = payload["privateKey"].as_str().unwrap();
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                out.push(line.to_string());
            }
        }
        BrokerKind::Kraken => out.push(payload["secret"].as_str().unwrap().to_string()),
        BrokerKind::Alpaca => out.push(payload["secret_key"].as_str().unwrap().to_string()),
    }
    out
}

async fn exercise(kind: BrokerKind) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = start_sim(kind, &[("BTC", "0.5")]).await;
    let payload = sim.account("acct").unwrap().credentials.to_json();
    let secrets = secrets(kind, &payload);
    assert!(!secrets.is_empty());
    let creds = Credentials::from_json(kind, &payload.to_string(), "sim").unwrap();
    let mut shown = vec![format!("{creds:?}"), format!("{creds}")];

    let broker = build_broker(settings(&sim, kind), creds.clone()).unwrap();
    broker.connect().await.unwrap();
    broker.holdings(&["USD".into()]).await.unwrap();
    broker
        .quotes(&[sym("BTC-USD"), sym("NOPE-USD")])
        .await
        .unwrap();
    let status = broker
        .market_sell(&SellOrder {
            symbol: sym("BTC-USD"),
            quantity: Quantity(dec("0.1")),
            client_order_id: cid(7),
        })
        .await
        .unwrap();
    shown.push(format!("{status:?}"));

    sim.admin().set_revoked("acct", true).unwrap();
    let e = broker.holdings(&["USD".into()]).await.unwrap_err();
    shown.push(format!("{e} {e:?}"));
    tracing::error!(error = %e, "logged like the worker would");

    // A payload with a wrong type next to the secret, and an unparsable key.
    let mut bad = payload.clone();
    let first_key = match kind {
        BrokerKind::Coinbase => "name",
        BrokerKind::Kraken => "key",
        BrokerKind::Alpaca => "key_id",
    };
    bad[first_key] = serde_json::json!(12345);
    let e = Credentials::from_json(kind, &bad.to_string(), "env NIJA_X").unwrap_err();
    shown.push(format!("{e} {e:?}"));
    let mut garbled = payload.clone();
    let secret_field = match kind {
        BrokerKind::Coinbase => "privateKey",
        BrokerKind::Kraken => "secret",
        BrokerKind::Alpaca => "secret_key",
    };
    let secret_text = garbled[secret_field].as_str().unwrap().to_string();
    garbled[secret_field] =
        serde_json::json!(format!("{}!!", &secret_text[..secret_text.len() / 2]));
    if let Err(e) = Credentials::from_json(kind, &garbled.to_string(), "file x.json") {
        shown.push(format!("{e} {e:?}"));
    }
    sim.shutdown().await;

    let logs = capture.text();
    assert!(logs.contains("placing market sell"), "logs were captured");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{kind}: a secret appeared in: {text}"
            );
            let half = &secret[..secret.len() / 2];
            assert!(
                !text.contains(half),
                "{kind}: part of a secret appeared in: {text}"
            );
        }
        assert!(
            !text.contains("Bearer "),
            "{kind}: a bearer token appeared in: {text}"
        );
    }
}

#[tokio::test]
async fn coinbase_secrets_stay_out_of_formatting_errors_and_logs() {
    exercise(BrokerKind::Coinbase).await;
}

#[tokio::test]
async fn kraken_secrets_stay_out_of_formatting_errors_and_logs() {
    exercise(BrokerKind::Kraken).await;
}

#[tokio::test]
async fn alpaca_secrets_stay_out_of_formatting_errors_and_logs() {
    exercise(BrokerKind::Alpaca).await;
}

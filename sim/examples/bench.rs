//! Throughput of the simulator: `cargo run --release -p nija-sim --example bench -- [SECONDS] [CONCURRENCY]`.
//!
//! Starts a simulator in-process (frozen prices, a generated fleet) and hammers it over loopback
//! HTTP with one workload at a time, printing requests per second for each. Client and server
//! share the machine, so the figures are a floor for the server alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nija_sim::{Broker, Credentials, Sim, SimHandle, SimOptions};

#[derive(Clone, Copy, Debug)]
enum Workload {
    KrakenTicker,
    KrakenBalance,
    AlpacaPositions,
    AlpacaQuote,
    CoinbaseAccounts,
    MarketSells,
}

fn first(sim: &SimHandle, broker: Broker) -> Credentials {
    sim.accounts()
        .into_iter()
        .find(|a| a.broker == broker)
        .map(|a| a.credentials)
        .expect("generated fleets have every broker")
}

/// Credentials looked up once, outside the measured loop.
struct Keys {
    coinbase: Credentials,
    /// The Coinbase key as a ring signing key (client-side signing should not be the bottleneck).
    coinbase_signer: ring::signature::EcdsaKeyPair,
    kraken: Vec<(String, Vec<u8>)>,
    alpaca: Credentials,
}

async fn one(
    client: &reqwest::Client,
    sim: &SimHandle,
    keys: &Keys,
    workload: Workload,
    n: u64,
    worker: u64,
) -> bool {
    let result = match workload {
        Workload::KrakenTicker => {
            client
                .get(format!(
                    "{}/0/public/Ticker?pair=XBTUSD",
                    sim.base_url(Broker::Kraken)
                ))
                .send()
                .await
        }
        Workload::KrakenBalance => {
            // One key per worker would be needed for strictly increasing nonces across workers;
            // each worker uses its own generated account.
            let (key, secret) = &keys.kraken[(worker as usize) % keys.kraken.len()];
            let nonce = (1_000_000_000 * (worker + 1) + n).to_string();
            let body = format!("nonce={nonce}");
            let sign = nija_sim::credentials::kraken_sign(
                secret,
                "/0/private/Balance",
                &nonce,
                body.as_bytes(),
            );
            client
                .post(format!(
                    "{}/0/private/Balance",
                    sim.base_url(Broker::Kraken)
                ))
                .header("API-Key", key)
                .header("API-Sign", sign)
                .body(body)
                .send()
                .await
        }
        Workload::AlpacaPositions | Workload::AlpacaQuote | Workload::MarketSells => {
            let Credentials::Alpaca { key_id, secret_key } = &keys.alpaca else {
                return false;
            };
            let base = sim.base_url(Broker::Alpaca);
            let request = match workload {
                Workload::AlpacaPositions => client.get(format!("{base}/v2/positions")),
                Workload::AlpacaQuote => client.get(format!("{base}/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD")),
                _ => client.post(format!("{base}/v2/orders")).json(&serde_json::json!({
                    "symbol": "BTC/USD", "qty": "0.000016", "side": "buy", "type": "market", "time_in_force": "gtc"
                })),
            };
            request
                .header("APCA-API-KEY-ID", key_id)
                .header("APCA-API-SECRET-KEY", secret_key)
                .send()
                .await
        }
        Workload::CoinbaseAccounts => {
            let Credentials::Coinbase { name, .. } = &keys.coinbase else {
                return false;
            };
            let base = sim.base_url(Broker::Coinbase);
            let host = base.trim_start_matches("http://");
            let now = chrono::Utc::now().timestamp();
            let header = serde_json::json!({"alg": "ES256", "kid": name, "nonce": n.to_string(), "typ": "JWT"});
            let claims = serde_json::json!({"sub": name, "iss": "cdp", "nbf": now, "exp": now + 120,
                                            "uri": format!("GET {host}/api/v3/brokerage/accounts")});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let Ok(signature) = keys
                .coinbase_signer
                .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            else {
                return false;
            };
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
            client
                .get(format!("{base}/api/v3/brokerage/accounts"))
                .bearer_auth(token)
                .send()
                .await
        }
    };
    match result {
        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let concurrency: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let mut options = SimOptions::generated(300, 6, 1);
    options.motion.frozen = true;
    let sim = Arc::new(Sim::start(options).await?);
    // Plenty of cash for the buy workload.
    if let Some(account) = sim
        .accounts()
        .into_iter()
        .find(|a| a.broker == Broker::Alpaca)
    {
        sim.admin()
            .set_holding(&account.id, "USD", "100000000".parse()?, None)?;
    }
    let coinbase = first(&sim, Broker::Coinbase);
    let Credentials::Coinbase { private_key, .. } = &coinbase else {
        anyhow::bail!("no Coinbase account");
    };
    let pkcs8 =
        p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&p256::SecretKey::from_sec1_pem(private_key)?)?;
    let coinbase_signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| anyhow::anyhow!("Coinbase key: {e}"))?;
    let keys = Arc::new(Keys {
        coinbase_signer,
        coinbase,
        alpaca: first(&sim, Broker::Alpaca),
        kraken: sim
            .accounts()
            .into_iter()
            .filter_map(|a| match a.credentials {
                Credentials::Kraken { key, secret } => {
                    Some((key, STANDARD.decode(secret).unwrap_or_default()))
                }
                _ => None,
            })
            .collect(),
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()?;
    println!("nija-sim bench: {seconds} s per workload, {concurrency} concurrent requests");
    for workload in [
        Workload::KrakenTicker,
        Workload::KrakenBalance,
        Workload::AlpacaPositions,
        Workload::AlpacaQuote,
        Workload::CoinbaseAccounts,
        Workload::MarketSells,
    ] {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let (client, sim, keys) = (client.clone(), Arc::clone(&sim), Arc::clone(&keys));
            let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    if one(&client, &sim, &keys, workload, n, worker).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let done = ok.load(Ordering::Relaxed);
        println!(
            "{:<18} {:>9.0} req/s  ({} ok, {} failed)",
            format!("{workload:?}"),
            done as f64 / elapsed,
            done,
            failed.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

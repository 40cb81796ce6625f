//! Test helpers: a simulator with a known scenario, and clients that sign requests the way each
//! broker's SDK does.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nija_sim::{Broker, Credentials, Scenario, Sim, SimHandle, SimOptions};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

/// A simulator with one account per broker and a few extras, prices frozen.
pub async fn start() -> SimHandle {
    let scenario: Scenario = toml::from_str(SCENARIO).unwrap();
    let mut options = SimOptions::from_scenario(scenario);
    options.motion.frozen = true;
    Sim::start(options).await.unwrap()
}

pub const SCENARIO: &str = r#"
seed = 9
price_failures = ["DOT-USD"]
[prices]
"BTC-USD" = "64000"
"ETH-USD" = "3000"
"SOL-USD" = "150"
"AAPL-USD" = "190"
[[products]]
symbol = "ETH-USD"
broker = "kraken"
min_qty = "0.01"
min_notional = "5"
step = "0.0001"

[[accounts]]
id = "cb"
type = "platform"
broker = "coinbase"
cash = "1000"
holdings = [
  { asset = "BTC", quantity = "0.5", avg_entry = "60000" },
  { asset = "ETH", quantity = "2", avg_entry = "2500" },
  { asset = "SOL", quantity = "10" },
  { asset = "DOT", quantity = "100" },
]

[[accounts]]
id = "kr"
type = "user"
broker = "kraken"
cash = "1000"
holdings = [
  { asset = "BTC", quantity = "0.5", avg_entry = "60000" },
  { asset = "ETH", quantity = "2" },
  { asset = "SOL", quantity = "10" },
]

[[accounts]]
id = "al"
type = "user"
broker = "alpaca"
cash = "1000"
holdings = [
  { asset = "BTC", quantity = "0.5", avg_entry = "60000" },
  { asset = "AAPL", quantity = "10", avg_entry = "180" },
]
"#;

pub fn creds(sim: &SimHandle, id: &str) -> Credentials {
    sim.account(id).unwrap().credentials
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn https(sim: &SimHandle) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_cert_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Coinbase CDP JWT as coinbase-advanced-py builds it.
pub fn coinbase_jwt(creds: &Credentials, uri: &str, nbf: i64, exp: i64) -> String {
    let Credentials::Coinbase { name, private_key } = creds else {
        panic!("not a Coinbase credential")
    };
    let secret = p256::SecretKey::from_sec1_pem(private_key).unwrap();
    let key = SigningKey::from(secret);
    let header = json!({"alg": "ES256", "kid": name, "nonce": "00ff", "typ": "JWT"});
    let claims = json!({"sub": name, "iss": "cdp", "nbf": nbf, "exp": exp, "uri": uri});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Coinbase client: signs `METHOD host/path` for each request.
pub struct Coinbase {
    pub client: reqwest::Client,
    pub base: String,
    pub creds: Credentials,
}

impl Coinbase {
    pub fn new(sim: &SimHandle, id: &str) -> Coinbase {
        Coinbase {
            client: http(),
            base: sim.base_url(Broker::Coinbase),
            creds: creds(sim, id),
        }
    }

    pub fn host(&self) -> String {
        self.base.split("://").nth(1).unwrap().to_string()
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
    ) -> reqwest::RequestBuilder {
        let path = path_and_query.split('?').next().unwrap();
        let jwt = coinbase_jwt(
            &self.creds,
            &format!("{method} {}{path}", self.host()),
            now(),
            now() + 120,
        );
        self.client
            .request(method, format!("{}{path_and_query}", self.base))
            .bearer_auth(jwt)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Kraken client with a strictly increasing nonce.
pub struct Kraken {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
    pub secret: Vec<u8>,
    pub nonce: u64,
}

impl Kraken {
    pub fn new(sim: &SimHandle, id: &str) -> Kraken {
        let Credentials::Kraken { key, secret } = creds(sim, id) else {
            panic!("not a Kraken credential")
        };
        Kraken {
            client: http(),
            base: sim.base_url(Broker::Kraken),
            key,
            secret: STANDARD.decode(secret).unwrap(),
            nonce: 1_700_000_000_000,
        }
    }

    pub async fn public(&self, method: &str, query: &str) -> Value {
        let url = format!("{}/0/public/{method}?{query}", self.base);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Signs and posts `params` with the next nonce; returns the JSON body.
    pub async fn private(&mut self, method: &str, params: &[(&str, &str)]) -> Value {
        self.nonce += 1;
        let nonce = self.nonce;
        self.private_with_nonce(method, params, nonce).await
    }

    pub async fn private_with_nonce(
        &mut self,
        method: &str,
        params: &[(&str, &str)],
        nonce: u64,
    ) -> Value {
        let nonce = nonce.to_string();
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("nonce", &nonce));
        let body = serde_urlencoded::to_string(&all).unwrap();
        let path = format!("/0/private/{method}");
        let sign = nija_sim::credentials::kraken_sign(&self.secret, &path, &nonce, body.as_bytes());
        self.client
            .post(format!("{}{path}", self.base))
            .header("API-Key", &self.key)
            .header("API-Sign", sign)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Alpaca client with the two key headers.
pub struct Alpaca {
    pub client: reqwest::Client,
    pub base: String,
    pub key_id: String,
    pub secret: String,
}

impl Alpaca {
    pub fn new(sim: &SimHandle, id: &str) -> Alpaca {
        let Credentials::Alpaca { key_id, secret_key } = creds(sim, id) else {
            panic!("not an Alpaca credential")
        };
        Alpaca {
            client: http(),
            base: sim.base_url(Broker::Alpaca),
            key_id,
            secret: secret_key,
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("APCA-API-KEY-ID", &self.key_id)
            .header("APCA-API-SECRET-KEY", &self.secret);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

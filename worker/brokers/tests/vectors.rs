//! Every authentication vector of `test_data/vectors.json` (copied from shared/brokers), reproduced
//! by the adapters' own signing and request-building code.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nija_brokers::alpaca::http as alpaca;
use nija_brokers::coinbase::http as coinbase;
use nija_brokers::common::http::{HttpClient, Timeouts};
use nija_brokers::common::rate_limit::{RateLimit, RateLimiter};
use nija_brokers::kraken::http as kraken;
use nija_brokers::{BrokerKind, Credentials};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use reqwest::{Method, Url};
use rust_decimal::Decimal;
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/vectors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn limiter() -> Arc<RateLimiter> {
    Arc::new(RateLimiter::new(RateLimit {
        ceiling: 1000.0,
        decay_per_sec: 1000.0,
    }))
}

fn http(kind: BrokerKind) -> HttpClient {
    HttpClient::new(kind, &Timeouts::default(), &[]).unwrap()
}

// ---------------------------------------------------------------- Kraken

#[test]
fn kraken_every_case_signs_and_encodes_exactly() {
    let v = vectors();
    let cases = v["kraken"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let name = s(&case["name"]);
        let secret = base64::engine::general_purpose::STANDARD
            .decode(s(&case["secret_b64"]))
            .unwrap();
        let postdata = s(&case["postdata"]);
        if let Some(params) = case["params_in_order"].as_array() {
            let pairs: Vec<(&str, &str)> = params.iter().map(|p| (s(&p[0]), s(&p[1]))).collect();
            assert_eq!(
                kraken::auth::form_encode(&pairs),
                postdata,
                "{name}: form encoding"
            );
        }
        let sign =
            kraken::auth::api_sign(&secret, s(&case["uri_path"]), s(&case["nonce"]), postdata);
        assert_eq!(sign, s(&case["api_sign"]), "{name}: API-Sign");
    }
}

#[test]
fn kraken_captured_sdk_requests_verify() {
    let v = vectors();
    let secret = base64::engine::general_purpose::STANDARD
        .decode(s(&v["kraken"]["cases"][1]["secret_b64"]))
        .unwrap();
    for (name, req) in v["kraken"]["captured_wire_requests"].as_object().unwrap() {
        let body = s(&req["body"]);
        let nonce = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("nonce="))
            .unwrap();
        let path = Url::parse(s(&req["url"])).unwrap().path().to_string();
        assert_eq!(
            kraken::auth::api_sign(&secret, &path, nonce, body),
            s(&req["headers"]["API-Sign"]),
            "{name}"
        );
    }
}

#[test]
fn kraken_add_order_request_on_the_wire_matches_the_vector() {
    let v = vectors();
    let case = v["kraken"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "addorder_market_sell_with_cl_ord_id")
        .unwrap();
    let creds = Credentials::from_json(
        BrokerKind::Kraken,
        &serde_json::json!({"key": "test-key", "secret": s(&case["secret_b64"])}).to_string(),
        "test",
    )
    .unwrap();
    let Credentials::Kraken(creds) = creds else {
        unreachable!()
    };
    let client = kraken::client::KrakenHttp::new(
        http(BrokerKind::Kraken),
        Url::parse(kraken::LIVE_URL).unwrap(),
        creds,
        Arc::new(kraken::client::KeyState::default()),
        limiter(),
    );
    let params = kraken::client::market_sell_params(
        "XXBTZUSD",
        "0.01250000",
        "6d1b345e-2821-40e2-ad83-4ecb18a06876",
    );
    let nonce: u64 = s(&case["nonce"]).parse().unwrap();
    let request = client.build_private("AddOrder", nonce, &params).unwrap();
    assert_eq!(
        request.url().as_str(),
        "https://api.kraken.com/0/private/AddOrder"
    );
    let body = std::str::from_utf8(request.body().unwrap().as_bytes().unwrap()).unwrap();
    assert_eq!(body, s(&case["postdata"]));
    assert_eq!(request.headers()["API-Sign"], s(&case["api_sign"]));
    assert_eq!(request.headers()["API-Key"], "test-key");
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
}

// ---------------------------------------------------------------- Coinbase

fn coinbase_credentials(v: &Value, pem_field: &str) -> Credentials {
    let key = &v["coinbase"]["test_key"];
    Credentials::from_json(
        BrokerKind::Coinbase,
        &serde_json::json!({"name": key["key_name"], "privateKey": key[pem_field]}).to_string(),
        "test",
    )
    .unwrap()
}

fn signer(v: &Value) -> coinbase::auth::JwtSigner {
    let Credentials::Coinbase(c) = coinbase_credentials(v, "private_key_pem_sec1") else {
        unreachable!()
    };
    coinbase::auth::JwtSigner::new(&c)
}

fn public_key(v: &Value) -> VerifyingKey {
    VerifyingKey::from_public_key_pem(s(&v["coinbase"]["test_key"]["public_key_pem_spki"])).unwrap()
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn verify_token(key: &VerifyingKey, token: &str) -> (Value, Value) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    key.verify(input.as_bytes(), &sig)
        .expect("signature verifies");
    let (header, claims) = input.split_once('.').unwrap();
    (decode_part(header), decode_part(claims))
}

#[test]
fn coinbase_rfc6979_tokens_are_reproduced_byte_for_byte() {
    let v = vectors();
    let signer = signer(&v);
    let cases = v["coinbase"]["deterministic_reconstruction"]["cases"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let url = Url::parse(&format!("https://api.coinbase.com{}", s(&case["path"]))).unwrap();
        let method = Method::from_bytes(s(&case["method"]).as_bytes()).unwrap();
        let uri = coinbase::auth::jwt_uri(&method, &url);
        let token = signer.token_at(
            &uri,
            case["frozen_time_unix"].as_i64().unwrap(),
            s(&case["frozen_nonce"]),
        );
        let input = token.rsplit_once('.').unwrap().0;
        assert_eq!(input, s(&case["signing_input"]));
        assert_eq!(token, s(&case["rfc6979_token"]));
    }
}

#[test]
fn coinbase_pkcs8_and_sec1_keys_sign_alike() {
    let v = vectors();
    let Credentials::Coinbase(pkcs8) = coinbase_credentials(&v, "private_key_pem_pkcs8") else {
        unreachable!()
    };
    let a = coinbase::auth::JwtSigner::new(&pkcs8).token_at("GET h/p", 1, "n");
    let b = signer(&v).token_at("GET h/p", 1, "n");
    assert_eq!(a, b);
}

#[test]
fn coinbase_sdk_tokens_verify_and_our_tokens_match_them_field_by_field() {
    let v = vectors();
    let key = public_key(&v);
    let Credentials::Coinbase(creds) = coinbase_credentials(&v, "private_key_pem_sec1") else {
        unreachable!()
    };
    let client = coinbase::client::CoinbaseHttp::new(
        http(BrokerKind::Coinbase),
        Url::parse(coinbase::LIVE_URL).unwrap(),
        coinbase::auth::JwtSigner::new(&creds),
        limiter(),
    );
    let tokens = v["coinbase"]["sdk_tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 9);
    for t in tokens {
        let path = s(&t["path"]);
        let (sdk_header, sdk_claims) = verify_token(&key, s(&t["token"]));
        assert_eq!(sdk_header, t["decoded_header"]);
        assert_eq!(sdk_claims, t["decoded_claims"]);

        let method = Method::from_bytes(s(&t["method"]).as_bytes()).unwrap();
        let relative = path.strip_prefix(coinbase::API_PREFIX).unwrap();
        let request = client.build(method.clone(), relative, &[], None).unwrap();
        assert_eq!(
            coinbase::auth::jwt_uri(&method, request.url()),
            s(&t["format_jwt_uri"])
        );
        let auth = request.headers()["authorization"].to_str().unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let (header, claims) = verify_token(&key, token);
        for field in ["alg", "kid", "typ"] {
            assert_eq!(header[field], sdk_header[field], "{path}: header.{field}");
        }
        assert_eq!(header["nonce"].as_str().unwrap().len(), 64);
        for field in ["sub", "iss", "uri"] {
            assert_eq!(claims[field], sdk_claims[field], "{path}: claims.{field}");
        }
        assert_eq!(
            claims["exp"].as_i64().unwrap(),
            claims["nbf"].as_i64().unwrap() + 120
        );
        assert_eq!(request.headers()["content-type"], "application/json");
    }
}

#[test]
fn coinbase_query_string_stays_out_of_the_uri_claim_and_lists_repeat_keys() {
    let v = vectors();
    let captured = &v["coinbase"]["captured_wire_requests"]["RESTClient.list_orders(order_status=['OPEN'], product_ids=['BTC-USD','ETH-USD'], limit=100)"];
    let client = coinbase::client::CoinbaseHttp::new(
        http(BrokerKind::Coinbase),
        Url::parse(coinbase::LIVE_URL).unwrap(),
        signer(&v),
        limiter(),
    );
    let request = client
        .build(
            Method::GET,
            "/orders/historical/batch",
            &[
                ("product_ids", "BTC-USD"),
                ("product_ids", "ETH-USD"),
                ("order_status", "OPEN"),
                ("limit", "100"),
            ],
            None,
        )
        .unwrap();
    assert_eq!(request.url().as_str(), s(&captured["url"]));
    let token = request.headers()["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let (_, claims) = verify_token(&public_key(&v), &token);
    assert_eq!(claims["uri"], captured["jwt_uri_claim"]);
}

#[test]
fn coinbase_market_sell_body_matches_the_sdk() {
    let v = vectors();
    let captured = &v["coinbase"]["captured_wire_requests"]["RESTClient.market_order_sell(client_order_id, 'BTC-USD', base_size='0.00125')"];
    let sdk: Value = serde_json::from_str(s(&captured["body_sent_by_sdk"])).unwrap();
    let ours = coinbase::client::market_sell_body("wrk-7f3a9c2e-sell-0001", "BTC-USD", "0.00125");
    assert_eq!(ours, sdk);
}

#[test]
fn coinbase_jwt_uri_keeps_a_non_default_port_and_prefix() {
    let url = Url::parse("https://127.0.0.1:18001/api/v3/brokerage/accounts?limit=1").unwrap();
    assert_eq!(
        coinbase::auth::jwt_uri(&Method::GET, &url),
        "GET 127.0.0.1:18001/api/v3/brokerage/accounts"
    );
    let url = Url::parse("https://api.coinbase.com:443/api/v3/brokerage/orders").unwrap();
    assert_eq!(
        coinbase::auth::jwt_uri(&Method::POST, &url),
        "POST api.coinbase.com/api/v3/brokerage/orders"
    );
}

// ---------------------------------------------------------------- Alpaca

fn alpaca_client(v: &Value, base: &str) -> alpaca::client::AlpacaHttp {
    let headers = &v["alpaca"]["auth"]["headers_built_by_alpaca_py"];
    let Credentials::Alpaca(creds) = Credentials::from_json(
        BrokerKind::Alpaca,
        &serde_json::json!({"key_id": headers["APCA-API-KEY-ID"], "secret_key": headers["APCA-API-SECRET-KEY"]}).to_string(),
        "test",
    )
    .unwrap() else {
        unreachable!()
    };
    alpaca::client::AlpacaHttp::new(
        http(BrokerKind::Alpaca),
        Url::parse(base).unwrap(),
        Url::parse(alpaca::DATA_URL).unwrap(),
        creds,
        limiter(),
    )
}

#[test]
fn alpaca_headers_and_hosts_match_the_sdk() {
    let v = vectors();
    let a = &v["alpaca"];
    let names: Vec<&str> = a["auth"]["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(names, [alpaca::KEY_ID_HEADER, alpaca::SECRET_KEY_HEADER]);
    let urls = &a["base_urls_from_sdk_enum"];
    assert_eq!(alpaca::LIVE_URL, s(&urls["TRADING_LIVE"]));
    assert_eq!(alpaca::PAPER_URL, s(&urls["TRADING_PAPER"]));
    assert_eq!(alpaca::DATA_URL, s(&urls["DATA"]));
    assert_eq!(
        alpaca::default_data_url(alpaca::PAPER_URL),
        s(&urls["DATA"])
    );
    assert_eq!(alpaca::default_data_url(alpaca::LIVE_URL), s(&urls["DATA"]));
    assert_eq!(
        alpaca::default_data_url("http://127.0.0.1:18003"),
        "http://127.0.0.1:18003"
    );

    let client = alpaca_client(&v, alpaca::PAPER_URL);
    let request = client
        .build(Method::GET, client.trading_url("/v2/account"), &[], None)
        .unwrap();
    for (name, value) in a["auth"]["headers_built_by_alpaca_py"].as_object().unwrap() {
        assert_eq!(request.headers()[name.as_str()], s(value));
    }
}

#[test]
fn alpaca_captured_requests_match() {
    let v = vectors();
    let captured = &v["alpaca"]["captured_wire_requests"];
    let client = alpaca_client(&v, alpaca::PAPER_URL);
    let lookup = &captured["get order by client_order_id"];
    let request = client
        .build(
            Method::GET,
            client.trading_url("/v2/orders:by_client_order_id"),
            &[("client_order_id", "wrk-7f3a9c2e-sell-0001")],
            None,
        )
        .unwrap();
    assert_eq!(request.url().as_str(), s(&lookup["url"]));

    for (key, symbol, crypto) in [
        ("submit market sell AAPL qty 1.5 day", "AAPL", false),
        ("submit market sell BTC/USD qty 0.0125 gtc", "BTC/USD", true),
    ] {
        let sdk: Value = serde_json::from_str(s(&captured[key]["body"])).unwrap();
        assert_eq!(
            client.trading_url("/v2/orders").as_str(),
            s(&captured[key]["url"])
        );
        let qty = sdk["qty"].to_string();
        let ours =
            alpaca::client::market_sell_body(symbol, &qty, crypto, s(&sdk["client_order_id"]));
        for field in ["symbol", "side", "type", "time_in_force", "client_order_id"] {
            assert_eq!(ours[field], sdk[field], "{key}: {field}");
        }
        // We send the quantity as a decimal string; the SDK sends a number.
        let ours_qty: Decimal = s(&ours["qty"]).parse().unwrap();
        let sdk_qty: Decimal = sdk["qty"].to_string().parse().unwrap();
        assert_eq!(ours_qty, sdk_qty);
    }
}

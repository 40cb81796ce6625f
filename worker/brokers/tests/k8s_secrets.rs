//! `Credentials::from_k8s_secret` against an emulated Kubernetes API server over real HTTPS (no
//! API server runs on the development machines; `k8s_api` serves the Secrets endpoint in the real
//! shapes). Secret names and the `credentials.json` key follow `deploy/k8s` and `docs/deploy.md` §4.

#![allow(clippy::unwrap_used)]

mod k8s_api;

use std::time::Duration;

use k8s_api::{ApiServer, FAILING_SECRET, SLOW_SECRET, ServiceAccountDir, TestCa};
use nija_brokers::{
    BrokerKind, Credentials, CredentialsError, K8sApiSettings, K8sSecretError, Timeouts,
};

const NS: &str = "nija";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.worker-token-1";
const KEY: &str = "credentials.json";

fn settings(server: &ApiServer, sa: &ServiceAccountDir) -> K8sApiSettings {
    K8sApiSettings {
        api_url: Some(server.url()),
        service_account_dir: sa.path_buf(),
        namespace: None,
        timeouts: Timeouts {
            request: Duration::from_secs(5),
            connect: Duration::from_secs(2),
        },
    }
}

async fn cluster() -> (ApiServer, ServiceAccountDir) {
    let server = ApiServer::start(TOKEN).await;
    let sa = ServiceAccountDir::new(TOKEN, &server.ca.pem, NS);
    (server, sa)
}

/// Each broker's payload, and the secret string in it that must never be printed.
fn payloads() -> Vec<(BrokerKind, serde_json::Value, String)> {
    let coinbase_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let kraken_secret =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
    vec![
        (
            BrokerKind::Coinbase,
            serde_json::json!({"name": "organizations/o-1/apiKeys/k-1", "privateKey": coinbase_key}),
            coinbase_key.lines().nth(1).unwrap().to_string(),
        ),
        (
            BrokerKind::Kraken,
            serde_json::json!({"key": "kraken-public-key", "secret": kraken_secret}),
            kraken_secret.to_string(),
        ),
        (
            BrokerKind::Alpaca,
            serde_json::json!({"key_id": "PKTEST1234", "secret_key": "alpaca-secret-value-0123456789"}),
            "alpaca-secret-value-0123456789".to_string(),
        ),
    ]
}

fn assert_no_secret(text: &str, secret: &str) {
    assert!(!text.contains(secret), "secret material printed: {text}");
}

#[tokio::test]
async fn each_brokers_payload_is_read_from_its_secret() {
    let (server, sa) = cluster().await;
    for (i, (kind, payload, secret)) in payloads().into_iter().enumerate() {
        let name = format!("nija-account-user-000{i}");
        let json = payload.to_string();
        server.put_secret(NS, &name, &[(KEY, json.as_bytes())], true);
        let got = Credentials::from_k8s_secret(kind, &name, Some(KEY), &settings(&server, &sa))
            .await
            .unwrap();
        let expected = Credentials::from_json(kind, &json, "reference").unwrap();
        assert_eq!(got.kind(), kind);
        assert_eq!(got.fingerprint(), expected.fingerprint());
        match (&got, &expected) {
            (Credentials::Coinbase(a), Credentials::Coinbase(b)) => {
                assert_eq!(
                    a.signing_key.expose().to_bytes(),
                    b.signing_key.expose().to_bytes()
                );
            }
            (Credentials::Kraken(a), Credentials::Kraken(b)) => {
                assert_eq!(a.secret.expose(), b.secret.expose());
            }
            (Credentials::Alpaca(a), Credentials::Alpaca(b)) => {
                assert_eq!(a.secret_key.expose(), b.secret_key.expose());
            }
            _ => panic!("{kind} credentials came back as {}", got.kind()),
        }
        assert_no_secret(&format!("{got:?} {got}"), &secret);
    }
    // The namespace came from the service-account directory.
    assert_eq!(
        server.requests(),
        (0..3)
            .map(|i| format!("/api/v1/namespaces/{NS}/secrets/nija-account-user-000{i}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_explicit_namespace_overrides_the_pods() {
    let (server, sa) = cluster().await;
    let json = r#"{"key_id":"PK1","secret_key":"s"}"#;
    server.put_secret("trading", "nija-account-a", &[(KEY, json.as_bytes())], true);
    let mut s = settings(&server, &sa);
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-a", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(matches!(err, K8sSecretError::NotFound { .. }), "{err}");
    s.namespace = Some("trading".into());
    let got = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-a", Some(KEY), &s)
        .await
        .unwrap();
    assert_eq!(got.public_id(), "PK1");
}

#[tokio::test]
async fn without_a_key_the_only_entry_is_used() {
    let (server, sa) = cluster().await;
    let json = r#"{"key_id":"PK1","secret_key":"s"}"#;
    server.put_secret(
        NS,
        "nija-account-one",
        &[("alpaca.json", json.as_bytes())],
        true,
    );
    server.put_secret(
        NS,
        "nija-account-two",
        &[(KEY, json.as_bytes()), ("notes", b"rotated 2026-11")],
        true,
    );
    let s = settings(&server, &sa);
    let got = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-one", None, &s)
        .await
        .unwrap();
    assert_eq!(got.public_id(), "PK1");
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-two", None, &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::AmbiguousKey { count: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("credentials.json, notes"), "{err}");
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-one", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(matches!(err, K8sSecretError::MissingKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("has no key credentials.json (its keys: alpaca.json)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_secret_outside_the_role_is_forbidden() {
    let (server, sa) = cluster().await;
    let json = r#"{"key_id":"PK1","secret_key":"s"}"#;
    server.put_secret(
        NS,
        "nija-coordinator-nats",
        &[(KEY, json.as_bytes())],
        false,
    );
    let err = Credentials::from_k8s_secret(
        BrokerKind::Alpaca,
        "nija-coordinator-nats",
        Some(KEY),
        &settings(&server, &sa),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, K8sSecretError::Forbidden { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains(
            "the worker's Role does not allow get on secret nija-coordinator-nats in namespace nija"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_secret_is_not_found() {
    let (server, sa) = cluster().await;
    server.allow("nija-account-gone");
    let err = Credentials::from_k8s_secret(
        BrokerKind::Kraken,
        "nija-account-gone",
        Some(KEY),
        &settings(&server, &sa),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, K8sSecretError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no Secret nija-account-gone in namespace nija"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_values_name_the_key_and_quote_nothing() {
    let (server, sa) = cluster().await;
    let s = settings(&server, &sa);
    server.put_raw_secret(NS, "nija-account-b64", &[(KEY, "not*base64!")]);
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-b64", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, K8sSecretError::BadValue { key, .. } if key == KEY),
        "{err}"
    );
    assert_no_secret(&err.to_string(), "not*base64!");

    // Valid base64, but the JSON is cut short: the error says which Secret and key.
    let secret = "alpaca-secret-value-0123456789";
    let cut = format!(r#"{{"key_id":"PK1","secret_key":"{secret}""#);
    server.put_secret(NS, "nija-account-json", &[(KEY, cut.as_bytes())], true);
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-json", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::Payload(CredentialsError::Shape { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("Kubernetes Secret nija/nija-account-json key credentials.json"),
        "{err}"
    );
    assert_no_secret(&err.to_string(), secret);

    // Right JSON, wrong broker's shape.
    let kraken = r#"{"key":"k","secret":"c2VjcmV0"}"#;
    server.put_secret(NS, "nija-account-kraken", &[(KEY, kraken.as_bytes())], true);
    let err =
        Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-kraken", Some(KEY), &s)
            .await
            .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::Payload(CredentialsError::Shape { .. })),
        "{err}"
    );
    assert_no_secret(&err.to_string(), "c2VjcmV0");

    // Not UTF-8.
    server.put_secret(NS, "nija-account-bin", &[(KEY, &[0xff, 0xfe, 0x00])], true);
    let err = Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-bin", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::BadValue { problem, .. } if problem == "not UTF-8 text"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_is_read_again_at_each_call() {
    let (server, sa) = cluster().await;
    let s = settings(&server, &sa);
    let json = r#"{"key_id":"PK1","secret_key":"s"}"#;
    server.put_secret(NS, "nija-account-a", &[(KEY, json.as_bytes())], true);
    let get = || Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-a", Some(KEY), &s);
    get().await.unwrap();

    // The API server moves to a new token before the kubelet has written it: refused.
    server.rotate_token("eyJhbGciOiJSUzI1NiJ9.worker-token-2");
    let err = get().await.unwrap_err();
    assert!(matches!(err, K8sSecretError::Unauthorized { .. }), "{err}");
    assert_no_secret(&err.to_string(), "worker-token");

    // The kubelet writes the new token: the next call picks it up.
    sa.write_token("eyJhbGciOiJSUzI1NiJ9.worker-token-2");
    assert_eq!(get().await.unwrap().public_id(), "PK1");
}

#[tokio::test]
async fn the_api_server_must_present_a_certificate_of_the_service_account_ca() {
    let server = ApiServer::start(TOKEN).await;
    let stranger = TestCa::new("another cluster");
    let sa = ServiceAccountDir::new(TOKEN, &stranger.pem, NS);
    let json = r#"{"key_id":"PK1","secret_key":"s"}"#;
    server.put_secret(NS, "nija-account-a", &[(KEY, json.as_bytes())], true);
    let err = Credentials::from_k8s_secret(
        BrokerKind::Alpaca,
        "nija-account-a",
        Some(KEY),
        &settings(&server, &sa),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, K8sSecretError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(!err.is_transient());
    // Nothing reached the handler: the token was never sent to an untrusted server.
    assert!(server.requests().is_empty());

    // An unreadable CA is a service-account problem, said before any request.
    std::fs::remove_file(sa.path().join("ca.crt")).unwrap();
    let err = Credentials::from_k8s_secret(
        BrokerKind::Alpaca,
        "nija-account-a",
        Some(KEY),
        &settings(&server, &sa),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            K8sSecretError::ServiceAccount {
                what: "CA certificate",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_calls_have_a_deadline() {
    let (server, sa) = cluster().await;
    server.allow(FAILING_SECRET);
    server.allow(SLOW_SECRET);
    let mut s = settings(&server, &sa);
    let err = Credentials::from_k8s_secret(BrokerKind::Kraken, FAILING_SECRET, Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("InternalError"), "{err}");

    s.timeouts.request = Duration::from_millis(300);
    let err = Credentials::from_k8s_secret(BrokerKind::Kraken, SLOW_SECRET, Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(matches!(err, K8sSecretError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn settings_problems_are_reported_before_any_request() {
    let (server, sa) = cluster().await;
    let mut s = settings(&server, &sa);
    s.api_url = Some(format!("http://{}", server.addr));
    let err = Credentials::from_k8s_secret(BrokerKind::Kraken, "nija-account-a", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(matches!(err, K8sSecretError::BadApiUrl { .. }), "{err}");

    let mut s = settings(&server, &sa);
    std::fs::write(sa.path().join("token"), "\n").unwrap();
    s.service_account_dir = sa.path_buf();
    let err = Credentials::from_k8s_secret(BrokerKind::Kraken, "nija-account-a", Some(KEY), &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, K8sSecretError::ServiceAccount { what: "token", .. }),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

/// The in-cluster defaults (`api_url: None`) read `KUBERNETES_SERVICE_HOST`/`_PORT`. Tests cannot
/// set variables in their own process safely, so this runs [`in_cluster_child`] in a child process
/// of this test binary with the variables set, and once with the host unset.
#[tokio::test]
async fn the_api_server_address_comes_from_the_service_environment() {
    let (server, sa) = cluster().await;
    let json = r#"{"key_id":"PK-IN-CLUSTER","secret_key":"s"}"#;
    server.put_secret(NS, "nija-account-a", &[(KEY, json.as_bytes())], true);
    let child = async |host: Option<&str>, expect: &str| {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "in_cluster_child", "--ignored", "--nocapture"])
            .env("KUBERNETES_SERVICE_PORT", server.addr.port().to_string())
            .env("NIJA_TEST_K8S_SA_DIR", sa.path())
            .env("NIJA_TEST_K8S_EXPECT", expect);
        match host {
            Some(host) => cmd.env("KUBERNETES_SERVICE_HOST", host),
            None => cmd.env_remove("KUBERNETES_SERVICE_HOST"),
        };
        let out = cmd.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let found = child(Some("127.0.0.1"), "found").await;
    let absent = child(None, "not-in-cluster").await;
    assert!(found.contains("child checked: found"), "{found}");
    assert!(absent.contains("child checked: not-in-cluster"), "{absent}");
    assert_eq!(
        server.requests(),
        vec![format!("/api/v1/namespaces/{NS}/secrets/nija-account-a")]
    );
}

/// Run only by [`the_api_server_address_comes_from_the_service_environment`], which sets its
/// environment; on its own it has nothing to check and returns.
#[tokio::test]
#[ignore = "runs as a child of the_api_server_address_comes_from_the_service_environment"]
async fn in_cluster_child() {
    let (Ok(dir), Ok(expect)) = (
        std::env::var("NIJA_TEST_K8S_SA_DIR"),
        std::env::var("NIJA_TEST_K8S_EXPECT"),
    ) else {
        return;
    };
    let settings = K8sApiSettings {
        service_account_dir: dir.into(),
        ..K8sApiSettings::default()
    };
    let got =
        Credentials::from_k8s_secret(BrokerKind::Alpaca, "nija-account-a", Some(KEY), &settings)
            .await;
    match expect.as_str() {
        "found" => assert_eq!(got.unwrap().public_id(), "PK-IN-CLUSTER"),
        _ => assert_eq!(
            got.unwrap_err(),
            K8sSecretError::NotInCluster {
                var: "KUBERNETES_SERVICE_HOST"
            }
        ),
    }
    println!("child checked: {expect}");
}

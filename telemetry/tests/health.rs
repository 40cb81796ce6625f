//! Supervision and the health endpoints, over real HTTP.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use nija_telemetry::{Readiness, Supervisor, SupervisorConfig, ready_always, render, serve};
use prometheus::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path`, returning the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn config(max_silence: Duration) -> SupervisorConfig {
    SupervisorConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_silence,
    }
}

/// Polls `check` until it holds; the test fails by its own timeout if it never does.
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    while !check().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn healthz_fails_when_a_supervised_task_stops_ticking() {
    let registry = Registry::new();
    let supervisor = Supervisor::new(&registry, config(Duration::from_secs(1))).unwrap();
    let stuck = Arc::new(AtomicBool::new(false));
    let flag = stuck.clone();
    supervisor.supervise("scheduler", move |live| {
        let stuck = flag.clone();
        async move {
            while !live.is_cancelled() {
                if !stuck.load(Ordering::SeqCst) {
                    live.tick();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<(), String>(())
        }
    });
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        supervisor.clone(),
        ready_always(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"nija_task_deaths_total{cause="panic",task="scheduler"} 0"#),
        "{body}"
    );

    let (status, body) = get(addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"scheduler""#), "{body}");

    stuck.store(true, Ordering::SeqCst);
    eventually(async || get(addr, "/healthz").await.0 == 503).await;
    let (_, body) = get(addr, "/healthz").await;
    assert!(body.contains(r#""status":"unhealthy""#), "{body}");
    assert!(body.contains(r#""alive":false"#), "{body}");

    // Ticking again makes it healthy again.
    stuck.store(false, Ordering::SeqCst);
    eventually(async || get(addr, "/healthz").await.0 == 200).await;

    supervisor.shutdown();
    server.shutdown().await;
}

#[tokio::test]
async fn a_panicking_task_is_restarted_and_counted() {
    let registry = Registry::new();
    let supervisor = Supervisor::new(&registry, config(Duration::from_secs(30))).unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let task = supervisor.supervise("results", move |live| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            live.tick();
            match run {
                1 => panic!("boom in run 1"),
                2 => Err("the consumer was deleted".to_string()),
                3 => Ok(()),
                _ => {
                    live.cancelled().await;
                    Ok(())
                }
            }
        }
    });
    eventually(async || runs.load(Ordering::SeqCst) >= 4).await;

    let text = render(&registry);
    for (cause, count) in [("panic", 1), ("error", 1), ("exit", 1)] {
        let series = format!(r#"nija_task_deaths_total{{cause="{cause}",task="results"}} {count}"#);
        assert!(text.contains(&series), "{series} missing in\n{text}");
    }
    assert!(
        text.contains(r#"nija_task_restarts_total{task="results"} 3"#),
        "{text}"
    );
    let health = supervisor.health();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].deaths, 3);
    assert!(supervisor.healthy());

    // After shutdown the task ends and is not restarted.
    supervisor.shutdown();
    task.await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn metrics_and_readyz_over_http() {
    let registry = Registry::new();
    let supervisor = Supervisor::new(&registry, SupervisorConfig::default()).unwrap();
    nija_telemetry::WorkerMetrics::register(&registry).unwrap();
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let readiness: Readiness = Arc::new(move || {
        let ready = flag.load(Ordering::SeqCst);
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("stream NIJA_JOBS not found".to_string())
            }
        })
    });
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        supervisor,
        readiness,
    )
    .await
    .unwrap();
    let addr = server.local_addr();

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE nija_worker_jobs_in_flight gauge"),
        "{body}"
    );

    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("NIJA_JOBS not found"), "{body}");
    ready.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").await.0, 200);

    // No supervised task yet: the process itself is alive.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn binding_a_busy_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let registry = Registry::new();
    let supervisor = Supervisor::new(&registry, SupervisorConfig::default()).unwrap();
    let err = serve(addr, registry, supervisor, ready_always())
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("[http] listen"),
        "{text}"
    );
}

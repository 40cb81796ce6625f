//! Trace context in NATS headers, and an exporter that cannot reach its collector. That spans of
//! the real coordinator and workers reach an OTLP receiver as one trace is tested end to end in
//! `tests/tests/e2e_tracing.rs`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use nija_telemetry::{LogFormat, TracingConfig, current_trace_id, extract, set_parent_from};
use opentelemetry::trace::TraceContextExt;

fn side(service: &str, endpoint: &str) -> TracingConfig {
    TracingConfig {
        service_name: service.to_string(),
        format: LogFormat::Json,
        otlp_endpoint: Some(endpoint.to_string()),
        export_timeout: Duration::from_secs(5),
    }
}

#[test]
fn headers_without_trace_context_set_no_parent() {
    let headers = HeaderMap::new();
    assert!(!extract(&headers).span().span_context().is_valid());
    assert_eq!(current_trace_id(), None);
    let span = tracing::Span::none();
    assert!(!set_parent_from(&span, Some(&headers)));
    assert!(!set_parent_from(&span, None));

    let mut garbage = HeaderMap::new();
    garbage.insert("traceparent", "not-a-trace-context");
    assert!(!extract(&garbage).span().span_context().is_valid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_block_shutdown() {
    // A port nothing listens on: export fails, the guard still drops within its timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = side("nija-worker", &endpoint);
    config.export_timeout = Duration::from_millis(500);
    let (subscriber, guard) = config.subscriber().unwrap();
    assert!(guard.is_exporting());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("lonely").in_scope(|| {});
    });
    guard.flush();
    drop(guard);
}

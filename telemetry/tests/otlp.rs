//! Spans reach a real OTLP/gRPC receiver, and trace context carried in NATS headers joins the
//! "coordinator" and "worker" sides into one trace.
//!
//! The receiver is an in-process tonic server implementing the OTLP trace service on a free port;
//! each side has its own subscriber and exporter (`service.name` differs), as two processes would.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use nija_telemetry::{
    LogFormat, TracingConfig, current_trace_id, extract, inject, set_parent_from,
};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A received span: service name, span name, trace id, span id, parent span id.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .map(|v| match v {
                Value::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                });
            }
        }
    }
    spans
}

fn side(service: &str, endpoint: &str) -> TracingConfig {
    TracingConfig {
        service_name: service.to_string(),
        format: LogFormat::Json,
        otlp_endpoint: Some(endpoint.to_string()),
        export_timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_span_continues_the_coordinator_trace_through_nats_headers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    // Coordinator side: a scheduling span writes its context into the job's headers.
    let (coordinator, coordinator_guard) =
        side("nija-coordinator", &endpoint).subscriber().unwrap();
    let mut headers = HeaderMap::new();
    tracing::subscriber::with_default(coordinator, || {
        let span = tracing::info_span!("schedule_job", account = "platform", kind = "enforce");
        let _entered = span.enter();
        inject(&mut headers);
    });
    let traceparent = headers.get("traceparent").unwrap().as_str().to_string();
    assert!(traceparent.starts_with("00-"), "{traceparent}");
    let sent = extract(&headers);
    let sent = sent.span().span_context().clone();
    assert!(sent.is_valid());

    // Worker side: the execution span takes the headers' context as its parent.
    let (worker, worker_guard) = side("nija-worker", &endpoint).subscriber().unwrap();
    let mut worker_trace_id = None;
    tracing::subscriber::with_default(worker, || {
        let span = tracing::info_span!("execute_job", account = "platform");
        assert!(set_parent_from(&span, Some(&headers)));
        let _entered = span.enter();
        worker_trace_id = current_trace_id();
        tracing::info_span!("broker_call", broker = "kraken").in_scope(|| {});
    });
    coordinator_guard.flush();
    worker_guard.flush();

    let mut spans: Vec<Received> = Vec::new();
    while spans.len() < 3 {
        spans.extend(flatten(rx.recv().await.unwrap()));
    }
    let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap().clone();
    let schedule = find("schedule_job");
    let execute = find("execute_job");
    let broker = find("broker_call");

    assert_eq!(schedule.service, "nija-coordinator");
    assert_eq!(execute.service, "nija-worker");
    assert_eq!(schedule.trace_id, sent.trace_id().to_bytes().to_vec());
    assert_eq!(
        execute.trace_id, schedule.trace_id,
        "one trace across both sides"
    );
    assert_eq!(execute.parent_span_id, schedule.span_id);
    assert_eq!(broker.trace_id, schedule.trace_id);
    assert_eq!(broker.parent_span_id, execute.span_id);

    drop(coordinator_guard);
    drop(worker_guard);
    server.abort();
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

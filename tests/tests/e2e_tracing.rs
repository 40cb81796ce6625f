//! Traces across processes: the real coordinator and workers export over OTLP/gRPC (configured
//! only by `OTEL_EXPORTER_OTLP_ENDPOINT`) to a receiver in this test, and the W3C trace context
//! the coordinator writes into a job's NATS headers makes the worker's execution of that job part
//! of the coordinator's trace.

use std::collections::BTreeMap;
use std::time::Duration;

use nija_e2e::fleets::over_cap_with_dust;
use nija_e2e::{Stack, StackOptions};
use nija_proto::ids::JobKind;
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

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

fn spans_of(request: ExportTraceServiceRequest) -> Vec<Span> {
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
                spans.push(Span {
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

/// A worker span whose parent is a coordinator span of the same trace, if one was received.
fn joined(spans: &[Span]) -> Option<(Span, Span)> {
    spans
        .iter()
        .filter(|s| s.service == "nija-worker")
        .find_map(|w| {
            spans
                .iter()
                .find(|c| {
                    c.service == "nija-coordinator"
                        && c.trace_id == w.trace_id
                        && c.span_id == w.parent_span_id
                })
                .map(|c| (c.clone(), w.clone()))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_from_the_coordinator_to_the_worker() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let (scenario, _) = over_cap_with_dust(3);
    let mut options = StackOptions::new(scenario);
    options.env = BTreeMap::from([("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), endpoint.clone())]);
    let stack = Stack::start(options).await?;
    stack
        .wait_results(
            Duration::from_secs(120),
            "an enforce result for all 3 accounts",
            |rs| Stack::latest_by_account(rs, JobKind::Enforce).len() == 3,
        )
        .await?;

    // Batches are exported every few seconds; wait for a joined pair.
    let mut spans = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (coordinator, worker) = loop {
        if let Some(pair) = joined(&spans) {
            break pair;
        }
        let Ok(Some(request)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            let services: std::collections::BTreeSet<_> = spans
                .iter()
                .map(|s| (s.service.clone(), s.name.clone()))
                .collect();
            anyhow::bail!(
                "no worker span joined to a coordinator span; received {services:?}\n{}",
                stack.logs_tail()
            );
        };
        spans.extend(spans_of(request));
    };
    assert_eq!(coordinator.trace_id, worker.trace_id);
    // The worker's work (broker calls, orders) hangs below its execution span, in the same trace.
    let below_worker = spans
        .iter()
        .filter(|s| s.trace_id == worker.trace_id && s.parent_span_id == worker.span_id)
        .count();
    assert!(
        below_worker > 0,
        "the worker's {} span has no children: {spans:?}",
        worker.name
    );
    stack.shutdown().await;
    server.abort();
    Ok(())
}

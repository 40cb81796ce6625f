//! W3C trace context (`traceparent`, `tracestate`) carried in NATS message headers.
//!
//! The coordinator calls [`inject`] inside its scheduling span before publishing a job; the worker
//! calls [`set_parent_from`] (or [`extract`] and `set_parent`) on its execution span, so one trace
//! spans both processes. The W3C propagator is used directly, so this works whether or not the
//! global propagator was installed.

use async_nats::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current span's trace context into `headers`. Writes nothing when the current span
/// has no OpenTelemetry context (no subscriber installed, or outside any span).
pub fn inject(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Reads a trace context from `headers`; an empty context when they carry none or a malformed one.
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The trace id of the current span as 32 hex digits, for logs and results that should point at
/// the trace; `None` outside any traced span.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// Makes `span` a child of the trace context in `headers`, if they carry one. Call it right after
/// creating the span, before entering it. Returns whether a parent was set.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    let Some(headers) = headers else {
        return false;
    };
    let cx = extract(headers);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    match span.set_parent(cx) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "trace parent not set");
            false
        }
    }
}

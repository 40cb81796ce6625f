//! The process-wide `tracing` subscriber: logs on stderr and, when a collector is configured,
//! OTLP span export.
//!
//! Logs go to stderr (stdout is reserved for machine output such as the CLI's `--json`), filtered by
//! `RUST_LOG` (default `info`), as human text or one JSON object per line. Spans always carry
//! OpenTelemetry trace ids, so trace context travels in NATS headers even without a collector;
//! they are exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. JSON lines
//! carry the `trace_id` and `span_id` of their span.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::TelemetryError;

/// Environment variable that selects the log format when no flag does.
pub const LOG_FORMAT_ENV: &str = "NIJA_LOG_FORMAT";
/// The standard OpenTelemetry variable; span export is off when it is unset or empty.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Default filter when `RUST_LOG` is unset: nija at info, chatty transport crates at warn.
const DEFAULT_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=warn,\
                              opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "human" | "pretty" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(TelemetryError::LogFormat(other.to_string())),
        }
    }
}

/// Everything the subscriber needs; [`TracingConfig::from_env`] fills it the standard way.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `service.name` of exported spans, e.g. `nija-coordinator`.
    pub service_name: String,
    pub format: LogFormat,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// Bound on one export call and on the final flush at shutdown.
    pub export_timeout: Duration,
}

impl TracingConfig {
    /// The format comes from `format` (a command-line flag) else `NIJA_LOG_FORMAT` else text; the
    /// collector from `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(
        service_name: &str,
        format: Option<LogFormat>,
    ) -> Result<TracingConfig, TelemetryError> {
        let format = match format {
            Some(format) => format,
            None => match std::env::var(LOG_FORMAT_ENV) {
                Ok(value) if !value.trim().is_empty() => value.parse()?,
                _ => LogFormat::default(),
            },
        };
        let otlp_endpoint = std::env::var(OTLP_ENDPOINT_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        Ok(TracingConfig {
            service_name: service_name.to_string(),
            format,
            otlp_endpoint,
            export_timeout: Duration::from_secs(5),
        })
    }

    /// Installs the global subscriber. Call once per process, inside the tokio runtime (the gRPC
    /// exporter needs it); keep the guard alive until the end of `main`.
    pub fn init(self) -> Result<TracingGuard, TelemetryError> {
        let (subscriber, guard) = self.subscriber()?;
        subscriber
            .try_init()
            .map_err(|_| TelemetryError::AlreadyInitialized)?;
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if let Some(endpoint) = &self.otlp_endpoint {
            tracing::info!(service = %self.service_name, %endpoint, "exporting spans over OTLP");
        }
        Ok(guard)
    }

    /// The subscriber without installing it, for a scope of its own
    /// (`tracing::subscriber::with_default`); [`TracingConfig::init`] is the usual way.
    pub fn subscriber(
        &self,
    ) -> Result<
        (
            impl tracing::Subscriber + Send + Sync + 'static,
            TracingGuard,
        ),
        TelemetryError,
    > {
        self.subscriber_writing_to(std::io::stderr)
    }

    fn subscriber_writing_to<W>(
        &self,
        writer: W,
    ) -> Result<
        (
            impl tracing::Subscriber + Send + Sync + 'static,
            TracingGuard,
        ),
        TelemetryError,
    >
    where
        W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
    {
        let provider = self.tracer_provider()?;
        let tracer = provider.tracer(self.service_name.clone());
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let dispatch = DispatchSlot::default();
        let json = (self.format == LogFormat::Json).then(|| {
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(WithTraceIds {
                    inner: tracing_subscriber::fmt::format()
                        .json()
                        .with_current_span(true)
                        .with_span_list(false),
                    dispatch: dispatch.clone(),
                })
                .with_writer(writer.clone())
        });
        // Colours only for a person at a terminal: a log file or collector gets plain text.
        let text = (self.format == LogFormat::Text).then(|| {
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(writer)
        });
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(json)
            .with(text)
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(RememberDispatch(dispatch));
        let guard = TracingGuard {
            provider,
            exporting: self.otlp_endpoint.is_some(),
            timeout: self.export_timeout,
        };
        Ok((subscriber, guard))
    }

    fn tracer_provider(&self) -> Result<SdkTracerProvider, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(builder.build());
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(self.export_timeout)
            .build()
            .map_err(|e| TelemetryError::Otlp {
                endpoint: endpoint.clone(),
                message: e.to_string(),
            })?;
        Ok(builder.with_batch_exporter(exporter).build())
    }
}

/// The dispatcher the subscriber was installed in, once it is: formatting an event cannot ask for
/// the current dispatcher (tracing hides it while an event is being dispatched).
#[derive(Clone, Default)]
struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// Fills the [`DispatchSlot`] when the subscriber is installed.
struct RememberDispatch(DispatchSlot);

impl<S: tracing::Subscriber> Layer<S> for RememberDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.0.set(subscriber.downgrade());
    }
}

/// JSON log lines start with the `trace_id` and `span_id` of the event's span (when it has one),
/// so a line found in the logs leads to its trace and back.
struct WithTraceIds<F> {
    inner: F,
    dispatch: DispatchSlot,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt as _;
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx.lookup_current().and_then(|span| {
            let dispatch = self.dispatch.0.get()?.upgrade()?;
            let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let otel_span = cx.span();
            let context = otel_span.span_context();
            context
                .is_valid()
                .then(|| (context.trace_id(), context.span_id()))
        });
        match (ids, line.strip_prefix('{')) {
            (Some((trace_id, span_id)), Some(rest)) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// Installs the subscriber for `service_name` from the environment (see [`TracingConfig::from_env`]).
pub fn init_tracing(
    service_name: &str,
    format: Option<LogFormat>,
) -> Result<TracingGuard, TelemetryError> {
    TracingConfig::from_env(service_name, format)?.init()
}

/// Keeps span export running; exports what is buffered and stops the exporter when dropped.
///
/// Drop it on a multi-threaded tokio runtime (the default for `#[tokio::main]`): the final export
/// blocks the dropping thread while another thread drives the gRPC connection.
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard {
    provider: SdkTracerProvider,
    exporting: bool,
    timeout: Duration,
}

impl TracingGuard {
    /// Whether spans are exported (a collector is configured).
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// Exports every finished span now. An unreachable collector is logged, never fatal.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "span export flush failed (is the OTLP collector up?)");
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(self.timeout) {
            // The subscriber may be gone by now: stderr is the one place left to say it.
            if self.exporting {
                eprintln!("span export shutdown: {e}");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_the_documented_words() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" JSON ".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("human".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert!(err.contains("NIJA_LOG_FORMAT"), "{err}");
    }

    /// Collects log output in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    fn json_config() -> TracingConfig {
        TracingConfig {
            service_name: "nija-test".into(),
            format: LogFormat::Json,
            otlp_endpoint: None,
            export_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn json_lines_carry_the_trace_id_of_their_span() {
        let out = Captured::default();
        let (subscriber, _guard) = json_config().subscriber_writing_to(out.clone()).unwrap();
        let mut trace_id = None;
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("execute_job", account = "platform");
            let _entered = span.enter();
            trace_id = crate::current_trace_id();
            tracing::info!(symbol = "BTC-USD", "inside");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].get("trace_id").is_none(), "{text}");
        let trace_id = trace_id.unwrap();
        assert_eq!(lines[1]["trace_id"], trace_id.as_str());
        assert_eq!(lines[1]["span_id"].as_str().unwrap().len(), 16);
        assert_eq!(lines[1]["fields"]["symbol"], "BTC-USD");
        assert_eq!(lines[1]["span"]["account"], "platform");
    }

    #[test]
    fn a_flag_wins_over_the_environment() {
        let config = TracingConfig::from_env("nija-test", Some(LogFormat::Json)).unwrap();
        assert_eq!(config.format, LogFormat::Json);
        assert_eq!(config.service_name, "nija-test");
    }
}

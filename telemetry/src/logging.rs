//! The process-wide `tracing` subscriber: logs on stderr and, when a collector is configured,
//! OTLP span export.
//!
//! Logs go to stderr (stdout is reserved for machine output such as the CLI's `--json`), filtered by
//! `RUST_LOG` (default `info`), as human text or one JSON object per line. Spans always carry
//! OpenTelemetry trace ids, so trace context travels in NATS headers even without a collector;
//! they are exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::str::FromStr;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::TelemetryError;

/// Environment variable that selects the log format when no flag does.
pub const LOG_FORMAT_ENV: &str = "NIJA_LOG_FORMAT";
/// The standard OpenTelemetry variable; span export is off when it is unset or empty.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// A type-erased subscriber (format and export decided at run time).
pub type BoxedSubscriber = Box<dyn tracing::Subscriber + Send + Sync>;

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
    pub fn subscriber(&self) -> Result<(BoxedSubscriber, TracingGuard), TelemetryError> {
        let provider = self.tracer_provider()?;
        let tracer = provider.tracer(self.service_name.clone());
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let json = (self.format == LogFormat::Json).then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
        });
        let text = (self.format == LogFormat::Text)
            .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(json)
            .with(text)
            .with(tracing_opentelemetry::layer().with_tracer(tracer));
        let guard = TracingGuard {
            provider,
            exporting: self.otlp_endpoint.is_some(),
            timeout: self.export_timeout,
        };
        Ok((Box::new(subscriber), guard))
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

    #[test]
    fn a_flag_wins_over_the_environment() {
        let config = TracingConfig::from_env("nija-test", Some(LogFormat::Json)).unwrap();
        assert_eq!(config.format, LogFormat::Json);
        assert_eq!(config.service_name, "nija-test");
    }
}

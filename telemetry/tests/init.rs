//! The global subscriber is installed once per process; a second attempt is a clear error.

#![allow(clippy::unwrap_used)]

use nija_telemetry::{LogFormat, TelemetryError, TracingConfig, init_tracing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_installs_once_and_refuses_a_second_time() {
    let guard = init_tracing("nija-test", Some(LogFormat::Json)).unwrap();
    // Spans now carry trace ids, whether or not they are exported.
    let span = tracing::info_span!("scheduled");
    let _entered = span.enter();
    assert!(nija_telemetry::current_trace_id().is_some());

    let again = TracingConfig::from_env("nija-test", Some(LogFormat::Text))
        .unwrap()
        .init();
    assert!(matches!(again, Err(TelemetryError::AlreadyInitialized)));
    drop(guard);
}

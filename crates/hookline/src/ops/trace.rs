//! Traces over OTLP/HTTP (protobuf), when `HOOKLINE_OTLP_ENDPOINT` is set.
//!
//! The life of a message is one trace: `accept` (the API request, the root)
//! with its `store` (the transaction), then for every attempt a `claim`, the
//! `attempt` itself (the HTTP POST) and its `record` (the outcome's write).
//!
//! **One trace per message, derived from its id.** The trace id and the root
//! span's id are a hash of the message id, not stored: every node (the one
//! that accepted and whichever claims, days later, after restarts) computes
//! the same ids from the delivery's message id alone, so no column, no
//! schema change and no cross-node state is needed, and an operator who has
//! a `msg_…` id can find its trace. The price: the id is not random (W3C
//! asks for random ids; a collision needs a SHA-256 collision), and the
//! caller's own `traceparent` is not continued (the trace starts at Hookline).
//!
//! Spans are built after the fact with their measured start and end times,
//! so nothing is held open across `await`s. When the endpoint is unset no
//! provider exists: [`enabled`] is one load of a `OnceLock`, and callers skip
//! even reading the clock.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use opentelemetry::KeyValue as Attribute;

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// Starts exporting to `endpoint` (`http://collector:4318`, or the full
/// `…/v1/traces` URL). Call once, inside the runtime, before serving.
pub fn init(endpoint: &str) -> Result<(), String> {
    let url = traces_url(endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HOOKLINE_OTLP_ENDPOINT {}: {e}", shown(&url)))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("hookline").build())
        .build();
    let tracer = provider.tracer("hookline");
    TRACING.set(Tracing { provider, tracer }).map_err(|_| "tracing was started twice".to_string())?;
    tracing::info!(endpoint = %shown(&url), "exporting traces over OTLP");
    Ok(())
}

/// Exports what is buffered and stops (blocking: run it off the async threads).
pub fn shutdown() {
    if let Some(t) = TRACING.get() {
        if let Err(e) = t.provider.shutdown() {
            tracing::warn!(error = %e, "flushing traces at shutdown failed");
        }
    }
}

/// The collector's URL as the log shows it: a password in it is hidden.
fn shown(url: &str) -> String {
    crate::config::without_password(url).unwrap_or_else(|| "the configured OTLP endpoint".to_string())
}

/// `…/v1/traces` appended to a base URL, as OTLP/HTTP exporters do.
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

/// Whether spans are exported at all.
#[inline]
pub fn enabled() -> bool {
    TRACING.get().is_some()
}

/// The time now when tracing is on (callers skip the clock otherwise).
#[inline]
pub fn now() -> Option<SystemTime> {
    enabled().then(SystemTime::now)
}

/// The ids of one message's trace, derived from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTrace {
    pub trace_id: TraceId,
    /// The `accept` span, the root every other span hangs from.
    pub root: SpanId,
}

impl MessageTrace {
    pub fn of(msg_id: &str) -> MessageTrace {
        let digest = Sha256::new().chain_update(b"hookline trace v1\0").chain_update(msg_id.as_bytes()).finalize();
        let mut trace = [0u8; 16];
        let mut span = [0u8; 8];
        trace.copy_from_slice(&digest[..16]);
        span.copy_from_slice(&digest[16..24]);
        MessageTrace { trace_id: TraceId::from_bytes(trace), root: SpanId::from_bytes(span) }
    }
}

/// A span id chosen now, for a span whose children are emitted before it ends.
pub fn new_span_id() -> SpanId {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    SpanId::from_bytes(bytes)
}

/// One finished span of a message's trace.
pub struct SpanRecord {
    pub name: &'static str,
    pub kind: SpanKind,
    /// `None`: a fresh id.
    pub id: Option<SpanId>,
    /// `None`: the root of the trace (the `accept` span).
    pub parent: Option<SpanId>,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Exports `span` in `trace` (nothing when tracing is off).
pub fn emit(trace: &MessageTrace, span: SpanRecord) {
    let Some(t) = TRACING.get() else { return };
    let mut builder = SpanBuilder::from_name(Cow::Borrowed(span.name))
        .with_kind(span.kind)
        .with_start_time(span.start)
        .with_attributes(span.attributes);
    if let Some(why) = span.error {
        builder = builder.with_status(Status::error(why));
    }
    builder.span_id = Some(span.id.unwrap_or_else(new_span_id));
    let parent = match span.parent {
        None => {
            builder.trace_id = Some(trace.trace_id);
            Context::new()
        }
        Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
            trace.trace_id,
            parent,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )),
    };
    let mut built = t.tracer.build_with_context(builder, &parent);
    built.end_with_timestamp(span.end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_always_gives_the_same_trace() {
        let a = MessageTrace::of("msg_2mC3xYz");
        assert_eq!(a, MessageTrace::of("msg_2mC3xYz"));
        assert_ne!(a.trace_id, MessageTrace::of("msg_2mC3xYy").trace_id);
        assert_ne!(a.trace_id, TraceId::INVALID);
        assert_ne!(a.root, SpanId::INVALID);
    }

    #[test]
    fn the_endpoint_gets_the_traces_path() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }
}

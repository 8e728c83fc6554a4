//! One trace across a chain of actors: OpenTelemetry spans per handled
//! record, linked through the records' W3C `traceparent` headers.
//!
//! With tracing on ([`Tracing`], `[node.tracing]`), handling a record is a
//! span (`handle`, kind consumer) whose parent is the span named by the
//! record's `traceparent`; a record without one starts a trace. Every
//! record the handler publishes carries the handling span as its
//! `traceparent` (and the `tracestate` it came with), so the next actor's
//! span is its child and a chain of actors is one trace. A record
//! published outside handling (a source actor's) is a `publish` span of its
//! own (kind producer), the root of its trace.
//!
//! With tracing off (the default) no span is made and nothing is exported:
//! a record caused by another carries that one's trace context unchanged,
//! so a trace passing through an untraced node is not cut.

use std::fmt::Write as _;
use std::sync::Arc;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
#[cfg(feature = "otlp")]
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::delivery::consumed::Position;
#[cfg(feature = "otlp")]
use crate::error::{Error, Result};
use crate::wire::headers::Headers;

/// Where a node's spans go, and how many of the traces it starts it keeps
/// (`[node.tracing]` in a node's config file).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// The OpenTelemetry collector's OTLP/HTTP address, such as
    /// `http://localhost:4318`: spans are posted, as protobuf, to its
    /// `/v1/traces`, in batches from a thread of their own. Plain HTTP
    /// only: run the collector (or an agent of it) where the node reaches
    /// it without TLS.
    pub otlp: String,
    /// The share of the traces this node starts that are kept, from 0 to
    /// 1 (default 1: all). A record that comes with a trace context follows
    /// its sampling decision, so a trace is kept or dropped whole.
    #[serde(default = "all")]
    pub sampling: f64,
}

fn all() -> f64 {
    1.0
}

impl Tracing {
    /// Tracing to the collector at `otlp`, keeping every trace.
    pub fn otlp(otlp: impl Into<String>) -> Self {
        Self {
            otlp: otlp.into(),
            sampling: 1.0,
        }
    }

    /// Keeps only `ratio` (0 to 1) of the traces this node starts.
    pub fn sampling(mut self, ratio: f64) -> Self {
        self.sampling = ratio;
        self
    }

    /// Whether the settings can be used: the address is an `http://` URL
    /// and the ratio is between 0 and 1. Says which is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.sampling) {
            return Err(format!(
                "`sampling` is {}: it must be between 0 and 1",
                self.sampling
            ));
        }
        match self.otlp.split_once("://") {
            Some(("http", rest)) if !rest.is_empty() => Ok(()),
            Some(("https", _)) => Err(format!(
                "`otlp` is `{}`: scribe posts spans over plain HTTP only; \
                 point it at a collector or agent reached without TLS",
                self.otlp
            )),
            _ => Err(format!(
                "`otlp` is `{}`: expected the collector's OTLP/HTTP address, \
                 such as `http://localhost:4318`",
                self.otlp
            )),
        }
    }

    /// The tracer provider these settings describe, for the node `node`
    /// (its `service.name`).
    #[cfg(feature = "otlp")]
    pub(crate) fn provider(&self, node: &str) -> Result<SdkTracerProvider> {
        use opentelemetry_otlp::WithExportConfig as _;
        self.check().map_err(|reason| Error::Tracing { reason })?;
        let base = self.otlp.trim_end_matches('/');
        let endpoint = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| Error::Tracing {
                reason: format!("cannot export spans to `{}`: {e}", self.otlp),
            })?;
        Ok(SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                self.sampling,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(node.to_owned())
                    .build(),
            )
            .with_batch_exporter(exporter)
            .build())
    }
}

/// What makes an actor's spans: the node's tracer, shared by its actors.
#[derive(Clone)]
pub(crate) struct Tracer {
    tracer: Arc<SdkTracer>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

/// The length of a version 00 `traceparent`.
const TRACEPARENT_LEN: usize = 55;

/// A span's `traceparent`, written once, read by every record it publishes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceParent {
    text: [u8; TRACEPARENT_LEN],
}

impl TraceParent {
    fn of(context: &SpanContext) -> Self {
        let mut text = String::with_capacity(TRACEPARENT_LEN);
        let _ = write!(
            text,
            "00-{:032x}-{:016x}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags()
        );
        let mut out = [0u8; TRACEPARENT_LEN];
        out.copy_from_slice(&text.as_bytes()[..TRACEPARENT_LEN]);
        Self { text: out }
    }

    /// The header's value.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

/// The span of one record being handled, ended when dropped.
pub(crate) struct HandleSpan {
    span: opentelemetry_sdk::trace::Span,
    /// What the records it publishes carry.
    pub(crate) parent: TraceParent,
}

impl HandleSpan {
    /// Marks the handling failed, saying why.
    pub(crate) fn failed(&mut self, reason: &str) {
        self.span.set_status(Status::error(reason.to_owned()));
    }
}

/// The trace context of a record, as an OpenTelemetry context: the remote
/// span its `traceparent` names, if it has a valid one.
fn remote(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    struct Carrier<'a>(Option<&'a str>, Option<&'a str>);
    impl opentelemetry::propagation::Extractor for Carrier<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            match key {
                crate::wire::headers::TRACEPARENT => self.0,
                crate::wire::headers::TRACESTATE => self.1,
                _ => None,
            }
        }
        fn keys(&self) -> Vec<&str> {
            vec![
                crate::wire::headers::TRACEPARENT,
                crate::wire::headers::TRACESTATE,
            ]
        }
    }
    if traceparent.is_none() {
        return Context::new();
    }
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&Carrier(traceparent, tracestate))
}

impl Tracer {
    /// The tracer of a node's spans, from `provider`.
    pub(crate) fn new(provider: &SdkTracerProvider) -> Self {
        Self {
            tracer: Arc::new(provider.tracer("scribe")),
        }
    }

    /// The span of `actor` handling the record at `at`: the child of the
    /// span its `traceparent` names, or the root of a new trace.
    pub(crate) fn handle(&self, actor: &str, at: &Position, headers: &Headers) -> HandleSpan {
        let parent = remote(headers.traceparent(), headers.tracestate());
        let mut attributes = vec![
            KeyValue::new("scribe.actor", actor.to_owned()),
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", at.topic.to_string()),
            KeyValue::new(
                "messaging.destination.partition.id",
                at.partition.to_string(),
            ),
            KeyValue::new("messaging.kafka.offset", at.offset),
        ];
        if let Some(id) = headers.id() {
            attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
        }
        let span = self
            .tracer
            .span_builder("handle")
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .start_with_context(&*self.tracer, &parent);
        let parent = TraceParent::of(span.span_context());
        HandleSpan { span, parent }
    }

    /// The span of `source` publishing record `id` to `topic` outside any
    /// handling: the root of a trace. Ended at once; its `traceparent`
    /// goes on the record.
    pub(crate) fn publish(&self, source: &str, topic: &str, id: &str) -> TraceParent {
        let mut span = self
            .tracer
            .span_builder("publish")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("scribe.source", source.to_owned()),
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
                KeyValue::new("messaging.message.id", id.to_owned()),
            ])
            .start_with_context(&*self.tracer, &Context::new());
        let parent = TraceParent::of(span.span_context());
        span.end();
        parent
    }
}

/// The trace id of a `traceparent`, if it is a valid one: what `scribe
/// tail` shows.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let context = remote(Some(traceparent), None);
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| format!("{:032x}", span.trace_id()))
}

/// The tracer provider of a traced node, and whether the node built it
/// (and so shuts it down) or only flushes it when it stops.
pub(crate) struct Traced {
    pub(crate) provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub(crate) owned: bool,
}

impl Traced {
    /// Exports the spans still buffered; shuts the provider down if the
    /// node built it. Off the actix thread: the export blocks.
    pub(crate) async fn close(self) {
        let closed = tokio::task::spawn_blocking(move || {
            if self.owned {
                self.provider.shutdown()
            } else {
                self.provider.force_flush()
            }
        })
        .await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans not all exported at shutdown"),
            Err(error) => tracing::warn!(%error, "spans not all exported at shutdown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_written_as_w3c_version_00() {
        let context = remote(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None,
        );
        let parent = TraceParent::of(context.span().span_context());
        assert_eq!(
            parent.as_str(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn trace_id_reads_valid_traceparents_only() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("00-0000-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id("garbage"), None);
    }

    #[test]
    fn settings_name_what_is_wrong() {
        assert!(Tracing::otlp("http://localhost:4318").check().is_ok());
        let https = Tracing::otlp("https://collector:4318").check().unwrap_err();
        assert!(https.contains("plain HTTP"), "{https}");
        let bare = Tracing::otlp("localhost:4318").check().unwrap_err();
        assert!(bare.contains("`localhost:4318`"), "{bare}");
        let ratio = Tracing::otlp("http://c:4318")
            .sampling(1.5)
            .check()
            .unwrap_err();
        assert!(ratio.contains("between 0 and 1"), "{ratio}");
    }
}

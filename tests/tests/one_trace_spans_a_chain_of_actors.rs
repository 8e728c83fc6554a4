//! With tracing on, a chain of three actors is one trace: each handler's
//! span is the child of the span that published the record it handles,
//! the records carry it as their `traceparent`, and a record that comes
//! from outside with a trace context continues that trace, one without
//! starts its own.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use scribe_tests::actors::{Relay, RelayArgs, encode_numbers, keyed_numbers};
use scribe_tests::{RawRecord, TestKafka, unique};

const RECORDS: i64 = 40;
/// The outside span that every even record names as its parent.
const OUTSIDE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OUTSIDE_SPAN: &str = "00f067aa0ba902b7";

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_default()
}

/// `(trace id, span id)` of a `traceparent`.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a W3C traceparent: {traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

fn hex_trace(id: TraceId) -> String {
    format!("{id:032x}")
}

fn hex_span(id: SpanId) -> String {
    format!("{id:016x}")
}

#[actix::test]
async fn a_chain_of_three_actors_is_one_trace_with_its_parents_linked() {
    let kafka = TestKafka::from_env();
    let [t0, t1, t2, t3] = ["traced.in", "traced.a", "traced.b", "traced.c"].map(unique);
    let [a, b, c] = ["a", "b", "c"].map(unique);
    for topic in [&t0, &t1, &t2, &t3] {
        kafka.create_topic(topic, 3).await;
    }
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let node = kafka
        .node(&unique("traced"))
        .actor::<Relay>(&a, &t1, RelayArgs::reading(&t0))
        .actor::<Relay>(&b, &t2, RelayArgs::reading(&t1))
        .actor::<Relay>(&c, &t3, RelayArgs::reading(&t2))
        .tracer_provider(provider.clone())
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");

    // Even records come with an outside trace context, odd ones without.
    let encoded = encode_numbers(keyed_numbers(0..RECORDS, 4));
    let outside = format!("00-{OUTSIDE_TRACE}-{OUTSIDE_SPAN}-01");
    let raw: Vec<_> = encoded
        .iter()
        .enumerate()
        .map(|(seq, (key, bytes))| {
            let headers = if seq % 2 == 0 {
                vec![("traceparent", outside.as_str())]
            } else {
                vec![]
            };
            (Some(key.as_str()), bytes.clone(), headers)
        })
        .collect();
    kafka.produce_raw(&t0, &raw);

    let wait = Duration::from_secs(60);
    let out = kafka.read(&t3, RECORDS as usize, wait).await;
    let mid_a = kafka.read(&t1, RECORDS as usize, wait).await;
    let mid_b = kafka.read(&t2, RECORDS as usize, wait).await;
    node.shutdown().await.expect("clean shutdown");
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans collected");

    let by_id: HashMap<String, &SpanData> = spans
        .iter()
        .map(|s| (hex_span(s.span_context.span_id()), s))
        .collect();
    let at = |records: &[RawRecord], span: &SpanData| -> Option<RawRecord> {
        let partition = text(span, "messaging.destination.partition.id");
        let offset = match attribute(span, "messaging.kafka.offset") {
            Some(Value::I64(offset)) => *offset,
            other => panic!("offset attribute: {other:?}"),
        };
        records
            .iter()
            .find(|r| r.partition.to_string() == partition && r.offset == offset)
            .cloned()
    };

    let (mut continued, mut started, mut broken) = (0, 0, 0);
    for record in &out {
        // The record's traceparent names c's span; c's parent is b's,
        // b's is a's.
        let (trace, span_c) = ids(record.header("traceparent"));
        let c_span = by_id[&span_c];
        let b_span = by_id[&hex_span(c_span.parent_span_id)];
        let a_span = by_id[&hex_span(b_span.parent_span_id)];
        let chain = [a_span, b_span, c_span];
        for (span, (actor, topic)) in chain.iter().zip([(&a, &t0), (&b, &t1), (&c, &t2)]) {
            assert_eq!(
                hex_trace(span.span_context.trace_id()),
                trace,
                "one trace id"
            );
            assert_eq!(span.name, "handle");
            assert_eq!(&text(span, "scribe.actor"), actor);
            assert_eq!(&text(span, "messaging.destination.name"), topic);
        }
        // b and c handled records an actor published: their spans name
        // them by partition, offset and ce_id, and those records carried
        // the parent span as their traceparent.
        for (span, upstream, records) in [(b_span, a_span, &mid_a), (c_span, b_span, &mid_b)] {
            let handled = at(records, span).expect("the handled record is on the topic");
            assert_eq!(text(span, "messaging.message.id"), handled.header("ce_id"));
            assert_eq!(
                ids(handled.header("traceparent")),
                (trace.clone(), hex_span(upstream.span_context.span_id()))
            );
        }
        if a_span.parent_span_id == SpanId::INVALID {
            assert_ne!(
                trace, OUTSIDE_TRACE,
                "a record without a context starts a trace"
            );
            started += 1;
        } else if hex_span(a_span.parent_span_id) == OUTSIDE_SPAN && trace == OUTSIDE_TRACE {
            continued += 1;
        } else {
            broken += 1;
        }
    }
    let handle_spans = spans.iter().filter(|s| s.name == "handle").count();
    println!(
        "sent {RECORDS}, received {}, spans {handle_spans}, traces continued {continued}, \
         started {started}, broken {broken}",
        out.len()
    );
    assert_eq!(out.len(), RECORDS as usize);
    assert_eq!(
        handle_spans,
        3 * RECORDS as usize,
        "one span per actor per record"
    );
    assert_eq!((continued, started, broken), (RECORDS / 2, RECORDS / 2, 0));
    // The traces started here are one per record.
    let traces: std::collections::HashSet<_> = out
        .iter()
        .map(|r| ids(r.header("traceparent")).0)
        .filter(|t| t != OUTSIDE_TRACE)
        .collect();
    assert_eq!(traces.len(), (RECORDS / 2) as usize);
}

//! A node launched with `[node.tracing]` posts its spans to an OTLP/HTTP
//! collector (here a listener that decodes them with the OpenTelemetry
//! project's own protobuf types), flushes them when it drains, and `scribe
//! tail` shows each record's trace id, the same the collector got.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use scribe::codec::Encoder;
use scribe_schemas::HostMetrics;
use scribe_tests::{TestKafka, terminate, unique};

const RECORDS: usize = 10;
const OUTSIDE_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// The bodies POSTed to `/v1/traces`, decoded.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP receiver on a free port: answers 200 to every POST to
/// `/v1/traces` and keeps what it decoded.
fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Received::default();
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let store = store.clone();
            std::thread::spawn(move || serve(stream, &store));
        }
    });
    (url, received)
}

/// Serves one connection's requests (the exporter keeps it alive).
fn serve(stream: std::net::TcpStream, store: &Received) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let ok = request_line.starts_with("POST /v1/traces ");
        if ok {
            let request = ExportTraceServiceRequest::decode(body.as_slice())
                .expect("an OTLP protobuf export request");
            store.lock().unwrap().push(request);
        }
        let status = if ok { "200 OK" } else { "404 Not Found" };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["run", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("scribe starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_and_tail_shows_their_trace_ids() {
    let kafka = TestKafka::from_env();
    let id = unique("otlp");
    let (input, output) = (format!("{id}.in"), format!("{id}.out"));
    kafka.create_topic(&input, 2).await;
    kafka.create_topic(&output, 2).await;
    kafka.create_topic(&format!("{output}.dlq"), 1).await;
    let (url, received) = collector();
    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "{id}"
[node.tracing]
otlp = "{url}"
[kafka]
bootstrap_servers = "{bootstrap}"
[[actors]]
name = "{id}-relay"
kind = "relay.host-metrics"
output = "{output}"
params = {{ pattern = "{id}\\.in" }}
"#,
            bootstrap = kafka.bootstrap()
        ),
    )
    .unwrap();
    let node = start(&config);

    let encoder = Encoder::<HostMetrics>::new().unwrap();
    let outside = format!("00-{OUTSIDE_TRACE}-b7ad6b7169203331-01");
    let records: Vec<_> = (0..RECORDS)
        .map(|i| {
            let mut bytes = Vec::new();
            let metrics = HostMetrics {
                host: format!("h{i}"),
                cpu_percent: i as f64,
                mem_used_percent: 1.0,
                load1: 0.0,
                sampled_at_ms: i as i64,
            };
            encoder.encode(&metrics, &mut bytes).unwrap();
            let headers = if i % 2 == 0 {
                vec![("traceparent", outside.as_str())]
            } else {
                vec![]
            };
            (Some(format!("h{i}")), bytes, headers)
        })
        .collect();
    let raw: Vec<_> = records
        .iter()
        .map(|(key, bytes, headers)| (key.as_deref(), bytes.clone(), headers.clone()))
        .collect();
    kafka.produce_raw(&input, &raw);
    let relayed = kafka.read(&output, RECORDS, Duration::from_secs(60)).await;
    assert_eq!(relayed.len(), RECORDS);
    assert!(terminate(node), "scribe drains and exits 0");

    // What the collector got: one `handle` span per record, from a service
    // named after the node, naming the actor.
    let requests = received.lock().unwrap().clone();
    let mut exported = HashSet::new();
    let mut spans = 0;
    for request in &requests {
        for resource in &request.resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            assert_eq!(service, Some(Value::StringValue(id.clone())));
            for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
                assert_eq!(span.name, "handle");
                let actor = span
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "scribe.actor")
                    .and_then(|kv| kv.value.as_ref()?.value.clone());
                assert_eq!(actor, Some(Value::StringValue(format!("{id}-relay"))));
                exported.insert(hex(&span.trace_id));
                spans += 1;
            }
        }
    }

    // `scribe tail` shows each record's trace id: the outside one for the
    // records that came with it, one the collector got for the others.
    let tailed = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args([
            "tail",
            config.to_str().unwrap(),
            &output,
            "--from-beginning",
        ])
        .args(["-n", &RECORDS.to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        tailed.status.success(),
        "{}",
        String::from_utf8_lossy(&tailed.stderr)
    );
    let mut continued = 0;
    let mut started = 0;
    for line in String::from_utf8_lossy(&tailed.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let trace = record["trace_id"].as_str().expect("a trace id").to_owned();
        assert!(exported.contains(&trace), "{trace} was exported");
        let host: usize = record["key"].as_str().unwrap()[1..].parse().unwrap();
        if host.is_multiple_of(2) {
            assert_eq!(trace, OUTSIDE_TRACE, "{line}");
            continued += 1;
        } else {
            assert_ne!(trace, OUTSIDE_TRACE, "{line}");
            started += 1;
        }
    }
    println!(
        "sent {RECORDS}, relayed {}, exported spans {spans} in {} requests, \
         traces continued {continued}, started {started}",
        relayed.len(),
        requests.len()
    );
    assert_eq!(spans, RECORDS);
    assert_eq!((continued, started), (RECORDS / 2, RECORDS / 2));
    let _ = std::fs::remove_file(&config);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! `encoding = "confluent"`: an actor writes the Confluent Schema
//! Registry's framing (byte 0, schema id, datum) after registering its
//! schemas under the subject its strategy names, and every reader takes
//! that framing, looking ids up in the registry once. Checked both ways
//! against Python's confluent-kafka (`AvroSerializer`, `AvroDeserializer`,
//! `SchemaRegistryClient`), a client scribe did not write, through the
//! registry server of `tests/registry` (see `scribe_tests::registry`).
//!
//! Needs Python with `confluent-kafka[avro,schemaregistry]` (`SCRIBE_PYTHON`),
//! Java and the Avro jars; without them each test says so and passes,
//! unless `SCRIBE_REQUIRE_INTEROP=1` / `SCRIBE_REQUIRE_REGISTRY=1` (CI).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use scribe::confluent::{RegistryClient, SubjectStrategy};
use scribe::prelude::*;
use scribe::{Encoding, Secret};
use scribe_schemas::HostMetrics;
use scribe_tests::actors::Runs;
use scribe_tests::registry::{RegistryOptions, RegistryServer};
use scribe_tests::{TestKafka, unique};

const WAIT: Duration = Duration::from_secs(60);

fn sample(i: usize) -> HostMetrics {
    HostMetrics {
        host: format!("host-{i:03}"),
        cpu_percent: i as f64,
        mem_used_percent: 40.25,
        load1: 0.5,
        sampled_at_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Publishes `count` samples, `host-000` onwards, when it starts.
struct Samples {
    out: Publisher<HostMetrics>,
    count: usize,
}

impl Actor for Samples {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        for i in 0..self.count {
            let sample = sample(i);
            self.out.publish(&sample.host, &sample).expect("published");
        }
    }
}

impl TopicActor for Samples {
    type Output = HostMetrics;
    type Args = usize;
    fn create(count: usize, out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Ok(Self { out, count })
    }
}

/// Republishes every sample it reads from the topic in its arguments.
struct Copier {
    out: Publisher<HostMetrics>,
}

impl Actor for Copier {
    type Context = Context<Self>;
}

impl TopicActor for Copier {
    type Output = HostMetrics;
    type Args = String;
    fn create(_: String, out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
    fn subscriptions(input: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<HostMetrics>(input);
    }
}

impl Handler<Inbound<HostMetrics>> for Copier {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, msg: Inbound<HostMetrics>, _: &mut Context<Self>) -> Self::Result {
        self.out
            .publish(msg.key().unwrap_or_default(), msg.value())?;
        Ok(())
    }
}

fn python() -> String {
    std::env::var("SCRIBE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A registry server and a Python with the registry clients, or `None`
/// (the test skips, which CI does not allow).
fn registry(options: RegistryOptions) -> Option<RegistryServer> {
    let python_ok = Command::new(python())
        .args([
            "-c",
            "import confluent_kafka.schema_registry.avro, fastavro",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        let required = std::env::var("SCRIBE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SCRIBE_REQUIRE_INTEROP=1 but `{}` lacks confluent-kafka[avro,schemaregistry]",
            python()
        );
        eprintln!(
            "skipped: `{}` lacks confluent-kafka[avro,schemaregistry]",
            python()
        );
        return None;
    }
    RegistryServer::start(options)
}

/// Runs `tests/interop/registry_avro.py` with `args` (and `input` on its
/// standard input) against `server`; its standard output, or the test
/// fails with its error.
async fn registry_avro(server: &RegistryServer, args: Vec<String>, input: String) -> String {
    let mut command = Command::new(python());
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/registry_avro.py"
        ))
        .args(&args)
        .args(["--registry", server.url()]);
    if let Some(ca) = server.ca() {
        command.arg("--ca").arg(ca);
    }
    let settings = server.settings();
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        command.args(["--user", user, "--password", password.expose()]);
    }
    let output = tokio::task::spawn_blocking(move || fed(&mut command, &input))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "registry_avro.py {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `command` with `input` on its standard input, to the end.
fn fed(command: &mut Command, input: &str) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("written");
    child.wait_with_output().expect("it ends")
}

/// What Python's `AvroDeserializer` reads of `count` records of `topic`,
/// one JSON line each (key, schema id, value).
async fn consume(
    server: &RegistryServer,
    kafka: &TestKafka,
    topic: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let count = count.to_string();
    let args = [
        "consume",
        "--bootstrap",
        kafka.bootstrap(),
        "--topic",
        topic,
        "--count",
        &count,
    ];
    json_lines(&registry_avro(server, strings(&args), String::new()).await)
}

/// A registry that asks every request for HTTP basic authentication.
fn with_basic_auth() -> RegistryOptions {
    RegistryOptions {
        credentials: Some(("scribe".into(), "s3cret-registry".into())),
        ..Default::default()
    }
}

/// Another writer's `HostMetrics`, which the actor's type cannot follow
/// under BACKWARD (the registry's default level).
fn incompatible_host_metrics() -> apache_avro::Schema {
    apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"HostMetrics","namespace":"scribe.metrics",
            "fields":[{"name":"host","type":"int"}]}"#,
    )
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[actix::test]
async fn python_avro_deserializer_reads_what_a_confluent_actor_writes() {
    let Some(server) = registry(with_basic_auth()) else {
        return;
    };
    let kafka = TestKafka::from_env();
    let topic = unique("registry-out");
    let sent = 50;
    let actor = unique("samples");
    let node = kafka
        .node("registry-writer")
        .actor::<Samples>(&actor, &topic, sent)
        .encoding(&actor, Encoding::Confluent)
        .schema_registry(server.settings())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let raw = kafka.read(&topic, sent, WAIT).await;
    node.shutdown().await.unwrap();

    // Registered under TopicNameStrategy's subject, as the serializer of
    // every other client would look for it.
    let subject = json_lines(
        &registry_avro(
            &server,
            strings(&["subject", "--subject", &format!("{topic}-value")]),
            String::new(),
        )
        .await,
    )
    .remove(0);
    assert_eq!(subject["version"], 1);
    assert_eq!(subject["schema"]["name"], "HostMetrics", "{subject}");
    let id = subject["id"].as_u64().unwrap() as u32;
    for record in &raw {
        assert_eq!(record.value[0], 0, "magic byte");
        assert_eq!(record.value[1..5], id.to_be_bytes(), "schema id");
    }

    let read = consume(&server, &kafka, &topic, sent).await;
    let mut by_key = BTreeMap::new();
    for line in &read {
        let value = &line["value"];
        let host = value["host"].as_str().unwrap().to_owned();
        assert_eq!(line["key"], host, "{line}");
        assert_eq!(line["schema_id"], id, "{line}");
        let i: usize = host[5..].parse().unwrap();
        let expected = sample(i);
        assert_eq!(value["cpu_percent"], expected.cpu_percent, "{line}");
        assert_eq!(value["sampled_at_ms"], expected.sampled_at_ms, "{line}");
        *by_key.entry(host).or_insert(0) += 1;
    }
    let duplicates: usize = by_key.values().map(|n| n - 1).sum();
    let lost = sent - by_key.len();
    println!(
        "scribe sent {sent}; Python's AvroDeserializer read {} (schema id {id}): {lost} lost, {duplicates} duplicates",
        read.len()
    );
    assert_eq!((read.len(), lost, duplicates), (sent, 0, 0));
}

/// HostMetrics as another team's producer has it a version later: one
/// more field, with a default.
const HOST_METRICS_V2: &str = r#"{"type":"record","name":"HostMetrics","namespace":"scribe.metrics",
 "fields":[{"name":"host","type":"string"},{"name":"cpu_percent","type":"double"},
 {"name":"mem_used_percent","type":"double"},{"name":"load1","type":"double"},
 {"name":"sampled_at_ms","type":"long"},{"name":"region","type":"string","default":"eu"}]}"#;

#[actix::test]
async fn scribe_reads_what_python_avro_serializer_writes() {
    let Some(server) = registry(RegistryOptions::default()) else {
        return;
    };
    let kafka = TestKafka::from_env();
    let (input, output) = (unique("registry-in"), unique("registry-copied"));
    kafka.create_topic(&input, 3).await;
    let dir = std::env::temp_dir().join(unique("registry-schemas"));
    std::fs::create_dir_all(&dir).unwrap();
    let (v1, v2) = (dir.join("v1.avsc"), dir.join("v2.avsc"));
    std::fs::write(
        &v1,
        serde_json::to_string(&<HostMetrics as apache_avro::AvroSchema>::get_schema()).unwrap(),
    )
    .unwrap();
    std::fs::write(&v2, HOST_METRICS_V2).unwrap();
    let lines = |range: std::ops::Range<usize>| {
        range
            .map(|i| {
                let s = sample(i);
                serde_json::json!({"key": s.host, "value": {
                    "host": s.host, "cpu_percent": s.cpu_percent,
                    "mem_used_percent": s.mem_used_percent, "load1": s.load1,
                    "sampled_at_ms": s.sampled_at_ms, "region": "us"}})
                .to_string()
                    + "\n"
            })
            .collect::<String>()
    };
    let produce = |schema: &std::path::Path| {
        strings(&[
            "produce",
            "--bootstrap",
            kafka.bootstrap(),
            "--topic",
            &input,
            "--schema",
            schema.to_str().unwrap(),
        ])
    };
    // Half before the node starts (their schema id is learnt at start),
    // half after, with a newer schema registered only then: its id is
    // looked up when first met, and resolved to the reader's type.
    registry_avro(&server, produce(&v1), lines(0..25)).await;
    let copier = unique("copier");
    let node = kafka
        .node("registry-reader")
        .actor::<Copier>(&copier, &output, input.clone())
        .schema_registry(server.settings())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    registry_avro(&server, produce(&v2), lines(25..50)).await;
    let copied = kafka.read(&output, 50, WAIT).await;
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let decoder =
        scribe::codec::Decoder::<HostMetrics>::new(scribe::SchemaRegistry::new()).unwrap();
    let mut by_key = BTreeMap::new();
    for record in &copied {
        let value = decoder
            .decode(&record.value)
            .expect("single-object HostMetrics");
        let i: usize = value.host[5..].parse().unwrap();
        assert_eq!(value, sample(i));
        *by_key.entry(value.host).or_insert(0) += 1;
    }
    let duplicates: usize = by_key.values().map(|n| n - 1).sum();
    let lost = 50 - by_key.len();
    println!(
        "Python's AvroSerializer sent 50 (25 as v1 before start, 25 as v2 after); scribe copied {}: {lost} lost, {duplicates} duplicates",
        copied.len()
    );
    assert_eq!((copied.len(), lost, duplicates), (50, 0, 0));
}

#[actix::test]
async fn record_name_strategies_give_each_type_of_a_topic_its_subject() {
    let Some(server) = registry(RegistryOptions::default()) else {
        return;
    };
    let kafka = TestKafka::from_env();
    let (by_topic, by_record) = (unique("registry-runs"), unique("registry-runs-r"));
    let (a, b) = (unique("runs"), unique("runs-r"));
    let runs = 10;
    let node = kafka
        .node("registry-types")
        .actor::<Runs>(&a, &by_topic, runs)
        .actor::<Runs>(&b, &by_record, runs)
        .default_encoding(Encoding::Confluent)
        .subject_strategy(&a, SubjectStrategy::TopicRecordName)
        .subject_strategy(&b, SubjectStrategy::RecordName)
        .schema_registry(server.settings())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let written = kafka.read(&by_topic, 2 * runs, WAIT).await.len()
        + kafka.read(&by_record, 2 * runs, WAIT).await.len();
    node.shutdown().await.unwrap();
    assert_eq!(written, 4 * runs);

    let client = RegistryClient::new(&server.settings()).unwrap();
    for subject in [
        format!("{by_topic}-module.test.Started"),
        format!("{by_topic}-module.test.Returned"),
        "module.test.Started".to_owned(),
        "module.test.Returned".to_owned(),
    ] {
        assert_eq!(client.versions(&subject).unwrap().len(), 1, "{subject}");
    }
    assert!(
        client
            .versions(&format!("{by_topic}-value"))
            .unwrap()
            .is_empty(),
        "no topic subject"
    );
    for topic in [&by_topic, &by_record] {
        let read = consume(&server, &kafka, topic, 2 * runs).await;
        let passed = read
            .iter()
            .filter(|l| l["value"]["passed"].is_boolean())
            .count();
        let started = read.len() - passed;
        println!(
            "{topic}: Python read {} records by their schema ids: {started} Started, {passed} Returned",
            read.len()
        );
        assert_eq!((started, passed), (runs, runs));
    }
}

#[actix::test]
async fn a_node_whose_schema_the_registry_refuses_stops_before_it_starts() {
    let Some(server) = registry(with_basic_auth()) else {
        return;
    };
    let kafka = TestKafka::from_env();
    let topic = unique("registry-refused");
    // Another writer's HostMetrics under the subject already: one the
    // actor's type cannot read (BACKWARD, the registry's default level).
    let other = incompatible_host_metrics();
    let client = RegistryClient::new(&server.settings()).unwrap();
    client.register(&format!("{topic}-value"), &other).unwrap();
    let actor = unique("samples");
    let start = |settings: scribe::RegistrySettings| {
        kafka
            .node("registry-refused")
            .actor::<Samples>(&actor, &topic, 1)
            .encoding(&actor, Encoding::Confluent)
            .schema_registry(settings)
            .build()
            .unwrap()
            .start()
    };
    let Err(refused) = start(server.settings()).await else {
        panic!("the registry refused nothing")
    };
    let why = refused.to_string();
    println!("refused: {why}");
    assert!(matches!(refused, scribe::Error::Registry { .. }), "{why}");
    assert!(why.contains(&format!("actor `{actor}`")), "{why}");
    assert!(why.contains(&format!("{topic}-value")), "{why}");
    assert!(why.contains("incompatible"), "{why}");
    assert!(why.contains("http 409"), "{why}");

    let wrong = scribe::RegistrySettings::new(server.url())
        .basic_auth("scribe", Secret::new("not-the-password"));
    let Err(refused) = start(wrong).await else {
        panic!("a wrong password was let in")
    };
    let refused = refused.to_string();
    println!("wrong password: {refused}");
    assert!(
        refused.contains("refused credentials (http 401)"),
        "{refused}"
    );
    assert!(!refused.contains("not-the-password"), "{refused}");
    // Nothing was written by either attempt.
    assert!(
        kafka
            .read(&topic, 1, Duration::from_secs(1))
            .await
            .is_empty()
    );
}

#[actix::test]
async fn the_registry_is_reached_over_https_with_its_ca() {
    let Some(server) = registry(RegistryOptions {
        credentials: Some(("scribe".into(), "s3cret-registry".into())),
        tls: true,
    }) else {
        return;
    };
    assert!(server.url().starts_with("https://"), "{}", server.url());
    let kafka = TestKafka::from_env();
    let topic = unique("registry-tls");
    let actor = unique("samples");
    let node = |settings: scribe::RegistrySettings| {
        kafka
            .node("registry-tls")
            .actor::<Samples>(&actor, &topic, 5)
            .encoding(&actor, Encoding::Confluent)
            .schema_registry(settings)
            .build()
            .unwrap()
            .start()
    };
    // Without the CA: the system's roots do not trust the certificate.
    let mut untrusted = server.settings();
    untrusted.ca_location = None;
    let Err(refused) = node(untrusted).await else {
        panic!("an untrusted certificate was accepted")
    };
    let refused = refused.to_string();
    println!("without its CA: {refused}");
    assert!(refused.contains("schema registry https://"), "{refused}");
    assert!(!refused.contains("s3cret-registry"), "{refused}");

    let running = node(server.settings()).await.unwrap();
    let raw = kafka.read(&topic, 5, WAIT).await;
    running.shutdown().await.unwrap();
    assert_eq!(raw.len(), 5);
    let read = consume(&server, &kafka, &topic, 5).await;
    println!("over https: scribe sent 5, Python read {}", read.len());
    assert_eq!(read.len(), 5);
}

/// Runs the `scribe` command (with the standard kinds); its exit code,
/// standard output and standard error.
fn scribe_command(args: &[&str], input: &str) -> (i32, String, String) {
    let output = fed(
        Command::new(env!("CARGO_BIN_EXE_scribe-test-node")).args(args),
        input,
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix::test]
async fn scribe_check_produce_and_tail_work_on_a_confluent_topic() {
    let Some(server) = registry(with_basic_auth()) else {
        return;
    };
    let kafka = TestKafka::from_env();
    let (fresh, taken) = (unique("registry-cli"), unique("registry-cli-taken"));
    kafka.create_topic(&fresh, 3).await;
    let file = std::env::temp_dir().join(format!("{fresh}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"[node]
name = "registry-cli"
encoding = "confluent"

[kafka]
bootstrap_servers = "{bootstrap}"

[registry]
url = "http://127.0.0.1:1"
username = "scribe"
password = "s3cret-registry"

[[actors]]
name = "sampler"
kind = "host-sampler"
output = "{fresh}"

[[actors]]
name = "sampler-taken"
kind = "host-sampler"
output = "{taken}"
"#,
            bootstrap = kafka.bootstrap()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_owned();
    // The subject of `taken` holds another writer's HostMetrics already,
    // one the actor's type cannot follow under BACKWARD.
    let other = incompatible_host_metrics();
    RegistryClient::new(&server.settings())
        .unwrap()
        .register(&format!("{taken}-value"), &other)
        .unwrap();

    // `check --registry` (the file's own url is wrong on purpose: the flag
    // wins, the file's credentials are used).
    let (code, stdout, stderr) = scribe_command(&["check", &file, "--registry", server.url()], "");
    println!("{stdout}{stderr}");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "ok   {fresh} scribe.metrics.HostMetrics (sampler), subject `{fresh}-value`: new subject"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "FAIL {taken} scribe.metrics.HostMetrics (sampler-taken), subject `{taken}-value`: refused under BACKWARD"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the registry would refuse 1 schemas"),
        "{stderr}"
    );
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));

    // `produce` registers the owner's schema under its subject and frames
    // each line; `tail` reads the framing back; so does Python.
    let with_url = std::fs::read_to_string(&file)
        .unwrap()
        .replace("http://127.0.0.1:1", server.url());
    std::fs::write(&file, with_url).unwrap();
    let sent = 5;
    let lines: String = (0..sent)
        .map(|i| {
            let s = sample(i);
            format!(
                "{{\"key\": \"{}\", \"value\": {{\"host\": \"{}\", \"cpu_percent\": {}, \"mem_used_percent\": 40.25, \"load1\": 0.5, \"sampled_at_ms\": {}}}}}\n",
                s.host, s.host, s.cpu_percent, s.sampled_at_ms
            )
        })
        .collect();
    let (code, _, stderr) = scribe_command(&["produce", &file, &fresh, "--as-owner"], &lines);
    assert_eq!(code, 0, "{stderr}");
    let (code, tailed, stderr) = scribe_command(
        &[
            "tail",
            &file,
            &fresh,
            "--from-beginning",
            "-n",
            &sent.to_string(),
        ],
        "",
    );
    assert_eq!(code, 0, "{stderr}");
    let tailed = json_lines(&tailed);
    let read = consume(&server, &kafka, &fresh, sent).await;
    let _ = std::fs::remove_file(&file);
    println!(
        "scribe produce sent {sent}; scribe tail read {}; Python read {}",
        tailed.len(),
        read.len()
    );
    assert_eq!((tailed.len(), read.len()), (sent, sent));
    for (tail, python) in [(&tailed, "tail"), (&read, "python")]
        .into_iter()
        .flat_map(|(lines, who)| lines.iter().map(move |l| (l, who)))
    {
        let host = tail["value"]["host"].as_str().unwrap();
        let i: usize = host[5..].parse().unwrap();
        assert_eq!(tail["key"], host, "{python}: {tail}");
        assert_eq!(
            tail["value"]["sampled_at_ms"],
            sample(i).sampled_at_ms,
            "{python}: {tail}"
        );
    }
    assert!(
        tailed
            .iter()
            .all(|l| l["type"] == "scribe.metrics.HostMetrics")
    );
}

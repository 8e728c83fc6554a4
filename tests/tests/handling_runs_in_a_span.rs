//! Each handled record runs inside a `tracing` span carrying the actor,
//! topic, partition, offset and `ce_id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scribe_tests::actors::{RelayArgs, encode_numbers, start_relay};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

type Spans = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Records the fields of every span named `handle`.
struct Capture(Spans);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "handle" {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
    }
}

#[actix::test]
async fn each_handled_record_runs_in_a_span_with_its_coordinates() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
    tracing::subscriber::set_global_default(subscriber)
        .expect("first subscriber of this test binary");

    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let ids = ["id-0", "id-1", "id-2"];
    let raw: Vec<_> = encode_numbers((0..3).map(|seq| Number {
        key: "k".into(),
        seq,
    }))
    .into_iter()
    .zip(ids)
    .map(|((_, bytes), id)| (Some("k"), bytes, vec![("ce_id", id)]))
    .collect();
    kafka.produce_raw(&input, &raw);
    let node = start_relay(&kafka, "spans", &actor, &output, RelayArgs::reading(&input)).await;
    assert_eq!(
        kafka.read(&output, 3, Duration::from_secs(30)).await.len(),
        3
    );
    node.shutdown().await.unwrap();

    let spans = spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 3, "{spans:?}");
    for (offset, span) in spans.iter().enumerate() {
        assert_eq!(span["actor"], actor);
        assert_eq!(span["topic"], input);
        assert_eq!(span["partition"], "0");
        assert_eq!(span["offset"], offset.to_string());
        assert_eq!(span["ce_id"], ids[offset]);
    }
}

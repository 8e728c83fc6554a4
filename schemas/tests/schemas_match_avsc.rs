//! Each Rust record type has exactly the schema of its `.avsc` file.

use apache_avro::{AvroSchema, Schema};
use scribe_schemas::{Alarm, Command, HostMetrics, JournalEntry, MetricSummary, OpenWindow, avsc};

fn assert_same<T: AvroSchema>(file: &str) {
    let text = avsc(file).unwrap_or_else(|| panic!("{file} is not listed in AVSC"));
    let from_file = Schema::parse_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        T::get_schema().canonical_form(),
        from_file.canonical_form(),
        "the Rust type and {file} disagree"
    );
}

#[test]
fn host_metrics_matches_its_avsc() {
    assert_same::<HostMetrics>("host_metrics.avsc");
}

#[test]
fn host_metrics_v1_matches_its_avsc() {
    assert_same::<scribe_schemas::metrics::v1::HostMetrics>("host_metrics.v1.avsc");
}

#[test]
fn metric_summary_matches_its_avsc() {
    assert_same::<MetricSummary>("metric_summary.avsc");
}

#[test]
fn open_window_matches_its_avsc() {
    assert_same::<OpenWindow>("open_window.avsc");
}

#[test]
fn alarm_matches_its_avsc() {
    assert_same::<Alarm>("alarm.avsc");
}

#[test]
fn command_matches_its_avsc() {
    assert_same::<Command>("command.avsc");
}

#[test]
fn journal_entry_matches_its_avsc() {
    assert_same::<JournalEntry>("journal_entry.avsc");
}

#[test]
fn every_avsc_file_is_listed_and_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("avro");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".avsc"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = scribe_schemas::AVSC
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "AVSC must list every file in schemas/avro");
    for (name, text) in scribe_schemas::AVSC {
        Schema::parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn host_metrics_v2_reads_v1_by_schema_resolution() {
    use apache_avro::schema_compatibility::SchemaCompatibility;
    let v1 = Schema::parse_str(avsc("host_metrics.v1.avsc").unwrap()).unwrap();
    SchemaCompatibility::can_read(&v1, &HostMetrics::get_schema())
        .expect("version 2 must read version 1");
}

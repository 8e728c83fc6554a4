//! What a node refuses about an actor's state before it handles a record:
//! inputs whose partitions cannot be one shard each (`build`, without
//! connecting), and a changelog topic that exists with another partition
//! count or without compaction (`start`, before any actor runs). And what
//! it creates: a changelog with the input's partition count, compacted.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use scribe::{NodeBuilder, TopicSpec};
use scribe_tests::actors::{Tally, TallyArgs};
use scribe_tests::{TestKafka, unique};

fn tally(kafka: &TestKafka, id: &str, input: &str, also: &[&str]) -> NodeBuilder {
    kafka.node(id).actor::<Tally>(
        format!("{id}-tally"),
        format!("{id}.out"),
        TallyArgs {
            input: input.to_owned(),
            also: also.iter().map(|t| (*t).to_owned()).collect(),
        },
    )
}

fn refusal(builder: NodeBuilder) -> String {
    builder
        .build()
        .expect_err("the topology is refused")
        .to_string()
}

/// Why a valid topology's node refuses to start.
async fn start_refusal(builder: NodeBuilder) -> String {
    let error = builder
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect_err("the changelog is refused")
        .to_string();
    println!("{error}");
    error
}

#[actix::test]
async fn inputs_of_different_partition_counts_are_refused_by_build() {
    let kafka = TestKafka::from_env();
    let id = unique("copart");
    let error = refusal(
        tally(&kafka, &id, "a", &["b"])
            .topic("a", TopicSpec::new(4, 1))
            .topic("b", TopicSpec::new(2, 1)),
    );
    println!("{error}");
    assert!(
        error.contains(&format!("actor `{id}-tally`: store `tallies`"))
            && error.contains("`a` has 4, `b` has 2"),
        "{error}"
    );
}

#[actix::test]
async fn several_inputs_without_the_range_assignor_are_refused_by_build() {
    let kafka = TestKafka::from_env();
    let id = unique("assignor");
    let error = refusal(
        tally(&kafka, &id, "a", &["b"])
            .consumer_property("partition.assignment.strategy", "roundrobin"),
    );
    println!("{error}");
    assert!(
        error.contains("`roundrobin`") && error.contains("only `range`"),
        "{error}"
    );
    // One input: any eager assignor keeps a partition's records on one
    // member.
    tally(&kafka, &id, "a", &[])
        .consumer_property("partition.assignment.strategy", "roundrobin")
        .build()
        .expect("one input, any eager assignor");
}

#[actix::test]
async fn a_cooperative_assignor_is_refused_by_build() {
    let kafka = TestKafka::from_env();
    let id = unique("cooperative");
    let error = refusal(
        tally(&kafka, &id, "a", &[])
            .consumer_property("partition.assignment.strategy", "cooperative-sticky"),
    );
    println!("{error}");
    assert!(
        error.contains(&format!("actor `{id}-tally`: store `tallies`"))
            && error.contains("`cooperative-sticky`")
            && error.contains("use an eager assignor"),
        "{error}"
    );
}

#[actix::test]
async fn a_changelog_with_another_partition_count_is_refused_at_start() {
    let kafka = TestKafka::from_env();
    let id = unique("changelog-count");
    let input = format!("{id}.in");
    kafka.create_topic(&input, 4).await;
    let changelog = format!("{id}.out.tallies.changelog");
    kafka.create_topic(&changelog, 2).await;
    let error = start_refusal(tally(&kafka, &id, &input, &[])).await;
    assert!(
        error.contains(&format!("changelog `{changelog}` of actor `{id}-tally`"))
            && error.contains("it has 2 partitions")
            && error.contains(&format!("`{input}` has 4")),
        "{error}"
    );
}

/// The changelog's `cleanup.policy`, as the broker describes it.
async fn cleanup_policy(kafka: &TestKafka, topic: &str) -> String {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .create()
        .expect("admin client");
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("described");
    let resource = described
        .into_iter()
        .next()
        .unwrap()
        .expect("the topic's configs");
    resource
        .get("cleanup.policy")
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
}

#[actix::test]
async fn a_changelog_is_created_with_the_inputs_partitions_and_compacted() {
    let kafka = TestKafka::from_env();
    let id = unique("changelog-made");
    let input = format!("{id}.in");
    kafka.create_topic(&input, 3).await;
    let node = tally(&kafka, &id, &input, &[])
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let changelog = format!("{id}.out.tallies.changelog");
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .create()
        .expect("consumer");
    let partitions =
        scribe::client::partition_count(&consumer, &changelog, Duration::from_secs(30))
            .expect("the changelog exists");
    node.shutdown().await.expect("drained");
    println!("{changelog}: {partitions} partitions");
    assert_eq!(partitions, 3, "one changelog partition per input partition");
    if kafka.is_mock() {
        // The embedded broker keeps every record: it has no cleanup policy.
        return;
    }
    let policy = cleanup_policy(&kafka, &changelog).await;
    println!("cleanup.policy={policy}");
    assert_eq!(policy, "compact");
}

#[actix::test]
async fn a_changelog_without_compaction_is_refused_at_start() {
    let kafka = TestKafka::from_env();
    if kafka.is_mock() {
        eprintln!(
            "a_changelog_without_compaction_is_refused_at_start: runs on Apache Kafka only \
             (the embedded broker has no cleanup policy); skipped here"
        );
        return;
    }
    let id = unique("changelog-delete");
    let input = format!("{id}.in");
    kafka.create_topic(&input, 2).await;
    let changelog = format!("{id}.out.tallies.changelog");
    // Made as any topic is by default: cleanup.policy=delete.
    kafka.create_topic(&changelog, 2).await;
    assert_eq!(cleanup_policy(&kafka, &changelog).await, "delete");
    let error = start_refusal(tally(&kafka, &id, &input, &[])).await;
    assert!(
        error.contains(&format!("changelog `{changelog}`"))
            && error.contains("cleanup.policy is `delete`, not `compact`"),
        "{error}"
    );
}

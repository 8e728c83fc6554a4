//! Real brokers failing under a running node, on Apache Kafka clusters this
//! test starts for itself (`tests/kafka/cluster.sh`):
//! - three brokers, replication factor 3, `min.insync.replicas=2`,
//!   `acks=all`: the broker leading a busy partition is SIGKILLed mid-stream
//!   and started again; nothing is lost, per-key order holds, and the node
//!   rides it out without restarting an actor;
//! - the only broker of a one-broker cluster is down for 10 s while records
//!   are produced around the outage; nothing is lost.
//!
//! Each prints its counts (sent, received, lost, duplicates) and asserts them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use scribe::{RunningNode, TopicSpec};
use scribe_tests::actors::{Relay, RelayArgs, keyed_numbers, numbers_in, produce_numbers};
use scribe_tests::{ApacheKafka, Listener, TestKafka, unique};

struct Counts {
    received: usize,
    lost: usize,
    duplicates: usize,
    in_order: bool,
}

/// Reads `output` until all `sent` numbers are there (or 3 minutes pass)
/// and counts; per-key order is judged on first occurrences, per partition.
async fn count(kafka: &TestKafka, output: &str, sent: i64) -> Counts {
    let mut out = Vec::new();
    for _ in 0..36 {
        out = kafka.read(output, usize::MAX, Duration::from_secs(5)).await;
        let distinct: BTreeSet<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
        if distinct.len() as i64 >= sent {
            break;
        }
    }
    let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for r in &out {
        by_partition.entry(r.partition).or_default().push(r.clone());
    }
    let mut seen = BTreeSet::new();
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for records in by_partition.values_mut() {
        records.sort_by_key(|r| r.offset);
        for n in numbers_in(records) {
            if seen.insert(n.seq) {
                per_key.entry(n.key).or_default().push(n.seq);
            }
        }
    }
    Counts {
        received: out.len(),
        lost: (0..sent).filter(|s| !seen.contains(s)).count(),
        duplicates: out.len() - seen.len(),
        in_order: per_key.values().all(|s| s.windows(2).all(|w| w[0] < w[1])),
    }
}

async fn relay(
    kafka: &TestKafka,
    input: &str,
    output: &str,
    actor: &str,
    replication: i32,
) -> RunningNode {
    kafka
        .node("brokers")
        .default_topic(TopicSpec {
            replication,
            ..TopicSpec::default()
        })
        .actor::<Relay>(
            actor,
            output,
            RelayArgs {
                delay: Duration::from_micros(500),
                ..RelayArgs::reading(input)
            },
        )
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts")
}

#[actix::test]
async fn the_leader_of_a_busy_partition_killed_and_restarted_loses_nothing() {
    let Some(cluster) = ApacheKafka::start_own("the_leader_of_a_busy_partition", 3) else {
        return;
    };
    let kafka = TestKafka::external(cluster.bootstrap(Listener::Plaintext));
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    produce_numbers(&kafka, &input, keyed_numbers(0..6000, 12));
    let node = relay(&kafka, &input, &output, &actor, 3).await;
    kafka.read(&output, 1000, Duration::from_secs(60)).await;
    let leader = cluster.leader(&input, 0);
    cluster.kill(leader);
    // Records keep coming while the partition's leadership moves.
    let producing = {
        let kafka = TestKafka::external(cluster.bootstrap(Listener::Plaintext));
        let input = input.clone();
        tokio::task::spawn_blocking(move || {
            produce_numbers(&kafka, &input, keyed_numbers(6000..9000, 12));
        })
    };
    let mut new_leader = leader;
    for _ in 0..60 {
        new_leader = cluster.leader(&input, 0);
        if new_leader != leader {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    producing.await.expect("produced while the leader was down");
    cluster.restart(leader);
    let counts = count(&kafka, &output, 9000).await;
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.expect("clean shutdown");
    println!(
        "leader {leader} of {input}/0 killed (new leader {new_leader}) and restarted: sent=9000 \
         received={} lost={} duplicates={} in_order={} restarts={}",
        counts.received, counts.lost, counts.duplicates, counts.in_order, stats.restarts
    );
    assert_ne!(new_leader, leader, "leadership moved");
    assert_eq!(counts.lost, 0);
    assert!(counts.in_order, "per-key order kept");
    assert_eq!(stats.restarts, 0, "the node rode it out without a restart");
}

#[actix::test]
async fn the_only_broker_down_for_ten_seconds_loses_nothing() {
    let Some(cluster) = ApacheKafka::start_own("the_only_broker_down", 1) else {
        return;
    };
    let kafka = TestKafka::external(cluster.bootstrap(Listener::Plaintext));
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    produce_numbers(&kafka, &input, keyed_numbers(0..3000, 12));
    let node = relay(&kafka, &input, &output, &actor, 1).await;
    kafka.read(&output, 500, Duration::from_secs(60)).await;
    cluster.kill(1);
    // Produced while the broker is down: the producer holds them until it
    // is back.
    let producing = {
        let kafka = TestKafka::external(cluster.bootstrap(Listener::Plaintext));
        let input = input.clone();
        tokio::task::spawn_blocking(move || {
            produce_numbers(&kafka, &input, keyed_numbers(3000..4000, 12));
        })
    };
    // The outage this scenario is about lasts 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.restart(1);
    producing.await.expect("produced around the outage");
    produce_numbers(&kafka, &input, keyed_numbers(4000..5000, 12));
    let counts = count(&kafka, &output, 5000).await;
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.expect("clean shutdown");
    println!(
        "only broker down 10 s: sent=5000 received={} lost={} duplicates={} in_order={} restarts={}",
        counts.received, counts.lost, counts.duplicates, counts.in_order, stats.restarts
    );
    assert_eq!(counts.lost, 0);
    assert!(counts.in_order, "per-key order kept");
}

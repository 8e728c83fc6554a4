//! An actor asks another over Kafka from inside its handler: it publishes
//! each request on the topic it owns (`Publisher::ask`), the responder
//! answers on the topic *it* owns, and the asker continues with the typed
//! reply (`Publisher::publish_answered`). The record that asked commits
//! only once the reply was dealt with and the continuation's output was
//! acknowledged; replies reach the instance that asked when two nodes share
//! the asker's partitions; a failing responder answers with an error reply;
//! the pending bound holds; requests time out; a request left unanswered by
//! a stopped node is asked again by the next, and only one outcome results.

use std::sync::atomic::Ordering;
use std::time::Duration;

use scribe::RunningNode;
use scribe::prelude::*;
use scribe_tests::actors::produce_numbers;
use scribe_tests::asking::{Asker, AskerArgs, Doubler, Probe};
use scribe_tests::records::{Doubled, Number};
use scribe_tests::{TestKafka, unique};

const WAIT: Duration = Duration::from_secs(120);

struct Topics {
    jobs: String,
    asks: String,
    answers: String,
}

async fn topics(kafka: &TestKafka) -> Topics {
    let t = Topics {
        jobs: unique("jobs"),
        asks: unique("asks"),
        answers: unique("answers"),
    };
    for topic in [&t.jobs, &t.asks, &t.answers] {
        kafka.create_topic(topic, 4).await;
        kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    }
    t
}

async fn responder(kafka: &TestKafka, t: &Topics, fails_at: Option<i64>) -> RunningNode {
    kafka
        .node(&unique("doubler-node"))
        .actor::<Doubler>("doubler", &t.answers, (t.asks.clone(), fails_at))
        .failure_policy(
            "doubler",
            scribe::FailurePolicy {
                retries: 1,
                backoff: Duration::from_millis(10),
                ..Default::default()
            },
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn asker(
    kafka: &TestKafka,
    t: &Topics,
    name: &str,
    options: fn(RequesterOptions) -> RequesterOptions,
) -> (RunningNode, Probe) {
    let probe = Probe::default();
    let args = AskerArgs {
        jobs: t.jobs.clone(),
        answers: t.answers.clone(),
        options,
        probe: probe.clone(),
    };
    let node = kafka
        .node(&unique("asker-node"))
        .actor::<Asker>(name, &t.asks, args)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    (node, probe)
}

/// The outcomes on the asker's topic, once `count` are there: `(seq,
/// value)` of each `Doubled` (the topic carries the requests too).
async fn outcomes(kafka: &TestKafka, asks: &str, count: usize) -> Vec<(i64, i64)> {
    let decoder =
        scribe::codec::Decoder::<Doubled>::new(scribe::SchemaRegistry::new()).expect("schema");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut want = count;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let records = kafka.read(asks, want, left).await;
        let done: Vec<(i64, i64)> = records
            .iter()
            .filter(|r| r.header("ce_type") == "scribe.test.Doubled")
            .map(|r| {
                let done = decoder.decode(&r.value).expect("a Doubled");
                (done.seq, done.value)
            })
            .collect();
        if done.len() >= count || left.is_zero() {
            return done;
        }
        // Requests came among them: read as many more as are missing.
        want = records.len() + count - done.len();
    }
}

/// Waits until `group` has committed `offsets` on `topic` in all.
async fn committed(kafka: &TestKafka, group: &str, topic: &str, offsets: i64) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if kafka.committed(group, topic).await == offsets {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn counted(outcomes: &[(i64, i64)], jobs: i64) -> (usize, usize) {
    let mut seen = std::collections::BTreeMap::new();
    for (seq, _) in outcomes {
        *seen.entry(*seq).or_insert(0) += 1;
    }
    let lost = (0..jobs).filter(|s| !seen.contains_key(s)).count();
    let duplicates = seen.values().map(|n| n - 1).sum();
    (lost, duplicates)
}

/// Jobs `0..n`, under 64 keys: spread over every partition.
fn jobs(n: i64) -> impl Iterator<Item = Number> {
    (0..n).map(|seq| Number {
        key: format!("k{}", seq % 64),
        seq,
    })
}

#[actix::test]
async fn an_actor_continues_with_each_reply_and_commits_after_it() {
    const JOBS: i64 = 200;
    const FAILS_AT: i64 = 13;
    let kafka = TestKafka::from_env();
    let t = topics(&kafka).await;
    let responder = responder(&kafka, &t, Some(FAILS_AT)).await;
    let name = unique("asker");
    let (asker, probe) = asker(&kafka, &t, &name, |o| o.timeout(WAIT)).await;
    produce_numbers(&kafka, &t.jobs, jobs(JOBS));

    let done = outcomes(&kafka, &t.asks, JOBS as usize).await;
    let (lost, duplicates) = counted(&done, JOBS);
    let wrong: Vec<_> = done
        .iter()
        .filter(|(seq, value)| *value != if *seq == FAILS_AT { -1 } else { 2 * seq })
        .collect();
    // Every job's record commits once its outcome is acknowledged.
    let committed = committed(&kafka, &name, &t.jobs, JOBS).await;
    let stats = *probe.stats.lock().unwrap();
    asker.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
    println!(
        "jobs {JOBS}: outcomes {}, lost {lost}, duplicates {duplicates}, wrong {}; requester {stats:?}",
        done.len(),
        wrong.len()
    );
    assert_eq!((done.len(), lost, duplicates), (JOBS as usize, 0, 0));
    assert!(wrong.is_empty(), "{wrong:?}");
    assert_eq!(stats.sent, JOBS as u64);
    assert_eq!((stats.answered, stats.refused), (JOBS as u64 - 1, 1));
    assert_eq!((stats.timed_out, stats.late), (0, 0));
    assert!(committed, "the jobs' offsets all commit");
}

#[actix::test]
async fn replies_reach_the_instance_that_asked_with_two_asker_nodes() {
    const JOBS: i64 = 400;
    let kafka = TestKafka::from_env();
    let t = topics(&kafka).await;
    let responder = responder(&kafka, &t, None).await;
    // One actor, two nodes: its consumer group shares the jobs' partitions
    // between them, and the replies' partitions follow the responder's
    // keys, not the asker's instances.
    let name = unique("asker");
    let (a, probe_a) = asker(&kafka, &t, &name, |o| o.timeout(WAIT)).await;
    let (b, probe_b) = asker(&kafka, &t, &name, |o| o.timeout(WAIT)).await;
    // Both instances hold some of the 4 partitions, and all 4 are held,
    // before the jobs come.
    let shared = TestKafka::eventually(WAIT, || {
        let held = |node: &RunningNode| node.stats(&name).map_or(0, |s| s.assigned_partitions);
        let (in_a, in_b) = (held(&a), held(&b));
        in_a > 0 && in_b > 0 && in_a + in_b == 4
    })
    .await;
    assert!(shared, "both nodes hold some of the jobs' partitions");
    produce_numbers(&kafka, &t.jobs, jobs(JOBS));
    let done = outcomes(&kafka, &t.asks, JOBS as usize).await;
    let (lost, duplicates) = counted(&done, JOBS);
    let wrong = done.iter().filter(|(seq, value)| *value != 2 * seq).count();
    let (sa, sb) = (
        *probe_a.stats.lock().unwrap(),
        *probe_b.stats.lock().unwrap(),
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
    println!(
        "jobs {JOBS}: outcomes {} (lost {lost}, duplicates {duplicates}, wrong {wrong}); node a asked {} and passed over {} replies of b's, node b asked {} and passed over {} of a's",
        done.len(),
        sa.sent,
        sa.others,
        sb.sent,
        sb.others
    );
    assert_eq!(
        (done.len(), lost, duplicates, wrong),
        (JOBS as usize, 0, 0, 0)
    );
    assert!(sa.sent > 0 && sb.sent > 0, "both nodes asked");
    assert_eq!(sa.answered + sb.answered, JOBS as u64);
    assert_eq!(sa.timed_out + sb.timed_out, 0);
}

#[actix::test]
async fn the_pending_bound_holds_and_requests_time_out_without_a_responder() {
    const JOBS: i64 = 20;
    let kafka = TestKafka::from_env();
    let t = topics(&kafka).await;
    let name = unique("asker");
    let (asker, probe) = asker(&kafka, &t, &name, |o| {
        o.max_pending(5).timeout(Duration::from_secs(3))
    })
    .await;
    produce_numbers(&kafka, &t.jobs, jobs(JOBS));
    let done = outcomes(&kafka, &t.asks, JOBS as usize).await;
    let stats = *probe.stats.lock().unwrap();
    let max_pending = probe.max_pending.load(Ordering::SeqCst);
    asker.shutdown().await.unwrap();
    let refused = done.iter().filter(|(_, v)| *v == -2).count();
    let timed_out = done.iter().filter(|(_, v)| *v == -3).count();
    println!(
        "jobs {JOBS}: {timed_out} asked and timed out, {refused} refused by the bound; at most {max_pending} pending"
    );
    let (lost, duplicates) = counted(&done, JOBS);
    assert_eq!((lost, duplicates), (0, 0));
    assert_eq!(refused + timed_out, JOBS as usize);
    assert!((1..=5).contains(&max_pending), "{max_pending}");
    assert_eq!(stats.timed_out, timed_out as u64);
    assert_eq!(stats.sent, timed_out as u64);
}

#[actix::test]
async fn a_request_left_unanswered_is_asked_again_by_the_next_instance() {
    let kafka = TestKafka::from_env();
    let t = topics(&kafka).await;
    let name = unique("asker");
    // No responder yet: the job is asked, and waits.
    let (first, _) = asker(&kafka, &t, &name, |o| o.timeout(WAIT)).await;
    produce_numbers(&kafka, &t.jobs, jobs(1));
    assert_eq!(kafka.read(&t.asks, 1, WAIT).await.len(), 1, "asked once");
    // Stopped while waiting: the job's offset is not committed.
    first.shutdown().await.unwrap();
    assert_eq!(kafka.committed(&name, &t.jobs).await, 0);

    let responder = responder(&kafka, &t, None).await;
    let (second, probe) = asker(&kafka, &t, &name, |o| o.timeout(WAIT)).await;
    // Two requests (the first instance's and the second's), both answered;
    // one outcome, by the instance that was waiting.
    let done = outcomes(&kafka, &t.asks, 1).await;
    let committed = committed(&kafka, &name, &t.jobs, 1).await;
    let answers = kafka.read(&t.answers, 2, WAIT).await.len();
    let stats = *probe.stats.lock().unwrap();
    second.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
    println!(
        "asked twice, answered {answers} times, outcomes {done:?}; the second instance {stats:?}"
    );
    assert_eq!(done, vec![(0, 0)]);
    assert_eq!(answers, 2);
    assert_eq!(stats.answered, 1);
    assert!(committed, "committed once its outcome is acknowledged");
}

#[test]
fn scribe_graph_draws_the_declared_reply_arrow() {
    let t = Topics {
        jobs: "jobs".into(),
        asks: "asks".into(),
        answers: "answers".into(),
    };
    let node = scribe::Node::builder("n")
        .broker(scribe::Broker::bootstrap("127.0.0.1:1"))
        .actor::<Asker>(
            "asker",
            &t.asks,
            AskerArgs {
                jobs: t.jobs.clone(),
                answers: t.answers.clone(),
                options: |o| o,
                probe: Probe::default(),
            },
        )
        .actor::<Doubler>("doubler", &t.answers, (t.asks.clone(), None))
        .build()
        .expect("the pairing fits");
    let config: scribe_cli::settings::NodeConfig = serde_json::from_value(serde_json::json!({
        "node": {"name": "n"},
        "actors": [
            {"name": "asker", "kind": "asker", "output": "asks"},
            {"name": "doubler", "kind": "doubler", "output": "answers"},
        ],
    }))
    .unwrap();
    let actors = node.actors();
    let deployment = scribe_cli::Deployment {
        nodes: vec![scribe_cli::Loaded { config, node }],
        external: Vec::new(),
        actors,
    };
    let graph = scribe_cli::graph(&deployment, scribe_cli::Format::Mermaid);
    println!("{graph}");
    assert!(
        graph.contains("t_answers -- \"reply scribe.test.Number\" --> a_asker"),
        "{graph}"
    );
    assert!(graph.contains("a_asker -- "), "{graph}");
}

//! An actor's failure policy on a broker: handler errors retried in place,
//! records past their retries dead-lettered, panics retried by restarts
//! then dead-lettered, and the restart budget stopping the actor or the node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use scribe::{Exhausted, FailurePolicy, OverBudget, RunningNode};
use scribe_tests::actors::{Relay, RelayArgs, numbers_in, produce_numbers};
use scribe_tests::records::Number;
use scribe_tests::{RawRecord, TestKafka, unique};

struct Setup {
    kafka: TestKafka,
    input: String,
    output: String,
    actor: String,
}

async fn setup(records: i64) -> Setup {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    produce_numbers(
        &kafka,
        &input,
        (0..records).map(|seq| Number {
            key: "k".into(),
            seq,
        }),
    );
    Setup {
        kafka,
        input,
        output,
        actor,
    }
}

fn quick(policy: FailurePolicy) -> FailurePolicy {
    FailurePolicy {
        backoff: Duration::from_millis(20),
        ..policy
    }
}

async fn start(s: &Setup, args: RelayArgs, policy: FailurePolicy) -> RunningNode {
    s.kafka
        .node("policy")
        .actor::<Relay>(&s.actor, &s.output, args)
        .failure_policy(&s.actor, policy)
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts")
}

/// The output's sequence numbers, first occurrences only, once `until` shows up.
async fn seqs_until(s: &Setup, until: i64) -> Vec<i64> {
    let mut firsts = Vec::new();
    for _ in 0..60 {
        let out = s
            .kafka
            .read(&s.output, usize::MAX, Duration::from_millis(500))
            .await;
        firsts.clear();
        for n in numbers_in(&out) {
            if !firsts.contains(&n.seq) {
                firsts.push(n.seq);
            }
        }
        if firsts.contains(&until) {
            break;
        }
    }
    firsts
}

async fn dead_letters(s: &Setup, count: usize) -> Vec<RawRecord> {
    s.kafka
        .read(&format!("{}.dlq", s.output), count, Duration::from_secs(30))
        .await
}

#[actix::test]
async fn a_handler_error_is_retried_in_place_until_it_succeeds() {
    let s = setup(20).await;
    let args = RelayArgs {
        fail_at: Some((5, 2)),
        ..RelayArgs::reading(&s.input)
    };
    let node = start(&s, args, quick(FailurePolicy::default())).await;
    let seqs = seqs_until(&s, 19).await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>(), "{stats:?}");
    assert_eq!(
        (stats.retried, stats.restarts, stats.dead_lettered),
        (2, 0, 0),
        "{stats:?}"
    );
}

#[actix::test]
async fn a_record_failing_past_its_retries_is_dead_lettered_and_the_rest_handled() {
    let s = setup(20).await;
    let args = RelayArgs {
        fail_at: Some((5, u32::MAX)),
        ..RelayArgs::reading(&s.input)
    };
    let policy = quick(FailurePolicy {
        retries: 2,
        ..FailurePolicy::default()
    });
    let node = start(&s, args, policy).await;
    let seqs = seqs_until(&s, 19).await;
    let dead = dead_letters(&s, 1).await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    let expected: Vec<i64> = (0..20).filter(|&q| q != 5).collect();
    assert_eq!(seqs, expected, "{stats:?}");
    assert_eq!(dead.len(), 1);
    assert_eq!(numbers_in(&dead)[0].seq, 5);
    assert_eq!(dead[0].header("scribe_dlq_attempts"), "3");
    assert!(
        dead[0]
            .header("scribe_dlq_error")
            .contains("injected error at seq 5")
    );
    assert_eq!(
        (stats.retried, stats.restarts, stats.dead_lettered),
        (2, 0, 1),
        "{stats:?}"
    );
}

#[actix::test]
async fn a_record_that_always_panics_is_retried_by_restarts_then_dead_lettered() {
    let s = setup(20).await;
    let args = RelayArgs {
        panic_always_at: Some(7),
        ..RelayArgs::reading(&s.input)
    };
    let policy = FailurePolicy {
        retries: 2,
        ..FailurePolicy::default()
    };
    let node = start(&s, args, policy).await;
    let seqs = seqs_until(&s, 19).await;
    let dead = dead_letters(&s, 1).await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    let expected: Vec<i64> = (0..20).filter(|&q| q != 7).collect();
    let lost = 20 - seqs.len() - dead.len();
    println!(
        "sent=20 handled={} dead_lettered={} lost={lost} restarts={}",
        seqs.len(),
        dead.len(),
        stats.restarts
    );
    assert_eq!(lost, 0);
    assert_eq!(seqs, expected, "{stats:?}");
    assert_eq!(numbers_in(&dead)[0].seq, 7);
    assert_eq!(dead[0].header("scribe_dlq_attempts"), "3");
    assert!(
        dead[0]
            .header("scribe_dlq_error")
            .contains("injected panic at seq 7")
    );
    assert_eq!((stats.restarts, stats.dead_lettered), (3, 1), "{stats:?}");
    assert!(!stats.unhealthy);
}

#[actix::test]
async fn past_its_restart_budget_an_actor_stays_stopped_and_unhealthy() {
    let s = setup(5).await;
    let failures = Arc::new(AtomicU32::new(0));
    let args = RelayArgs {
        panic_always_at: Some(0),
        failures: failures.clone(),
        ..RelayArgs::reading(&s.input)
    };
    let policy = FailurePolicy {
        retries: 100,
        max_restarts: 2,
        ..FailurePolicy::default()
    };
    let node = start(&s, args, policy).await;
    assert!(
        TestKafka::eventually(Duration::from_secs(30), || node
            .stats(&s.actor)
            .unwrap()
            .unhealthy)
        .await,
        "the actor is reported unhealthy"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    assert_eq!(stats.restarts, 2, "{stats:?}");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        3,
        "no attempt after the budget"
    );
}

#[actix::test]
async fn past_its_restart_budget_an_actor_can_stop_the_node() {
    let s = setup(5).await;
    let args = RelayArgs {
        panic_always_at: Some(0),
        ..RelayArgs::reading(&s.input)
    };
    let policy = FailurePolicy {
        retries: 100,
        max_restarts: 1,
        over_budget: OverBudget::StopNode,
        ..FailurePolicy::default()
    };
    let node = start(&s, args, policy).await;
    let outcome = tokio::time::timeout(Duration::from_secs(30), node.run_until_signal())
        .await
        .expect("the node stops by itself");
    let error = outcome.expect_err("stopping on the budget is an error");
    assert!(
        error
            .to_string()
            .contains(&format!("actor `{}` failed 2 times", s.actor)),
        "{error}"
    );
}

#[actix::test]
async fn with_then_stop_a_record_past_its_retries_stops_the_actor_uncommitted() {
    let s = setup(10).await;
    let args = RelayArgs {
        fail_at: Some((4, u32::MAX)),
        ..RelayArgs::reading(&s.input)
    };
    let policy = quick(FailurePolicy {
        retries: 1,
        then: Exhausted::Stop,
        ..FailurePolicy::default()
    });
    let node = start(&s, args, policy).await;
    assert!(
        TestKafka::eventually(Duration::from_secs(30), || node
            .stats(&s.actor)
            .unwrap()
            .unhealthy)
        .await
    );
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    let committed = s.kafka.committed(&s.actor, &s.input).await;
    assert_eq!(
        committed, 4,
        "records before the failing one commit, it does not"
    );
    assert_eq!(
        (stats.handled, stats.dead_lettered, stats.restarts),
        (4, 0, 0),
        "{stats:?}"
    );
}

/// The actor's thread panics outside any handler right after a record was
/// dead-lettered: no offset commits past a dead letter the broker has not
/// acknowledged, so the record is on the dead-letter topic, or is read
/// again and dead-lettered then.
#[actix::test]
async fn a_panic_right_after_dead_lettering_commits_nothing_past_an_unwritten_dead_letter() {
    let s = setup(10).await;
    let args = RelayArgs {
        fail_then_panic_outside_at: Some(3),
        ..RelayArgs::reading(&s.input)
    };
    let policy = quick(FailurePolicy {
        retries: 0,
        ..FailurePolicy::default()
    });
    let node = start(&s, args, policy).await;
    // On the embedded broker every acknowledgement takes a while: the dead
    // letter is still unacknowledged when the thread panics.
    if let Some(broker) = s.kafka.embedded_broker() {
        broker
            .set_round_trip_time(1, Duration::from_millis(300))
            .unwrap();
    }
    let out = s.kafka.read(&s.output, 9, Duration::from_secs(60)).await;
    if let Some(broker) = s.kafka.embedded_broker() {
        broker.set_round_trip_time(1, Duration::ZERO).unwrap();
    }
    let mut committed = 0;
    for _ in 0..600 {
        committed = s.kafka.committed(&s.actor, &s.input).await;
        if committed >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = s
        .kafka
        .read(
            &format!("{}.dlq", s.output),
            usize::MAX,
            Duration::from_secs(5),
        )
        .await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.unwrap();
    let seqs: std::collections::BTreeSet<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
    let dead_seqs: Vec<i64> = numbers_in(&dead).iter().map(|n| n.seq).collect();
    println!(
        "sent=10 handled={} dead_letters={dead_seqs:?} restarts={} committed={committed}",
        seqs.len(),
        stats.restarts
    );
    assert_eq!(committed, 10, "{stats:?}");
    assert_eq!(seqs.len(), 9, "every other record handled");
    assert!(
        dead_seqs.contains(&3),
        "the offset committed past 3, so its dead letter is written"
    );
    assert!(
        stats.restarts >= 1,
        "the panic restarted the actor: {stats:?}"
    );
}

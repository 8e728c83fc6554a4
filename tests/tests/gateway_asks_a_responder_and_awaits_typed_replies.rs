//! A gateway (code that is not an actor) asks a responder actor over
//! Kafka: it publishes requests on the topic it owns and awaits typed
//! replies the responder publishes on the topic it owns, matched by the
//! reply's `causation_id`. 10 000 concurrent requests are all answered;
//! two gateways on the same topics each get their own replies; with the
//! responder stopped requests time out, the pending bound holds, and once
//! it is back requests are answered again while the replies to the timed
//! out ones are counted late and dropped. A responder that cannot handle a
//! request answers with an error reply, which the gateway returns at once
//! and every other reader of the topic passes over.

use std::time::{Duration, Instant};

use futures::future::join_all;
use scribe::{Error, GatewayOptions, RunningNode};
use scribe_tests::actors::{Relay, RelayArgs};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

async fn responder(kafka: &TestKafka, name: &str, requests: &str, replies: &str) -> RunningNode {
    kafka
        .node(&unique("responder"))
        .actor::<Relay>(name, replies, RelayArgs::reading(requests))
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("responder starts")
}

/// A node with no actors: where the gateways live.
async fn front(kafka: &TestKafka) -> RunningNode {
    kafka
        .node(&unique("front"))
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("front starts")
}

fn number(seq: i64) -> Number {
    Number {
        key: format!("k{}", seq % 16),
        seq,
    }
}

#[actix::test]
async fn ten_thousand_concurrent_requests_are_all_answered() {
    const REQUESTS: i64 = 10_000;
    let kafka = TestKafka::from_env();
    let (requests, replies) = (unique("ask"), unique("answer"));
    kafka.create_topic(&requests, 4).await;
    kafka.create_topic(&replies, 4).await;
    let responder = responder(&kafka, &unique("echo"), &requests, &replies).await;
    let front = front(&kafka).await;
    let gateway = front
        .gateway::<Number, Number>(
            GatewayOptions::new("web", &requests, &replies).timeout(Duration::from_secs(120)),
        )
        .await
        .expect("gateway starts");

    let started = Instant::now();
    let answers = join_all((0..REQUESTS).map(|seq| {
        let gateway = &gateway;
        async move {
            let asked = Instant::now();
            let request = number(seq);
            let reply = gateway.ask(&request.key, &request).await;
            (seq, reply, asked.elapsed())
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = Vec::new();
    let (mut right, mut wrong, mut failed) = (0, 0, 0);
    for (seq, reply, latency) in answers {
        match reply {
            Ok(reply) if reply.seq == seq => {
                right += 1;
                latencies.push(latency);
            }
            Ok(_) => wrong += 1,
            Err(error) => {
                failed += 1;
                eprintln!("request {seq}: {error}");
            }
        }
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let stats = gateway.stats();
    println!(
        "sent {REQUESTS}, answered {right}, wrong {wrong}, failed {failed}; {:.0} requests/s, p99 {p99:?} (all in flight at once); {stats:?}",
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!((right, wrong, failed), (REQUESTS, 0, 0));
    assert_eq!(stats.answered, REQUESTS as u64);
    assert_eq!((stats.late, stats.others, stats.undecodable), (0, 0, 0));
    assert_eq!(gateway.pending(), 0);

    // One at a time: the round trip of a lone request (figures to read).
    let mut lone = Vec::new();
    for seq in 0..200 {
        let asked = Instant::now();
        let request = number(REQUESTS + seq);
        let reply = gateway.ask(&request.key, &request).await.expect("answered");
        assert_eq!(reply.seq, request.seq);
        lone.push(asked.elapsed());
    }
    lone.sort();
    println!(
        "one at a time: 200 requests, p50 {:?}, p99 {:?}",
        lone[100], lone[198]
    );
    gateway.close().await;
    front.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
}

/// Asks `count` numbers from `base` at once; whether each reply was its own.
async fn ask_all(
    gateway: &scribe::Gateway<Number, Number>,
    base: i64,
    count: i64,
) -> Vec<Result<bool, Error>> {
    join_all((base..base + count).map(|seq| async move {
        let request = number(seq);
        gateway
            .ask(&request.key, &request)
            .await
            .map(|r| r.seq == seq)
    }))
    .await
}

#[actix::test]
async fn two_gateways_on_the_same_topics_each_get_their_own_replies() {
    const EACH: i64 = 500;
    let kafka = TestKafka::from_env();
    let (requests, replies) = (unique("ask"), unique("answer"));
    kafka.create_topic(&requests, 3).await;
    kafka.create_topic(&replies, 3).await;
    let responder = responder(&kafka, &unique("echo"), &requests, &replies).await;
    // Two nodes, as two processes of a web tier would be.
    let (front_a, front_b) = (front(&kafka).await, front(&kafka).await);
    let options = GatewayOptions::new("web", &requests, &replies).timeout(Duration::from_secs(60));
    let a = front_a
        .gateway::<Number, Number>(options.clone())
        .await
        .unwrap();
    let b = front_b.gateway::<Number, Number>(options).await.unwrap();
    let (from_a, from_b) = futures::join!(ask_all(&a, 0, EACH), ask_all(&b, 100_000, EACH));
    let right = |answers: Vec<Result<bool, Error>>| {
        answers
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count()
    };
    let (right_a, right_b) = (right(from_a), right(from_b));
    // Each reads the other's replies too, and skips them: the last of
    // them may still be on their way once its own are all in.
    let all_seen = TestKafka::eventually(Duration::from_secs(60), || {
        a.stats().others == EACH as u64 && b.stats().others == EACH as u64
    })
    .await;
    let (sa, sb) = (a.stats(), b.stats());
    println!("a: {right_a} of {EACH} right, {sa:?}; b: {right_b} of {EACH} right, {sb:?}");
    assert_eq!((right_a, right_b), (EACH as usize, EACH as usize));
    assert!(all_seen, "each skipped the other's {EACH} replies");
    assert_eq!((sa.late, sb.late), (0, 0));
    a.close().await;
    b.close().await;
    front_a.shutdown().await.unwrap();
    front_b.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
}

#[actix::test]
async fn without_a_responder_requests_time_out_and_are_answered_once_it_is_back() {
    let kafka = TestKafka::from_env();
    let (requests, replies) = (unique("ask"), unique("answer"));
    kafka.create_topic(&requests, 2).await;
    kafka.create_topic(&replies, 2).await;
    let front = front(&kafka).await;
    let gateway = front
        .gateway::<Number, Number>(
            GatewayOptions::new("web", &requests, &replies)
                .max_pending(2)
                .timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();

    // No responder: two requests fill the pending slots (for 5 s); a
    // third, asked once they do, waits for a slot and gives up after its
    // own 300 ms, saying so; the two time out waiting for their replies.
    let (one, two, three) = (number(1), number(2), number(3));
    let (first, second, third) =
        futures::join!(gateway.ask("k", &one), gateway.ask("k", &two), async {
            // Asked once the other two hold the slots.
            while gateway.pending() < 2 {
                tokio::task::yield_now().await;
            }
            gateway
                .ask_within("k", &three, Duration::from_millis(300))
                .await
        });
    for outcome in [&first, &second] {
        let message = outcome.as_ref().expect_err("no responder").to_string();
        assert!(
            message.contains(&format!("waited for the reply on `{replies}`")),
            "{message}"
        );
    }
    let message = third.expect_err("no slot").to_string();
    assert!(
        message.contains("waited for one of its pending slots"),
        "{message}"
    );
    assert_eq!(gateway.pending(), 0);

    // The responder comes: it answers the two requests that timed out
    // (late, dropped) and a new one (answered).
    let responder = responder(&kafka, &unique("echo"), &requests, &replies).await;
    let answered = gateway
        .ask_within("k", &number(4), Duration::from_secs(60))
        .await
        .expect("answered once the responder is back");
    assert_eq!(answered.seq, 4);
    let late_seen =
        TestKafka::eventually(Duration::from_secs(60), || gateway.stats().late == 2).await;
    let stats = gateway.stats();
    println!("{stats:?}");
    assert!(late_seen, "the two late replies are counted: {stats:?}");
    assert_eq!((stats.sent, stats.answered, stats.timed_out), (3, 1, 3));

    // A gateway may not publish to a topic an actor of its node owns.
    let owned = responder
        .gateway::<Number, Number>(GatewayOptions::new("web", &replies, &requests))
        .await
        .expect_err("the responder owns it");
    assert!(
        owned
            .to_string()
            .contains("writes it (one writer per topic)"),
        "{owned}"
    );
    // Nor ask an actor of its node in types that do not fit.
    let mistyped = responder
        .gateway::<Number, scribe_tests::records::Labeled>(GatewayOptions::new(
            "web", &requests, &replies,
        ))
        .await
        .expect_err("the responder writes numbers");
    assert!(
        mistyped.to_string().contains("cannot read what actor"),
        "{mistyped}"
    );
    gateway.close().await;
    front.shutdown().await.unwrap();
    responder.shutdown().await.unwrap();
}

#[actix::test]
async fn a_failing_responder_answers_with_an_error_reply_that_other_readers_pass_over() {
    const REQUESTS: i64 = 10;
    const FAILS_AT: i64 = 7;
    let kafka = TestKafka::from_env();
    let (requests, replies, watched) = (unique("ask"), unique("answer"), unique("watched"));
    for topic in [&requests, &replies, &watched] {
        kafka.create_topic(topic, 2).await;
        kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    }
    let (echo, watcher) = (unique("echo"), unique("watcher"));
    // The responder fails every time it handles FAILS_AT; a second actor
    // reads the reply topic, as any subscriber of it may.
    let node = kafka
        .node(&unique("responder"))
        .actor::<Relay>(
            &echo,
            &replies,
            RelayArgs {
                fail_at: Some((FAILS_AT, u32::MAX)),
                ..RelayArgs::reading(&requests)
            },
        )
        .actor::<Relay>(&watcher, &watched, RelayArgs::reading(&replies))
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("responder starts");
    let front = front(&kafka).await;
    let gateway = front
        .gateway::<Number, Number>(
            GatewayOptions::new("web", &requests, &replies).timeout(Duration::from_secs(120)),
        )
        .await
        .unwrap();
    let answers = join_all((0..REQUESTS).map(|seq| {
        let gateway = &gateway;
        async move {
            let request = number(seq);
            (seq, gateway.ask(&request.key, &request).await)
        }
    }))
    .await;
    let mut refused = Vec::new();
    for (seq, answer) in &answers {
        match answer {
            Ok(reply) => assert_eq!(reply.seq, *seq),
            Err(error @ Error::Refused { .. }) => refused.push((*seq, error.to_string())),
            Err(other) => panic!("request {seq}: {other}"),
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (seq, reason) = &refused[0];
    assert_eq!(*seq, FAILS_AT);
    assert!(
        reason.contains(&format!("injected error at seq {FAILS_AT}")),
        "the responder's reason: {reason}"
    );
    // The watcher passes the error reply over: it handles the nine
    // replies, skips one, dead-letters nothing.
    let watched_all = TestKafka::eventually(Duration::from_secs(60), || {
        node.stats(&watcher)
            .is_some_and(|s| s.handled == (REQUESTS - 1) as u64 && s.skipped == 1)
    })
    .await;
    let (responder, reader) = (node.stats(&echo).unwrap(), node.stats(&watcher).unwrap());
    println!(
        "sent {REQUESTS}, answered {}, refused {}; responder: dead-lettered {}, error replies {}; \
         watcher: handled {}, skipped {}, dead-lettered {}; {:?}",
        REQUESTS as usize - refused.len(),
        refused.len(),
        responder.dead_lettered,
        responder.error_replies,
        reader.handled,
        reader.skipped,
        reader.dead_lettered,
        gateway.stats()
    );
    assert!(
        watched_all,
        "the watcher handled 9 and skipped 1: {reader:?}"
    );
    assert_eq!((responder.dead_lettered, responder.error_replies), (1, 1));
    assert_eq!((reader.dead_lettered, reader.undecodable), (0, 0));
    assert_eq!(gateway.stats().refused, 1);
    gateway.close().await;
    front.shutdown().await.unwrap();
    node.shutdown().await.unwrap();
}

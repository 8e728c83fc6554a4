//! `GET /actors/NAME/state/KEY` on the admin endpoint: a stateful actor
//! (the tests' `Tally`, a count and a sum per key) answers each key's
//! committed value as JSON while its node holds the key's partition, and,
//! once a second node has taken part of the partitions, each key is
//! answered by exactly one node, the other naming the key's partition and
//! saying it does not hold it. Bad queries get a clear error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use scribe::RunningNode;
use scribe_tests::actors::{Tally, TallyArgs, expected_tallies, keyed_numbers, produce_numbers};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: i64 = 10;
const PARTITIONS: i32 = 4;

/// What the endpoint answered: status and body as JSON.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: serde_json::Value,
}

async fn get(node: &RunningNode, path: String) -> Answer {
    let addr = node.admin_addr().expect("an admin endpoint");
    let url = format!("http://{addr}{path}");
    let (status, text) = scribe_tests::http_request("GET", url.clone(), None).await;
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}")),
    }
}

async fn start(
    kafka: &TestKafka,
    node: &str,
    actor: &str,
    input: &str,
    output: &str,
) -> RunningNode {
    kafka
        .node(node)
        .admin("127.0.0.1:0".parse::<SocketAddr>().expect("an address"))
        .actor::<Tally>(
            actor,
            output,
            TallyArgs {
                input: input.to_owned(),
                also: Vec::new(),
            },
        )
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts")
}

/// Each key's tally once every number is counted: `{"count", "sum"}`.
fn final_tallies(numbers: &[Number]) -> BTreeMap<String, serde_json::Value> {
    let mut last = BTreeMap::new();
    for tallied in expected_tallies(numbers.iter().cloned()).into_values() {
        last.insert(
            tallied.key.clone(),
            serde_json::json!({ "count": tallied.count, "sum": tallied.sum }),
        );
    }
    last
}

/// Asks every node for every key until each key is answered with its
/// final tally by exactly one node and refused as not held by the others,
/// for up to two minutes. Returns, per key, the answers of the nodes.
async fn answers_settle(
    nodes: &[&RunningNode],
    actor: &str,
    expected: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, Vec<Answer>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = BTreeMap::new();
        for key in expected.keys() {
            let mut answers = Vec::new();
            for node in nodes {
                answers.push(get(node, format!("/actors/{actor}/state/{key}")).await);
            }
            all.insert(key.clone(), answers);
        }
        let settled = all.iter().all(|(key, answers)| {
            let held: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
            held.len() == 1
                && held[0].body["stores"]["tallies"] == expected[key]
                && answers.iter().filter(|a| a.status == 421).count() == nodes.len() - 1
        });
        if settled || tokio::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints and checks what the nodes answered: every key answered by one
/// node with its final tally, and by the others with its partition.
fn check(
    label: &str,
    expected: &BTreeMap<String, serde_json::Value>,
    all: &BTreeMap<String, Vec<Answer>>,
) {
    let (mut answered, mut right, mut redirected, mut wrong) = (0, 0, 0, 0);
    for (key, answers) in all {
        let holder: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
        answered += holder.len();
        if holder.len() == 1 && holder[0].body["stores"]["tallies"] == expected[key] {
            right += 1;
            let partition = &holder[0].body["partition"];
            for other in answers.iter().filter(|a| a.status != 200) {
                if other.status == 421
                    && &other.body["partition"] == partition
                    && other.body["held"] == false
                {
                    redirected += 1;
                } else {
                    println!("{key}: {other:?}");
                }
            }
        } else {
            wrong += 1;
            println!("{key}: {answers:?}");
        }
    }
    let nodes = all.values().next().map_or(0, Vec::len);
    println!(
        "{label}: keys={} answered={answered} right={right} redirected={redirected} wrong={wrong}",
        expected.len()
    );
    assert_eq!(
        (answered, right, wrong),
        (expected.len(), expected.len(), 0),
        "{label}"
    );
    assert_eq!(
        redirected,
        expected.len() * (nodes - 1),
        "{label}: the others name the partition"
    );
}

#[actix::test]
async fn each_key_is_answered_by_the_node_holding_its_partition() {
    let kafka = TestKafka::from_env();
    let id = unique("query");
    let (input, output, actor) = (
        format!("{id}.in"),
        format!("{id}.out"),
        format!("{id}-tally"),
    );
    kafka.create_topic(&input, PARTITIONS).await;
    let numbers: Vec<Number> = keyed_numbers(0..1000, KEYS).collect();
    produce_numbers(&kafka, &input, numbers[..500].iter().cloned());

    let first = start(&kafka, "query-1", &actor, &input, &output).await;
    let expected = final_tallies(&numbers[..500]);
    let all = answers_settle(&[&first], &actor, &expected).await;
    check("one node", &expected, &all);

    // Bad queries: an unknown store, an unknown actor, a key of no value.
    let unknown_store = get(&first, format!("/actors/{actor}/state/k1?store=nope")).await;
    println!("unknown store: {unknown_store:?}");
    assert_eq!(unknown_store.status, 400);
    assert!(
        unknown_store.body["error"]
            .as_str()
            .unwrap()
            .contains("no store `nope`")
    );
    let unknown_actor = get(&first, "/actors/nobody/state/k1".into()).await;
    assert_eq!(unknown_actor.status, 404, "{unknown_actor:?}");
    let absent = get(
        &first,
        format!("/actors/{actor}/state/absent?store=tallies"),
    )
    .await;
    println!("absent: {absent:?}");
    assert_eq!(absent.status, 404);
    assert_eq!(absent.body["held"], true);
    assert_eq!(absent.body["stores"]["tallies"], serde_json::Value::Null);

    let second = start(&kafka, "query-2", &actor, &input, &output).await;
    let split = TestKafka::eventually(Duration::from_secs(60), || {
        let held = |node: &RunningNode| node.stats(&actor).map_or(0, |s| s.assigned_partitions);
        held(&first) > 0 && held(&second) > 0 && held(&first) + held(&second) == PARTITIONS as u64
    })
    .await;
    assert!(split, "the group gives the second node partitions");
    produce_numbers(&kafka, &input, numbers[500..].iter().cloned());
    let expected = final_tallies(&numbers);
    let all = answers_settle(&[&first, &second], &actor, &expected).await;
    first.shutdown().await.expect("drained");
    second.shutdown().await.expect("drained");
    check("two nodes", &expected, &all);
}

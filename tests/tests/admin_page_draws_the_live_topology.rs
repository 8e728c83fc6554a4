//! The admin endpoint's page (`GET /`), loaded in a real headless browser
//! (Debian's `chromium-headless-shell`) while records flow: it draws every
//! actor and topic of the node, shows each actor's state, and its counts
//! and rates move between two loads. A screenshot is kept in `artifacts/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use scribe_tests::actors::{Relay, RelayArgs, encode_numbers, keyed_numbers};
use scribe_tests::{TestKafka, unique};

/// The headless browser (`SCRIBE_BROWSER`, else the first of Debian's
/// names on the `PATH`), or `None` to skip; with
/// `SCRIBE_REQUIRE_BROWSER=1` (CI sets it) a missing one fails the test.
fn browser() -> Option<String> {
    let candidates = match std::env::var("SCRIBE_BROWSER") {
        Ok(given) => vec![given],
        Err(_) => ["chromium-headless-shell", "chromium", "google-chrome"]
            .map(String::from)
            .to_vec(),
    };
    let found = candidates.into_iter().find(|binary| {
        Command::new(binary)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let required = std::env::var("SCRIBE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        found.is_some() || !required,
        "SCRIBE_REQUIRE_BROWSER=1 but no headless browser runs (.ci/run installs Debian's `chromium-headless-shell`)"
    );
    found
}

/// Loads `url` and returns the DOM after the page's scripts ran for
/// `budget` of the browser's virtual time (it refreshes every second).
fn dump_dom(browser: &str, url: &str, budget: Duration) -> String {
    let out = Command::new(browser)
        .args(headless())
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .args(["--dump-dom", url])
        .output()
        .expect("the browser runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

fn headless() -> [&'static str; 5] {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
    ]
}

/// The value of attribute `name` on the element whose `data-actor` is
/// `actor`, in a dumped DOM.
fn actor_attribute(dom: &str, actor: &str, name: &str) -> Option<String> {
    let named = dom.find(&format!("data-actor=\"{actor}\""))?;
    let tag_start = dom[..named].rfind('<')?;
    let tag = &dom[tag_start..named + dom[named..].find('>')?];
    assert!(
        tag.starts_with("<g class=\"actor\""),
        "the actor's box: {tag}"
    );
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(tag[at..at + tag[at..].find('"')?].to_owned())
}

fn updates(dom: &str) -> u64 {
    let key = "data-updates=\"";
    let at = dom.find(key).expect("the body counts its updates") + key.len();
    dom[at..at + dom[at..].find('"').unwrap()].parse().unwrap()
}

#[actix::test]
async fn the_page_draws_every_actor_and_topic_and_its_rates_move() {
    let Some(browser) = browser() else {
        println!("skipped: no headless browser (set SCRIBE_REQUIRE_BROWSER=1 to fail)");
        return;
    };
    let kafka = TestKafka::from_env();
    let [t0, t1, t2] = ["page.in", "page.mid", "page.out"].map(unique);
    let [a, b] = ["first", "second"].map(unique);
    for topic in [&t0, &t1, &t2] {
        kafka.create_topic(topic, 2).await;
    }
    let node = kafka
        .node(&unique("page"))
        .actor::<Relay>(&a, &t1, RelayArgs::reading(&t0))
        .actor::<Relay>(&b, &t2, RelayArgs::reading(&t1))
        .admin("127.0.0.1:0".parse().unwrap())
        // Lag comes from librdkafka's statistics: every 500 ms here.
        .kafka_property("statistics.interval.ms", "500")
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let url = format!("http://{}/", node.admin_addr().expect("listening"));

    // Records flow the whole time: 20 every 50 ms.
    let flowing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (flowing, bootstrap, topic) =
            (flowing.clone(), kafka.bootstrap().to_owned(), t0.clone());
        std::thread::spawn(move || {
            let producer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "5")
                .create()
                .expect("producer");
            let mut sent = 0i64;
            while flowing.load(Ordering::Acquire) {
                for (key, value) in encode_numbers(keyed_numbers(sent..sent + 20, 4)) {
                    let record = BaseRecord::to(&topic).key(&key).payload(&value);
                    producer.send(record).map_err(|(e, _)| e).expect("enqueued");
                }
                sent += 20;
                producer.poll(Duration::from_millis(50));
            }
            producer.flush(Duration::from_secs(30)).expect("flushed");
            sent
        })
    };
    let handled_by = |actor: &str| node.stats(actor).map_or(0, |s| s.handled);
    assert!(
        TestKafka::eventually(Duration::from_secs(60), || handled_by(&b) > 0).await,
        "records reach the second actor"
    );

    let browser_ = browser.clone();
    let url_ = url.clone();
    let first =
        tokio::task::spawn_blocking(move || dump_dom(&browser_, &url_, Duration::from_secs(3)))
            .await
            .unwrap();
    let before = handled_by(&a);
    assert!(
        TestKafka::eventually(Duration::from_secs(60), || handled_by(&a) > before + 100).await,
        "records keep flowing"
    );
    let (browser_, url_) = (browser.clone(), url.clone());
    let second =
        tokio::task::spawn_blocking(move || dump_dom(&browser_, &url_, Duration::from_secs(3)))
            .await
            .unwrap();

    // Every actor and topic is drawn, the actors as running.
    for dom in [&first, &second] {
        for actor in [&a, &b] {
            assert_eq!(
                actor_attribute(dom, actor, "data-state").as_deref(),
                Some("running"),
                "actor {actor} drawn running"
            );
        }
        for topic in [&t0, &t1, &t2] {
            assert!(
                dom.contains(&format!("data-topic=\"{topic}\"")),
                "topic {topic} drawn"
            );
        }
        assert!(updates(dom) >= 2, "the page refreshed itself");
    }
    // What the page shows moves with the records: the first actor's
    // count grew between the two loads, and its rate is drawn on the
    // edge to its topic.
    let count = |dom: &str| -> u64 {
        actor_attribute(dom, &a, "data-handled")
            .expect("a count")
            .parse()
            .unwrap()
    };
    let (then, now) = (count(&first), count(&second));
    assert!(now > then, "handled {then} then {now}");
    let rate_label = format!("id=\"rate:{a}\"");
    let at = second.find(&rate_label).expect("a rate on the edge out");
    let text = &second[at..at + second[at..].find("</text>").unwrap()];
    assert!(text.ends_with("/s"), "a rate per second: {text}");
    let lag_label = format!("id=\"lag:{b}:{t1}\"");
    let at = second.find(&lag_label).expect("a lag on the edge in");
    let text = &second[at..at + second[at..].find("</text>").unwrap()];
    assert!(text.contains(">lag "), "the second actor's lag: {text}");

    // The screenshot, for people to look at (CI keeps `artifacts/`).
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("admin-page.png");
    let (browser_, url_, shot_) = (browser.clone(), url.clone(), shot.clone());
    let status = tokio::task::spawn_blocking(move || {
        Command::new(&browser_)
            .args(headless())
            .args(["--window-size=1280,800", "--virtual-time-budget=3000"])
            .arg(format!("--screenshot={}", shot_.display()))
            .arg(&url_)
            .output()
            .expect("the browser runs")
    })
    .await
    .unwrap();
    assert!(status.status.success());
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "a screenshot"
    );

    flowing.store(false, Ordering::Release);
    let sent = producer.join().unwrap();
    println!(
        "sent {sent}; page loads saw {a} handle {then} then {now}; updates {} and {}; screenshot {}",
        updates(&first),
        updates(&second),
        shot.display()
    );
    node.shutdown().await.expect("clean shutdown");
}

//! A node process running one relay of `Payload` records that takes
//! `--delay-us` per record: the slow actor of the overload test and the
//! backpressure benchmark, in a process of its own so its memory is
//! measured apart from the broker's and the producer's.
//!
//! `slow_node --bootstrap HOST:PORT --input TOPIC --output TOPIC --actor NAME
//!  [--delay-us N] [--queue-kbytes N]`. Runs until SIGTERM (drains) or SIGKILL.

use std::time::Duration;

use scribe::{Broker, Node};
use scribe_tests::actors::{PayloadRelay, PayloadRelayArgs};

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let required = |name: &str| arg(name).unwrap_or_else(|| panic!("{name} is required"));
    let bootstrap = required("--bootstrap");
    let input = required("--input");
    let output = required("--output");
    let actor = required("--actor");
    let delay_us: u64 = arg("--delay-us").and_then(|n| n.parse().ok()).unwrap_or(0);
    let queue_kbytes = arg("--queue-kbytes");
    actix::System::new().block_on(async move {
        let mut builder = Node::builder("slow-node")
            .broker(Broker::bootstrap(bootstrap))
            .commit_interval(Duration::from_millis(200))
            .consumer_property("fetch.wait.max.ms", "10")
            .consumer_property("session.timeout.ms", "6000")
            .consumer_property("heartbeat.interval.ms", "500");
        if let Some(kbytes) = queue_kbytes {
            builder = builder.consumer_property("queued.max.messages.kbytes", kbytes);
        }
        let args = PayloadRelayArgs {
            input,
            delay: Duration::from_micros(delay_us),
        };
        let node = builder
            .actor::<PayloadRelay>(actor, output, args)
            .build()
            .expect("valid topology")
            .start()
            .await
            .expect("node starts");
        if let Err(error) = node.run_until_signal().await {
            eprintln!("slow_node: {error}");
            std::process::exit(1);
        }
    });
}

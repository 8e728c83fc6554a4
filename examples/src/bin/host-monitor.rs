//! The example control-and-measurement system on one node.
//!
//! Run it with `cargo run -p scribe-examples --bin host-monitor`. With no
//! `--bootstrap` it starts an embedded Kafka-protocol broker in the process
//! and logs its address, so kcat or Python clients can watch the topics.
//! Load the CPU (`yes > /dev/null`) to see the alarm and the controller act.
//! Ctrl-C drains and commits before exiting.

use std::time::Duration;

use clap::Parser;
use scribe::{Broker, Node};
use scribe_examples::{HostMonitor, host_monitor};

/// Samples this host, summarises, alarms on CPU and prints what happens.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Kafka bootstrap servers; `embedded` starts a broker in the process.
    #[arg(long, env = "SCRIBE_BOOTSTRAP", default_value = "embedded")]
    bootstrap: String,
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0)]
    sample_every: f64,
    /// Seconds per summary window.
    #[arg(long, default_value_t = 5.0)]
    window: f64,
    /// Raise the CPU alarm above this mean CPU percentage.
    #[arg(long, default_value_t = 50.0)]
    cpu_high: f64,
    /// Clear the CPU alarm below this mean CPU percentage.
    #[arg(long, default_value_t = 30.0)]
    cpu_low: f64,
    /// Stop by itself after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long)]
    run_for: Option<f64>,
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
    let args = Args::parse();
    let broker = match args.bootstrap.as_str() {
        "embedded" => Broker::Embedded,
        servers => Broker::bootstrap(servers),
    };
    let settings = HostMonitor {
        sample_every: Duration::from_secs_f64(args.sample_every),
        window: Duration::from_secs_f64(args.window),
        cpu_high: args.cpu_high,
        cpu_low: args.cpu_low,
        ..HostMonitor::default()
    };
    let node = host_monitor(Node::builder("host-monitor").broker(broker), &settings)
        .build()?
        .start()
        .await?;
    println!(
        "host-monitor running on {}; summaries every {:?}. Ctrl-C stops it.",
        node.bootstrap_servers(),
        settings.window
    );
    match args.run_for {
        Some(seconds) => {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            node.shutdown().await?;
        }
        None => node.run_until_signal().await?,
    }
    Ok(())
}

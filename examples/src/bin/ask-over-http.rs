//! Ask an actor over HTTP: `GET /double/{n}` asks the doubler actor
//! through a gateway and answers with its reply.
//!
//! `cargo run -p scribe-examples --bin ask-over-http`, then `curl
//! localhost:8080/double/21`. With no `--bootstrap` an embedded broker
//! runs in the process. Ctrl-C stops the server, then drains the node.

use clap::Parser;
use scribe::{Broker, Node};
use scribe_examples::ask;

/// Serves `GET /double/{n}`, answered by an actor over Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Kafka bootstrap servers; `embedded` starts a broker in the process.
    #[arg(long, env = "SCRIBE_BOOTSTRAP", default_value = "embedded")]
    bootstrap: String,
    /// Where the HTTP endpoint listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let broker = match args.bootstrap.as_str() {
        "embedded" => Broker::Embedded,
        servers => Broker::bootstrap(servers),
    };
    let node = ask::doubler(Node::builder("ask-over-http").broker(broker))
        .build()?
        .start()
        .await?;
    let gateway = ask::gateway(&node).await?;
    tracing::info!(listen = %args.listen, "try: curl {}/double/21", args.listen);
    actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(ask::routes(gateway.clone()))
    })
    .workers(1)
    .bind(args.listen)?
    .run()
    .await?;
    node.shutdown().await?;
    Ok(())
}

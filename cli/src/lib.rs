//! The `scribe` command line: run, check and draw nodes from config files.
//!
//! A program gets it whole by registering its actor kinds and calling
//! [`main`]; the `scribe` binary (`src/main.rs`) does that with the
//! standard actors.

pub mod acls;
pub mod asyncapi;
mod deployment;
mod error;
pub mod settings;
mod status;
mod tools;

pub use deployment::{Deployment, Format, Loaded, check, check_registry, graph, load};
pub use error::{Error, Result};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{NodeConfig, Registry};

/// Runs and inspects scribe nodes described by configuration files.
#[derive(Debug, Parser)]
#[command(name = "scribe", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node a config file describes, until Ctrl-C or SIGTERM.
    ///
    /// The first signal drains: actors stop taking records, finish the one
    /// in hand, flush and commit, then the process exits 0. A second signal
    /// exits at once.
    Run {
        /// The node's configuration file (TOML or YAML).
        config: PathBuf,
    },
    /// Validate config files as one deployment, without touching Kafka.
    ///
    /// Checks each file (kinds, parameters, names, librdkafka properties)
    /// and, across all of them, the single-writer rule and that every
    /// subscriber can read what the topic's owner writes. Prints a summary.
    Check {
        /// The deployment's configuration files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Also ask this Confluent Schema Registry whether it would take
        /// the schema of each topic written with `encoding = "confluent"`,
        /// under its subject's compatibility level; exit 1 when it would
        /// refuse one. Each file's `[registry]` credentials and CA apply.
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
    },
    /// Print the deployment's topology: actors, topics, owners, readers and
    /// record types.
    Graph {
        /// The deployment's configuration files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Mermaid)]
        format: Format,
    },
    /// Print the deployment as an AsyncAPI 3.0 document (JSON): a channel
    /// per topic with its owner, each record type's Avro schema, and each
    /// actor's send and receive operations.
    ///
    /// Validates the files as `check` does first; touches no network.
    Asyncapi {
        /// The deployment's configuration files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Print the ACL bindings each node of the deployment needs, and
    /// nothing more, as `kafka-acls` command lines: its principal may write
    /// only the topics its actors own (and their dead-letter topics and
    /// changelogs), read the topics they subscribe to, and use their
    /// consumer groups and transactional ids. Applied with `allow.everyone.if.no.acl.found=false`,
    /// the brokers refuse any other writer.
    ///
    /// A node's principal is `kafka.security.principal`, else `User:` and
    /// its SASL user name. There is no `--apply`: rust-rdkafka has no ACL
    /// admin calls, so run the lines with Kafka's own tool (add
    /// `--command-config` with an administrator's credentials).
    Acls {
        /// The deployment's configuration files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Bootstrap servers for the command lines. The default is the first
        /// file's `kafka.bootstrap_servers`.
        #[arg(long)]
        bootstrap: Option<String>,
    },
    /// List the node's topics: owner, record type, partitions and, when the
    /// broker answers, end offsets.
    Topics {
        /// The node's configuration file.
        config: PathBuf,
        /// Bootstrap servers, overriding the file (needed when it says
        /// `embedded`: give the address `scribe run` logged).
        #[arg(long)]
        bootstrap: Option<String>,
    },
    /// Print a topic's records as JSON lines: key, headers, type and value
    /// (decoded with the schemas the node knows), like `kcat -C` but typed.
    Tail {
        /// The node's configuration file.
        config: PathBuf,
        /// The topic to read.
        topic: String,
        /// Start at the oldest record instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many records.
        #[arg(short = 'n', long = "count")]
        count: Option<usize>,
        /// With `-n`: give up (exit 1) when no record came for this long
        /// before the count was reached.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Bootstrap servers, overriding the file.
        #[arg(long)]
        bootstrap: Option<String>,
    },
    /// Show a running node's actors, one line each: state, records/s in
    /// and out, lag, records handled, handler failures and the last error.
    ///
    /// Reads the node's admin endpoint (`GET /actors`): the file's
    /// `node.admin` and `admin_token`, or `--admin`. Exit codes: 0 when
    /// every actor runs (a paused one included), 3 when one is starting,
    /// restarting, unhealthy or stopped, 1 when the endpoint does not
    /// answer.
    Status {
        /// The node's configuration file.
        config: PathBuf,
        /// The admin endpoint, `http://HOST:PORT` or `HOST:PORT`,
        /// overriding the file's `node.admin`.
        #[arg(long)]
        admin: Option<String>,
        /// Refresh every interval (2 s unless given) until interrupted.
        #[arg(long, num_args = 0..=1, default_missing_value = "2s", value_parser = humantime::parse_duration)]
        watch: Option<std::time::Duration>,
    },
    /// Inspect an actor's dead-letter topic.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Send JSON lines from standard input to a topic, each encoded with the
    /// schema of the topic's owner.
    ///
    /// Each line is `{"key": "...", "value": {...}}` (the shape `tail`
    /// prints; `key` is optional). When the owner writes several record
    /// types, `"type"` names each line's (`tail` prints it too). A line
    /// that is not JSON or does not fit
    /// the schema is reported with its line number and not sent; the exit
    /// code is then 1.
    ///
    /// The topic belongs to one of the node's actors, so this is a second
    /// writer beside it: refused unless `--as-owner` says it is meant (to
    /// seed a test, or put right by hand what the owner would write). On a
    /// cluster that enforces `scribe acls`, it also needs the owner's
    /// credentials.
    Produce {
        /// The node's configuration file.
        config: PathBuf,
        /// The topic to write; one of the node's actors must own it.
        topic: String,
        /// Write although the topic's owner is the only writer the
        /// deployment allows.
        #[arg(long)]
        as_owner: bool,
        /// Bootstrap servers, overriding the file.
        #[arg(long)]
        bootstrap: Option<String>,
    },
}

/// `scribe dlq` commands.
#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Print every dead letter of an actor as JSON lines: where it came
    /// from, how many attempts, the error, its key and its value (decoded
    /// when it can be, else as text). Stops at the end of the topic.
    List {
        /// The node's configuration file.
        config: PathBuf,
        /// The actor whose dead letters to show.
        actor: String,
        /// Bootstrap servers, overriding the file.
        #[arg(long)]
        bootstrap: Option<String>,
    },
    /// Send an actor's dead letters back to it for another try.
    ///
    /// Runs the actor alone, as its node runs it (its own output topic, its
    /// own failure policy), on the dead letters written before now, each as
    /// the record it was. Those that fail again are dead-lettered anew,
    /// after the end. Progress is committed in group `<actor>.dlq-replay`,
    /// so a replay resumes where the last one stopped. Prints a summary.
    Replay {
        /// The node's configuration file.
        config: PathBuf,
        /// The actor whose dead letters to replay.
        actor: String,
        /// Bootstrap servers, overriding the file (needed when it says
        /// `embedded`: give the address `scribe run` logged).
        #[arg(long)]
        bootstrap: Option<String>,
    },
}

/// Parses the command line and runs the command with `registry`'s kinds.
/// Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let outcome = match cli.command {
        Command::Run { config } => run(&registry, config),
        Command::Check {
            configs,
            registry: url,
        } => check(&registry, &configs).and_then(|report| {
            print!("{report}");
            let Some(url) = url else { return Ok(()) };
            let (report, refused) = check_registry(&load(&registry, &configs)?, &url)?;
            print!("{report}");
            if refused > 0 {
                eprintln!("error: the registry would refuse {refused} schemas");
                std::process::exit(1);
            }
            Ok(())
        }),
        Command::Graph { configs, format } => {
            load(&registry, &configs).map(|deployment| print!("{}", graph(&deployment, format)))
        }
        Command::Asyncapi { configs } => load(&registry, &configs).map(|deployment| {
            let document = asyncapi::document(&deployment);
            println!(
                "{}",
                serde_json::to_string_pretty(&document).expect("JSON values serialize")
            );
        }),
        Command::Acls { configs, bootstrap } => acls(&registry, &configs, bootstrap),
        Command::Topics { config, bootstrap } => {
            tools::Tool::new(&registry, &config, bootstrap.as_deref()).and_then(|t| t.topics())
        }
        Command::Tail {
            config,
            topic,
            from_beginning,
            count,
            timeout,
            bootstrap,
        } => tools::Tool::new(&registry, &config, bootstrap.as_deref())
            .and_then(|t| t.tail(&topic, from_beginning, count.map(|n| (n, timeout)))),
        Command::Status {
            config,
            admin,
            watch,
        } => NodeConfig::load(&config)
            .and_then(|config| status::Status::new(&config, admin.as_deref()))
            .and_then(|status| match watch {
                Some(interval) => status.watch(interval),
                None => match status.once()? {
                    status::Health::Running => Ok(()),
                    status::Health::NotRunning => std::process::exit(3),
                },
            }),
        Command::Dlq {
            command:
                DlqCommand::List {
                    config,
                    actor,
                    bootstrap,
                },
        } => tools::Tool::new(&registry, &config, bootstrap.as_deref()).and_then(|t| {
            let count = t.dlq_list(&actor)?;
            eprintln!("{count} dead letters");
            Ok(())
        }),
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    config,
                    actor,
                    bootstrap,
                },
        } => tools::Tool::new(&registry, &config, bootstrap.as_deref()).and_then(|t| {
            let replayed = t.dlq_replay(&actor)?;
            println!(
                "replayed {} dead letters of `{}` from `{}`: {} handled, {} dead-lettered again, {} restarts",
                replayed.waiting,
                replayed.actor,
                replayed.topic,
                replayed.handled,
                replayed.dead_lettered,
                replayed.restarts
            );
            Ok(())
        }),
        Command::Produce {
            config,
            topic,
            as_owner,
            bootstrap,
        } => tools::Tool::new(&registry, &config, bootstrap.as_deref()).and_then(|t| {
            let rejected = t.produce(&topic, as_owner, std::io::stdin().lock())?;
            if rejected > 0 {
                eprintln!("{rejected} lines rejected; nothing was sent for them");
                std::process::exit(1);
            }
            Ok(())
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_usage() => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {}", scribe::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Installs the log subscriber `scribe` commands run with: formatted
/// lines on standard error, filtered by `RUST_LOG`, else at `info` (and
/// librdkafka's own lines at `warn`). Does nothing when a subscriber is
/// installed already. Benchmarks call it to measure scribe as users run it.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,librdkafka=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `scribe acls`: the deployment's ACL bindings as `kafka-acls` lines.
fn acls(registry: &Registry, files: &[PathBuf], bootstrap: Option<String>) -> Result<()> {
    let deployment = load(registry, files)?;
    let acls = crate::acls::deployment_acls(&deployment)?;
    let bootstrap = bootstrap.unwrap_or_else(|| {
        deployment
            .nodes
            .first()
            .map(|n| n.config.kafka.bootstrap_servers.clone())
            .unwrap_or_default()
    });
    print!("{}", crate::acls::kafka_acls_commands(&acls, &bootstrap));
    Ok(())
}

/// `scribe run`: validate, start, and drain on the first signal, or as
/// soon as an actor's restart budget stops the node (then the command
/// fails, naming the actor and why).
fn run(registry: &Registry, file: PathBuf) -> Result<()> {
    let config = NodeConfig::load(&file)?;
    let node = config.node(registry)?;
    actix::System::new().block_on(async move {
        let running = node.start().await?;
        tracing::info!(
            node = %running.name(),
            bootstrap = %running.bootstrap_servers(),
            "running; Ctrl-C or SIGTERM drains and stops (a second signal exits at once)"
        );
        running.until_signal_or_halt().await;
        actix::spawn(async {
            scribe::wait_for_signal().await;
            eprintln!("second signal: exiting without draining");
            std::process::exit(130);
        });
        Ok(running.drain().await?)
    })
}

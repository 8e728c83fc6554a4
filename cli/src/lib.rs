//! The `scribe` command line: run, check and draw nodes from config files.
//!
//! A program gets it whole by registering its actor kinds and calling
//! [`main`]; the `scribe` binary of `scribe-actors` does that with the
//! standard actors.

pub mod acls;
pub mod settings;
mod tools;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::settings::{NodeConfig, Registry};
use scribe::topology::{self, ExternalTopic};
use scribe::{ActorInfo, Node};
use scribe::{Error, Result};

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
    /// Print the ACL bindings each node of the deployment needs, and
    /// nothing more, as `kafka-acls` command lines: its principal may write
    /// only the topics its actors own (and their dead-letter topics), read
    /// the topics they subscribe to, and use their consumer groups and
    /// transactional ids. Applied with `allow.everyone.if.no.acl.found=false`,
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
    /// Inspect an actor's dead-letter topic.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Send JSON lines from standard input to a topic, each encoded with the
    /// schema of the topic's owner.
    ///
    /// Each line is `{"key": "...", "value": {...}}` (the shape `tail`
    /// prints; `key` is optional). A line that is not JSON or does not fit
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

/// Graph output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Parses the command line and runs the command with `registry`'s kinds.
/// Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let outcome = match cli.command {
        Command::Run { config } => run(&registry, config),
        Command::Check { configs } => check(&registry, &configs).map(|report| print!("{report}")),
        Command::Graph { configs, format } => {
            load(&registry, &configs).map(|deployment| print!("{}", graph(&deployment, format)))
        }
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
        Err(
            error @ (Error::Config { .. } | Error::KafkaProperty { .. } | Error::Security { .. }),
        ) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {}", scribe::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,librdkafka=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// One loaded node of a deployment.
#[derive(Debug)]
pub struct Loaded {
    /// The file as read.
    pub config: NodeConfig,
    /// The node it describes, validated.
    pub node: Node,
}

/// Every node of a deployment, checked together.
#[derive(Debug)]
pub struct Deployment {
    /// The nodes, in the order of their files.
    pub nodes: Vec<Loaded>,
    /// Subscriptions to topics no actor of the deployment owns.
    pub external: Vec<ExternalTopic>,
}

/// Loads and validates every file, then checks them together as one
/// deployment. Touches no network.
pub fn load(registry: &Registry, files: &[PathBuf]) -> Result<Deployment> {
    let mut nodes: Vec<Loaded> = Vec::new();
    for file in files {
        let config = NodeConfig::load(file)?;
        let node = config.node(registry)?;
        // Node names tell the nodes apart: in client ids, in every record's
        // `ce_source`, and in the principal `scribe acls` binds.
        if let Some(other) = nodes.iter().find(|l| l.node.name() == node.name()) {
            return Err(Error::Config {
                file: config.file.clone(),
                message: format!(
                    "node.name: `{}` is also the name of the node in {}; each node of a \
                     deployment needs its own (a node run on several machines is one file)",
                    node.name(),
                    other.config.file
                ),
            });
        }
        nodes.push(Loaded { config, node });
    }
    let actors: Vec<ActorInfo> = nodes.iter().flat_map(|l| l.node.actors()).collect();
    let external = topology::check(&actors).map_err(|e| Error::Config {
        file: files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        message: e.to_string(),
    })?;
    Ok(Deployment { nodes, external })
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

/// `scribe check`: the summary printed for a valid deployment.
pub fn check(registry: &Registry, files: &[PathBuf]) -> Result<String> {
    let deployment = load(registry, files)?;
    let mut out = String::new();
    let mut actors = 0;
    for loaded in &deployment.nodes {
        actors += loaded.config.actors.len();
        let _ = writeln!(
            out,
            "{}: node `{}`, {} actors, kafka {}",
            loaded.config.file,
            loaded.node.name(),
            loaded.config.actors.len(),
            loaded.config.kafka.bootstrap_servers
        );
        for (section, actor) in loaded.config.actors.iter().zip(loaded.node.actors()) {
            let reads: Vec<String> = actor
                .subscriptions
                .iter()
                .map(|s| format!("{} ({})", s.topic, s.record_type))
                .collect();
            let reads = if reads.is_empty() {
                "nothing".to_owned()
            } else {
                reads.join(", ")
            };
            let delivery = match actor.delivery {
                scribe::Delivery::AtLeastOnce => String::new(),
                other => format!("; {other}"),
            };
            let _ = writeln!(
                out,
                "  {} [{}] writes {} ({}); reads {}{delivery}",
                actor.name, section.kind, actor.output, actor.output_type, reads
            );
        }
    }
    for ExternalTopic {
        topic,
        reader,
        record_type,
    } in &deployment.external
    {
        let _ = writeln!(
            out,
            "external: `{topic}` ({record_type}), read by `{reader}`, is owned by no actor here"
        );
    }
    let _ = writeln!(out, "ok: {} files, {actors} actors", deployment.nodes.len());
    Ok(out)
}

/// `scribe graph`: the deployment as Mermaid or DOT.
pub fn graph(deployment: &Deployment, format: Format) -> String {
    let id = |prefix: &str, name: &str| {
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{prefix}_{clean}")
    };
    // Boxes (actor id, name, kind), cylinders (topic id, name) and labelled
    // arrows (from, to, record type), each in a stable order.
    let mut actors = Vec::new();
    let mut topics = BTreeSet::new();
    let mut edges = Vec::new();
    for loaded in &deployment.nodes {
        for (section, actor) in loaded.config.actors.iter().zip(loaded.node.actors()) {
            let me = id("a", &actor.name);
            edges.push((
                me.clone(),
                id("t", &actor.output),
                actor.output_type.clone(),
            ));
            topics.insert(actor.output.clone());
            for sub in &actor.subscriptions {
                edges.push((id("t", &sub.topic), me.clone(), sub.record_type.clone()));
                topics.insert(sub.topic.clone());
            }
            actors.push((me, actor.name.clone(), section.kind.clone()));
        }
    }
    let mut out = String::new();
    match format {
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (me, name, kind) in &actors {
                let _ = writeln!(out, "  {me}[\"{name}<br/><i>{kind}</i>\"]");
            }
            for topic in &topics {
                let _ = writeln!(out, "  {}[(\"{topic}\")]", id("t", topic));
            }
            for (from, to, label) in &edges {
                let _ = writeln!(out, "  {from} -- \"{label}\" --> {to}");
            }
        }
        Format::Dot => {
            out.push_str("digraph scribe {\n  rankdir=LR;\n");
            for (me, name, kind) in &actors {
                let _ = writeln!(out, "  \"{me}\" [shape=box, label=\"{name}\\n{kind}\"];");
            }
            for topic in &topics {
                let _ = writeln!(
                    out,
                    "  \"{}\" [shape=cylinder, label=\"{topic}\"];",
                    id("t", topic)
                );
            }
            for (from, to, label) in &edges {
                let _ = writeln!(out, "  \"{from}\" -> \"{to}\" [label=\"{label}\"];");
            }
            out.push_str("}\n");
        }
    }
    out
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
        running.drain().await
    })
}

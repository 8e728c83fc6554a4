//! Journal: writes a readable line for every summary, alarm and command.
//!
//! - Reads: any of `scribe.metrics.MetricSummary`, `scribe.control.Alarm`
//!   and `scribe.control.Command`, each from its own topic (all optional).
//! - Writes: `scribe.journal.JournalEntry`, one per record read; with
//!   `print`, the line to standard output too; with `file`, the entry as a
//!   JSON line appended to that file (one `write` per record, done before
//!   the handler returns, so a committed record's line is in the file).
//! - Keys by: the key of the record read.
//! - Parameters: [`JournalArgs`].

use scribe::prelude::*;
use scribe_schemas::{Alarm, Command, MetricSummary};

use scribe_schemas::JournalEntry;

use crate::now_ms;

/// Parameters of a [`Journal`]: the topics to read, each optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalArgs {
    /// A topic of window summaries.
    pub summaries: Option<String>,
    /// A topic of alarms.
    pub alarms: Option<String>,
    /// A topic of commands.
    pub commands: Option<String>,
    /// Whether to print each line to standard output. The default is false.
    pub print: bool,
    /// A file to append each entry to as a JSON line. The default is none.
    pub file: Option<std::path::PathBuf>,
}

/// Turns records into readable lines.
#[derive(Debug)]
pub struct Journal {
    print: bool,
    file: Option<std::fs::File>,
    out: Publisher<JournalEntry>,
}

impl Actor for Journal {
    type Context = Context<Self>;
}

impl TopicActor for Journal {
    type Output = JournalEntry;
    type Args = JournalArgs;

    fn subscriptions(args: &JournalArgs, subs: &mut Subscriptions<Self>) {
        if let Some(topic) = &args.summaries {
            subs.subscribe::<MetricSummary>(topic.as_str());
        }
        if let Some(topic) = &args.alarms {
            subs.subscribe::<Alarm>(topic.as_str());
        }
        if let Some(topic) = &args.commands {
            subs.subscribe::<Command>(topic.as_str());
        }
    }

    fn create(args: JournalArgs, out: Publisher<JournalEntry>) -> Result<Self, ActorError> {
        let file = match &args.file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open journal file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            print: args.print,
            file,
            out,
        })
    }
}

impl Journal {
    fn write<T>(&mut self, m: &Inbound<T>, line: String) -> Result<(), ActorError> {
        if self.print {
            println!("{line}");
        }
        let key = m.key_str().unwrap_or_default().to_owned();
        let entry = JournalEntry {
            topic: m.topic().to_owned(),
            key: key.clone(),
            line,
            at_ms: now_ms(),
        };
        if let Some(file) = &mut self.file {
            let mut json = serde_json::json!({
                "topic": entry.topic,
                "key": entry.key,
                "line": entry.line,
                "at_ms": entry.at_ms,
            })
            .to_string();
            json.push('\n');
            std::io::Write::write_all(file, json.as_bytes())?;
        }
        self.out.publish(&key, entry)?;
        Ok(())
    }
}

impl Handler<Inbound<MetricSummary>> for Journal {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<MetricSummary>, _: &mut Context<Self>) -> Self::Result {
        let line = format!(
            "summary  {:<12} {:<17} n={:<3} min={:>7.2} mean={:>7.2} p95={:>7.2} max={:>7.2}",
            m.host, m.metric, m.count, m.min, m.mean, m.p95, m.max
        );
        self.write(&m, line)
    }
}

impl Handler<Inbound<Alarm>> for Journal {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Alarm>, _: &mut Context<Self>) -> Self::Result {
        let line = format!(
            "ALARM    {:<12} {:<17} {:?} at {:.2} (threshold {:.2})",
            m.host, m.metric, m.state, m.value, m.threshold
        );
        self.write(&m, line)
    }
}

impl Handler<Inbound<Command>> for Journal {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Command>, _: &mut Context<Self>) -> Self::Result {
        let line = format!("COMMAND  {:<12} {:?}: {}", m.target, m.action, m.reason);
        self.write(&m, line)
    }
}

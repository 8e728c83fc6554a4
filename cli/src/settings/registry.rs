//! The actor kinds a configuration file can name.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;

use super::file::ActorSection;
use scribe::NodeBuilder;
use scribe::TopicActor;

type Add = fn(NodeBuilder, &ActorSection) -> Result<NodeBuilder, String>;

/// The actor kinds a node configuration may use, by name.
///
/// A program registers its own actor types in a few lines and gets the
/// whole `scribe` command line for them (see [`crate::main`]):
///
/// ```no_run
/// # use scribe::prelude::*;
/// # use scribe_cli::settings::Registry;
/// # #[derive(Clone, serde::Deserialize)] struct Args;
/// # struct Mine; impl Actor for Mine { type Context = Context<Self>; }
/// # impl TopicActor for Mine { type Output = (); type Args = Args;
/// #   fn create(_: Args, _: Publisher<()>) -> Result<Self, ActorError> { Ok(Mine) } }
/// fn main() -> std::process::ExitCode {
///     let mut registry = Registry::new();
///     registry.register::<Mine>("mine");
///     scribe_cli::main(registry)
/// }
/// ```
#[derive(Default, Clone)]
pub struct Registry {
    kinds: BTreeMap<String, Add>,
    /// Writer schemas every node knows besides its actors' own types.
    schemas: scribe::SchemaRegistry,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry of the standard actor kinds (`scribe-actors`):
    /// `host-sampler`, `windowed-aggregator`, `threshold-alarm`,
    /// `controller`, `journal`; per standard record type a relay
    /// (`relay.host-metrics`, `relay.metric-summary`, `relay.alarm`,
    /// `relay.command`, `relay.journal-entry`) and a JSON bridge in
    /// (`json-in.host-metrics`, ...); and the JSON mirror `json-out`. Every
    /// node built with it knows every schema of `scribe-schemas`, older
    /// versions included. What the `scribe` binary runs; a program adds its
    /// own kinds to it.
    pub fn standard() -> Self {
        use scribe_actors::{
            Controller, HostSampler, Journal, JsonIn, JsonOut, Relay, ThresholdAlarm,
            WindowedAggregator,
        };
        use scribe_schemas::{Alarm, Command, HostMetrics, JournalEntry, MetricSummary};
        let mut registry = Registry::new();
        registry
            .register::<HostSampler>("host-sampler")
            .register::<WindowedAggregator>("windowed-aggregator")
            .register::<ThresholdAlarm>("threshold-alarm")
            .register::<Controller>("controller")
            .register::<Journal>("journal")
            .register::<Relay<HostMetrics>>("relay.host-metrics")
            .register::<Relay<MetricSummary>>("relay.metric-summary")
            .register::<Relay<Alarm>>("relay.alarm")
            .register::<Relay<Command>>("relay.command")
            .register::<Relay<JournalEntry>>("relay.journal-entry")
            .register::<JsonIn<HostMetrics>>("json-in.host-metrics")
            .register::<JsonIn<MetricSummary>>("json-in.metric-summary")
            .register::<JsonIn<Alarm>>("json-in.alarm")
            .register::<JsonIn<Command>>("json-in.command")
            .register::<JsonIn<JournalEntry>>("json-in.journal-entry")
            .register::<JsonOut>("json-out");
        for (file, avsc) in scribe_schemas::AVSC {
            registry
                .schema(file, avsc)
                .expect("the schemas crate's files parse (its tests say so)");
        }
        registry
    }

    /// Makes actor type `A` available as `kind`; its `params` are read into
    /// `A::Args` (which should refuse unknown fields).
    pub fn register<A>(&mut self, kind: &str) -> &mut Self
    where
        A: TopicActor,
        A::Args: DeserializeOwned,
    {
        self.kinds.insert(kind.to_owned(), add::<A>);
        self
    }

    /// Makes a writer schema (an `.avsc` file's text; `origin` names it in
    /// errors) known to every node built from a file: records of it can
    /// then be read by a node none of whose actors has that type (by a
    /// `json-out` mirror, an `on_prefix` binding), and older versions
    /// resolved.
    pub fn schema(&mut self, origin: &str, avsc: &str) -> scribe::Result<&mut Self> {
        self.schemas.register(origin, avsc)?;
        Ok(self)
    }

    /// The schemas given with [`Registry::schema`].
    pub fn schemas(&self) -> &scribe::SchemaRegistry {
        &self.schemas
    }

    /// The registered kinds, in order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    pub(crate) fn add(
        &self,
        builder: NodeBuilder,
        actor: &ActorSection,
    ) -> Result<NodeBuilder, String> {
        let add = self.kinds.get(&actor.kind).ok_or_else(|| {
            let known: Vec<&str> = self.kinds().collect();
            format!(
                "kind: unknown kind `{}` (known: {})",
                actor.kind,
                known.join(", ")
            )
        })?;
        add(builder, actor)
    }
}

fn add<A>(builder: NodeBuilder, actor: &ActorSection) -> Result<NodeBuilder, String>
where
    A: TopicActor,
    A::Args: DeserializeOwned,
{
    let params = match &actor.params {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        params => params.clone(),
    };
    let args: A::Args = serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "params".to_owned()
        } else {
            format!("params.{path}")
        };
        format!("{at}: {}", e.into_inner())
    })?;
    let builder = builder.actor::<A>(&actor.name, &actor.output, args);
    let builder = match &actor.failure {
        Some(policy) => builder.failure_policy(&actor.name, policy.clone()),
        None => builder,
    };
    let builder = match actor.delivery {
        Some(delivery) => builder.delivery(&actor.name, delivery),
        None => builder,
    };
    let builder = match actor.envelope {
        Some(envelope) => builder.envelope(&actor.name, envelope),
        None => builder,
    };
    let builder = match actor.encoding {
        Some(encoding) => builder.encoding(&actor.name, encoding),
        None => builder,
    };
    Ok(match actor.subject_strategy {
        Some(strategy) => builder.subject_strategy(&actor.name, strategy),
        None => builder,
    })
}

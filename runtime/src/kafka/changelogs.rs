//! Changelog topics: created compacted, with as many partitions as the
//! input of the actor that owns them (changelog partition `p` holds the
//! state of input partition `p`); refused at start when they exist with
//! another partition count or without compaction, before any actor runs.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::error::{Error, Result};
use crate::kafka::broker::EmbeddedBroker;
use crate::kafka::settings::ClientSettings;

/// How long a metadata, describe or create call waits for the cluster.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A changelog topic a node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangelogSpec {
    pub(crate) topic: String,
    /// The actor that owns it.
    pub(crate) actor: String,
    /// The topics the actor reads: all with one partition count, the
    /// changelog's.
    pub(crate) inputs: Vec<String>,
    /// Replicas of each partition.
    pub(crate) replication: i32,
}

/// Creates the changelogs that do not exist yet, and checks those that do.
/// Their inputs must exist (the node created its topics first). Answers
/// the partition count of each stateful actor's input, by actor.
pub(crate) async fn ensure_changelogs(
    settings: &ClientSettings,
    embedded: Option<&EmbeddedBroker>,
    specs: &[ChangelogSpec],
) -> Result<BTreeMap<String, i32>> {
    let mut by_actor = BTreeMap::new();
    if specs.is_empty() {
        return Ok(by_actor);
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(|e| Error::kafka("cannot create admin client", e))?;
    let counts = partition_counts(&admin)?;
    let mut missing = Vec::new();
    for spec in specs {
        let partitions = input_partitions(spec, &counts)?;
        by_actor.insert(spec.actor.clone(), partitions);
        match counts.get(&spec.topic) {
            Some(&found) if found != partitions => {
                return Err(refused(
                    spec,
                    format!(
                        "it has {found} partitions and the actor's input `{}` has {partitions}: \
                         changelog partition p holds the state of input partition p (delete it, \
                         or give the input as many partitions)",
                        spec.inputs[0]
                    ),
                ));
            }
            Some(_) => {}
            None => missing.push((spec, partitions)),
        }
    }
    if let Some(broker) = embedded {
        // The embedded broker keeps everything: it has no compaction to set.
        for (spec, partitions) in missing {
            broker.create_topic(&spec.topic, partitions, spec.replication)?;
        }
        return Ok(by_actor);
    }
    if is_embedded_elsewhere(&admin) {
        // The embedded broker of another process (reached by its bootstrap
        // address) answers neither DescribeConfigs nor CreateTopics, and
        // keeps everything: there is no compaction to check.
        if let Some((spec, partitions)) = missing.first() {
            return Err(refused(
                spec,
                format!(
                    "it does not exist, and the embedded broker cannot create topics for \
                     another process: create it with {partitions} partitions in the process \
                     that runs the broker"
                ),
            ));
        }
        return Ok(by_actor);
    }
    let existing: Vec<&ChangelogSpec> = specs
        .iter()
        .filter(|s| counts.contains_key(&s.topic))
        .collect();
    check_compacted(&admin, &existing).await?;
    create(&admin, &missing).await?;
    Ok(by_actor)
}

/// Whether the cluster is librdkafka's mock cluster (the embedded broker)
/// of another process, known by the cluster id it gives itself.
fn is_embedded_elsewhere(admin: &AdminClient<DefaultClientContext>) -> bool {
    admin
        .inner()
        .fetch_cluster_id(TIMEOUT)
        .is_some_and(|id| id.starts_with(MOCK_CLUSTER_ID))
}

/// How librdkafka's mock cluster's id begins (`rdkafka_mock.c`).
const MOCK_CLUSTER_ID: &str = "mockCluster";

fn refused(spec: &ChangelogSpec, reason: String) -> Error {
    Error::Changelog {
        topic: spec.topic.clone(),
        actor: spec.actor.clone(),
        reason,
    }
}

/// Every topic's partition count, as the cluster's metadata says.
fn partition_counts(admin: &AdminClient<DefaultClientContext>) -> Result<BTreeMap<String, i32>> {
    Ok(admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| Error::kafka("cannot fetch metadata", e))?
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}

/// The partition count of the actor's inputs, which must agree.
fn input_partitions(spec: &ChangelogSpec, counts: &BTreeMap<String, i32>) -> Result<i32> {
    let mut found: Vec<(&str, i32)> = Vec::new();
    for input in &spec.inputs {
        let Some(&count) = counts.get(input) else {
            return Err(refused(
                spec,
                format!("its actor's input `{input}` does not exist"),
            ));
        };
        found.push((input, count));
    }
    let Some(&(_, first)) = found.first() else {
        return Err(refused(spec, "its actor reads no topic".into()));
    };
    if found.iter().any(|(_, count)| *count != first) {
        let listed: Vec<String> = found
            .iter()
            .map(|(topic, count)| format!("`{topic}` has {count}"))
            .collect();
        return Err(refused(
            spec,
            format!(
                "the actor's inputs differ in partition count ({}): state is sharded by input \
                 partition, so they must agree",
                listed.join(", ")
            ),
        ));
    }
    Ok(first)
}

/// Refuses a changelog whose `cleanup.policy` does not compact: its old
/// values would be deleted with their segments, and a restore would miss
/// the keys they held.
async fn check_compacted(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[&ChangelogSpec],
) -> Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let resources: Vec<ResourceSpecifier<'_>> = specs
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.topic))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin
        .describe_configs(&resources, &options)
        .await
        .map_err(|e| Error::kafka("cannot describe the changelog topics", e))?;
    for (spec, result) in specs.iter().zip(described) {
        let resource = result
            .map_err(|code| refused(spec, format!("cannot describe its configuration: {code}")))?;
        let policy = resource
            .get("cleanup.policy")
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        if !policy.split(',').any(|p| p.trim() == "compact") {
            return Err(refused(
                spec,
                format!(
                    "its cleanup.policy is `{policy}`, not `compact`: deleted segments would \
                     take state with them (set cleanup.policy=compact)"
                ),
            ));
        }
    }
    Ok(())
}

/// Creates `missing` compacted, each with its partition count.
async fn create(
    admin: &AdminClient<DefaultClientContext>,
    missing: &[(&ChangelogSpec, i32)],
) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(spec, partitions)| {
            NewTopic::new(
                &spec.topic,
                *partitions,
                TopicReplication::Fixed(spec.replication),
            )
            .set("cleanup.policy", "compact")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(new.iter(), &options)
        .await
        .map_err(|e| Error::kafka("create changelog topics", e))?;
    for result in results {
        super::topics::created(result)?;
    }
    for (spec, _) in missing {
        super::topics::wait_for_topic(admin, &spec.topic).await?;
    }
    Ok(())
}

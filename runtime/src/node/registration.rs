//! Registering schemas at start, with a schema registry: each actor that
//! writes in its framing registers what it writes, and the node learns the
//! ids of what its actors read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::validated::Node;
#[cfg(feature = "registry")]
use crate::error::Error;
use crate::error::Result;
use crate::kafka::registry::RegistrySettings;
#[cfg(feature = "registry")]
use crate::kafka::registry_client::RegistryClient;
use crate::topology::ActorInfo;
use crate::wire::codec::{Fingerprint, SchemaRegistry};
#[cfg(feature = "registry")]
use crate::wire::framing::Encoding;

/// Of each actor writing in the schema registry's framing: the registry id
/// of each schema it writes.
pub(crate) type SchemaIds = BTreeMap<String, Arc<HashMap<Fingerprint, u32>>>;

impl Node {
    /// With a schema registry: registers the schemas of every actor that
    /// writes in its framing (under each actor's subjects), learns the
    /// ids already registered for what the actors read, and gives
    /// `registry` the server for ids seen later. Off the actors' thread:
    /// the calls block.
    pub(super) async fn registered(
        settings: Option<RegistrySettings>,
        actors: &[ActorInfo],
        registry: SchemaRegistry,
    ) -> Result<(SchemaRegistry, SchemaIds)> {
        let Some(settings) = settings else {
            return Ok((registry, SchemaIds::new()));
        };
        #[cfg(not(feature = "registry"))]
        {
            // `build` refuses a registry without the feature.
            let _ = (settings, actors);
            Ok((registry, SchemaIds::new()))
        }
        #[cfg(feature = "registry")]
        let actors = actors.to_vec();
        #[cfg(feature = "registry")]
        tokio::task::spawn_blocking(move || Node::register_schemas(&settings, &actors, registry))
            .await
            .map_err(|e| Error::Registry {
                url: String::new(),
                call: "registering schemas".into(),
                reason: e.to_string(),
            })?
    }

    #[cfg(feature = "registry")]
    fn register_schemas(
        settings: &RegistrySettings,
        actors: &[ActorInfo],
        mut registry: SchemaRegistry,
    ) -> Result<(SchemaRegistry, SchemaIds)> {
        let client = RegistryClient::new(settings)?;
        let mut ids = SchemaIds::new();
        for actor in actors {
            if actor.encoding != Encoding::Confluent {
                continue;
            }
            let mut own = HashMap::new();
            for (subject, schema) in actor.subjects() {
                let id = client
                    .register(&subject, schema)
                    .map_err(|error| match error {
                        Error::Registry { url, call, reason } => Error::Registry {
                            url,
                            call: format!(
                                "actor `{}` registering its output `{}`: {call}",
                                actor.name, actor.output
                            ),
                            reason,
                        },
                        other => other,
                    })?;
                let fingerprint = registry.register_id(id, schema.clone());
                tracing::info!(actor = %actor.name, %subject, id, "schema registered");
                own.insert(fingerprint, id);
            }
            ids.insert(actor.name.clone(), Arc::new(own));
        }
        // What readers will meet, looked up now rather than per record:
        // every version under the subjects the topics they read would use.
        let mut subjects = std::collections::BTreeSet::new();
        for actor in actors {
            for sub in actor.subscriptions.iter().filter(|s| !s.pattern) {
                let ty = &sub.record_type;
                subjects.insert(format!("{}-value", sub.topic));
                if matches!(sub.binding, crate::Binding::Type | crate::Binding::Every) {
                    subjects.insert(ty.clone());
                    subjects.insert(format!("{}-{ty}", sub.topic));
                }
            }
        }
        for subject in subjects {
            for (id, schema) in client.versions(&subject)? {
                registry.register_id(id, schema);
            }
        }
        Ok((registry.with_remote(client), ids))
    }
}

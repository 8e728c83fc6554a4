//! What an instance of an actor with stores gets besides the rest: its
//! [`Stores`], their values checked against the node's schemas, and on
//! Kafka the [`Restores`] that bring its partitions' state back before
//! their first records.

use std::sync::Arc;

use super::instance::{Env, Factory};
use crate::actor::{Routes, TopicActor};
use crate::error::Result;
use crate::feed::Restores;
use crate::publisher::PublisherCore;
use crate::state::reading::{ChangelogReading, Restorer};
use crate::state::stores::{StoreSpec, Stores};
use crate::wire::codec::SchemaRegistry;

impl<A: TopicActor> Factory<A> {
    /// The actor's stores for an instance, their values checked against
    /// `registry`; none when it declares none.
    pub(super) fn state(
        &self,
        registry: &SchemaRegistry,
        transactional: bool,
    ) -> Result<Option<Arc<Stores>>> {
        if self.stores.is_empty() {
            return Ok(None);
        }
        let specs = self
            .subscriptions
            .stores
            .iter()
            .zip(&self.stores)
            .map(|(decl, info)| {
                Ok(StoreSpec {
                    info: info.clone(),
                    check: (decl.check)(registry)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::new(Stores::new(
            self.name.as_str().into(),
            specs,
            registry.clone(),
            transactional,
        ))))
    }

    /// What restores the partitions of an instance on Kafka, when the
    /// actor has stores.
    pub(super) fn restores(
        &self,
        env: &Env,
        core: &PublisherCore,
        routes: &Routes<A>,
        transactional: bool,
    ) -> Result<Option<Restores>> {
        let Some(stores) = &core.stores else {
            return Ok(None);
        };
        let reading = ChangelogReading::Kafka {
            settings: env.settings.clone(),
            group: self.name.clone(),
        };
        let restorer = Restorer::start(
            &reading,
            &self.name,
            stores.specs(),
            transactional,
            &self.stats,
        )?;
        let inputs = routes
            .subscription()
            .iter()
            .map(|topic| Arc::from(topic.as_str()))
            .collect();
        Ok(Some(Restores::new(stores.clone(), restorer, inputs)))
    }
}

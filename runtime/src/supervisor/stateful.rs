//! What an instance of an actor with stores gets besides the rest: its
//! [`Stores`], their values checked against the node's schemas, and the
//! [`Restores`] that bring its partitions' state back before their first
//! records (read from Kafka, or from the simulator's log).

use std::sync::Arc;

use super::instance::Factory;
use crate::actor::{Routes, TopicActor};
use crate::error::{Error, Result};
use crate::feed::Restores;
use crate::publisher::PublisherCore;
use crate::state::reading::{ChangelogReading, Restorer};
use crate::state::stores::{StoreSpec, Stores};
use crate::state::view::StateView;
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
                    clock: decl.clock,
                    json: Arc::new((decl.json)(registry)?),
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

    /// What restores the partitions of an instance, read as `reading`
    /// says, when the actor has stores; from now on the actor's state is
    /// read from outside (the admin endpoint) in these stores, whose
    /// actor's input has `partitions` partitions when known.
    pub(super) fn restores(
        &self,
        reading: &ChangelogReading,
        core: &PublisherCore,
        routes: &Routes<A>,
        transactional: bool,
        partitions: Option<i32>,
    ) -> Result<Option<Restores>> {
        let Some(stores) = &core.stores else {
            return Ok(None);
        };
        self.stats
            .show_state(Arc::new(StateView::new(stores, partitions)));
        let restorer = Restorer::start(
            reading,
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

    /// Why the dead letters of an actor with stores are not replayed: a
    /// replay would change state outside the order of its partitions.
    pub(super) fn no_stores_replay(&self) -> Error {
        Error::State {
            actor: self.name.clone(),
            store: self.stores[0].name.clone(),
            reason: "the dead letters of an actor with stores cannot be replayed yet".into(),
        }
    }
}

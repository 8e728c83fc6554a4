//! Asking in a simulation: a gateway of the simulated node
//! ([`Simulation::gateway`]), writing its requests through the simulated
//! broker and reading replies from the simulated log, as a gateway of a
//! running node does through Kafka; and an ask run beside the node
//! ([`Simulation::ask`]), on virtual time.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use super::simulation::Simulation;
use super::tail::SimTail;
use super::world::{Outlet, lock};
use crate::ask::gateway::{Gateway, GatewayOptions, GatewayWiring};
use crate::error::{Error, Result};
use crate::kafka::tail::TailReading;
use crate::ops::stats::ActorStats;
use crate::publisher::Sink;
use crate::wire::record::Record;

impl Simulation {
    /// A gateway of the simulated node, as
    /// [`RunningNode::gateway`](crate::RunningNode::gateway) opens one on a
    /// cluster, refused for the same reasons: it owns `options.requests`
    /// and reads the replies its responder writes on `options.replies`.
    /// Ask through it with [`Simulation::ask`].
    ///
    /// ```
    /// # use scribe::sim::Simulation;
    /// # use scribe::GatewayOptions;
    /// # fn demo(mut sim: Simulation) -> Result<(), scribe::Error> {
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, apache_avro::AvroSchema)]
    /// # struct Quote { sku: String }
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, apache_avro::AvroSchema)]
    /// # struct Price { cents: i64 }
    /// let quotes = sim.gateway::<Quote, Price>(GatewayOptions::new("web", "quotes", "prices"))?;
    /// let price = sim.ask(&quotes, "sku-1", &Quote { sku: "sku-1".into() })?;
    /// # let _ = price; Ok(()) }
    /// ```
    pub fn gateway<Q: Record, R: Record>(
        &mut self,
        options: GatewayOptions,
    ) -> Result<Gateway<Q, R>> {
        crate::topology::check_opened_gateway(
            &self.driver.infos,
            &options,
            &Q::get_schema(),
            &R::get_schema(),
        )?;
        let world = self.driver.world.clone();
        let (instance, topic) = {
            let mut world = lock(&world);
            for name in [&options.requests, &options.replies] {
                if !world.index.contains_key(name.as_str()) {
                    return Err(Error::UnknownTopic {
                        topic: name.clone(),
                    });
                }
            }
            (
                world.new_instance_id(),
                world.index[options.requests.as_str()],
            )
        };
        let outlet = Outlet {
            world: world.clone(),
            instance,
            topic,
            stats: Arc::new(ActorStats::default()),
            // A gateway writes outside transactions, in no group.
            actor: usize::MAX,
            group: usize::MAX,
            transactional: false,
        };
        let wiring = GatewayWiring {
            sink: Sink::Dyn(Box::new(outlet)),
            reading: TailReading::Dyn(Arc::new(SimTail { world })),
            node: self.driver.node.clone(),
        };
        // Its instance id comes from the seed.
        let _entered = self.clock.enter();
        self.runner
            .block_on(async move { Gateway::wired(wiring, options) })
    }

    /// Asks `request` under `key` through `gateway` while the simulated
    /// node runs, until the reply comes or the gateway's timeout passes, in
    /// virtual time; what [`Gateway::ask`] returns. The node runs no
    /// further than the outcome needs (or the timeout, if sooner).
    pub fn ask<Q: Record, R: Record>(
        &mut self,
        gateway: &Gateway<Q, R>,
        key: &str,
        request: &Q,
    ) -> Result<R> {
        let timeout = gateway.options().timeout;
        let driver = &mut self.driver;
        let _entered = self.clock.enter();
        self.runner.block_on(async move {
            let done = Cell::new(false);
            let ask = async {
                let outcome = gateway.ask(key, request).await;
                done.set(true);
                outcome
            };
            // The node runs until the ask has its outcome: at the latest
            // its timeout, a millisecond past which it has timed out.
            let run = driver.run_while(Some(timeout + Duration::from_millis(1)), || !done.get());
            let (outcome, ()) = futures::join!(ask, run);
            outcome
        })
    }
}

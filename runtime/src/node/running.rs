//! [`RunningNode`]: a started node, its stats, and its shutdown.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kafka::broker::EmbeddedBroker;
use crate::ops::stats::{ActorState, ActorStats, StatsSnapshot};
use crate::ops::trace::Traced;
use crate::supervisor::NodeControl;

/// A started node. [`RunningNode::shutdown`] stops it gracefully; dropping
/// it stops every actor at once without draining (records in hand are
/// redelivered on the next start).
pub struct RunningNode {
    pub(super) name: String,
    pub(super) bootstrap: String,
    pub(super) embedded: Option<EmbeddedBroker>,
    pub(super) control: Arc<NodeControl>,
    /// Each actor's name and supervisor task.
    pub(super) supervisors: Vec<(String, tokio::task::JoinHandle<()>)>,
    pub(super) stats: HashMap<String, Arc<ActorStats>>,
    #[cfg(feature = "admin")]
    pub(super) admin: Option<crate::ops::admin::AdminServer>,
    pub(super) tracer: Option<Traced>,
    /// Its client settings, for gateways.
    pub(super) settings: crate::kafka::settings::ClientSettings,
    /// Its actors: who owns what, for gateways.
    pub(super) actors: Vec<crate::ActorInfo>,
}

impl fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningNode")
            .field("name", &self.name)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bootstrap servers the node uses; for an embedded broker, where
    /// outside clients (kcat, Python) can connect.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The embedded broker, when the node uses one.
    pub fn embedded_broker(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_ref()
    }

    /// The counters of actor `actor`.
    pub fn stats(&self, actor: &str) -> Option<StatsSnapshot> {
        self.stats.get(actor).map(|s| s.snapshot())
    }

    /// Where `actor`'s supervisor is: starting, running, restarting,
    /// unhealthy or stopped.
    pub fn state(&self, actor: &str) -> Option<ActorState> {
        self.stats.get(actor).map(|s| s.state())
    }

    /// A [`Gateway`](crate::Gateway) asking the responder that owns
    /// `options.replies`, publishing to `options.requests` (which no actor
    /// of this node may own), with this node's client settings. When the
    /// responder is one of this node's actors, it must read `requests` in
    /// a type that can read `Q`, and `R` must read what it writes.
    pub async fn gateway<Q: crate::Record, R: crate::Record>(
        &self,
        options: crate::GatewayOptions,
    ) -> Result<crate::Gateway<Q, R>> {
        crate::topology::check_opened_gateway(
            &self.actors,
            &options,
            &<Q as apache_avro::AvroSchema>::get_schema(),
            &<R as apache_avro::AvroSchema>::get_schema(),
        )?;
        crate::ask::gateway::Gateway::start(&self.settings, options).await
    }

    /// Where the admin endpoint listens, when the node serves one.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        #[cfg(feature = "admin")]
        return self.admin.as_ref().map(|a| a.addr);
        #[cfg(not(feature = "admin"))]
        None
    }

    /// Why `actor` stopped for good (its failure policy, a spent restart
    /// budget, fenced transactions, writes the brokers refused), or `None`
    /// while it runs or restarts.
    pub fn stopped_because(&self, actor: &str) -> Option<String> {
        self.stats
            .get(actor)
            .and_then(|s| s.stopped_because.lock().ok().and_then(|w| w.clone()))
    }

    /// Stops gracefully: every actor stops taking records, finishes the one
    /// in hand, flushes its producer and commits its offsets.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shutdown_in_place().await
    }

    pub(super) async fn shutdown_in_place(&mut self) -> Result<()> {
        let _ = self.control.stop.send(true);
        let mut failed = None;
        for (actor, task) in self.supervisors.drain(..) {
            if let Err(error) = task.await {
                failed.get_or_insert(Error::Shutdown {
                    actor,
                    reason: format!("its supervisor failed: {error}"),
                });
            }
        }
        #[cfg(feature = "admin")]
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        if let Some(tracer) = self.tracer.take() {
            tracer.close().await;
        }
        tracing::info!(node = %self.name, "node stopped");
        failed.map_or(Ok(()), Err)
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down gracefully. Also
    /// returns, with [`Error::NodeHalted`], when an actor's restart budget
    /// stopped the node.
    pub async fn run_until_signal(self) -> Result<()> {
        self.until_signal_or_halt().await;
        self.drain().await
    }

    /// Waits for Ctrl-C or SIGTERM, or for an actor's restart budget to
    /// stop the node, whichever comes first; says which in the log.
    pub async fn until_signal_or_halt(&self) {
        let mut stopped = self.control.stop.subscribe();
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!(node = %self.name, "signal received; draining");
            }
            _ = stopped.wait_for(|stop| *stop) => {
                let reason = self.halted().unwrap_or_default();
                tracing::error!(node = %self.name, %reason, "the node stops itself; draining");
            }
        }
    }

    /// Shuts down gracefully; [`Error::NodeHalted`] when the node had
    /// stopped itself.
    pub async fn drain(self) -> Result<()> {
        let halted = self.halted();
        self.shutdown().await?;
        halted.map_or(Ok(()), |reason| Err(Error::NodeHalted { reason }))
    }

    /// Why the node stopped itself, if it did: an actor spent its restart
    /// budget under `over_budget = "stop-node"`. Its actors are draining or
    /// drained by then.
    pub fn halted(&self) -> Option<String> {
        self.control.halted.lock().ok().and_then(|h| h.clone())
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        for (_, task) in &self.supervisors {
            task.abort();
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! Nodes: many actors in one process, wired through Kafka. Described by a
//! [`NodeBuilder`] ([`builder`]), validated ([`build`]) into a [`Node`]
//! ([`validated`]: what each actor's settings come to), started
//! ([`start`], with its schemas registered first, [`registration`]) into a
//! [`RunningNode`] ([`running`]); [`replay`] sends an actor's dead letters
//! back to it.
//!
//! Owns: a node's life, from its settings to its shutdown. May import
//! every subsystem but `sim`. Imported by: `sim` (a node's parts), and
//! users, through the crate root.

mod build;
mod builder;
mod registration;
mod replay;
mod running;
mod start;
mod validated;

pub use builder::NodeBuilder;
pub use replay::Replayed;
pub use running::RunningNode;
pub use running::wait_for_signal;
pub use validated::Node;
#[cfg(feature = "testing")]
pub(crate) use validated::NodeParts;

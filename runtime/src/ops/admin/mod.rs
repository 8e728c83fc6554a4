//! The admin endpoint of a running node (`[node] admin`,
//! [`NodeBuilder::admin`](crate::NodeBuilder::admin)): liveness,
//! readiness and Prometheus metrics over HTTP, served by actix-web on the
//! node's actix runtime.
//!
//! - `GET /`: a page drawing the node's actors and topics, live.
//! - `GET /health`: 200 while the process serves requests.
//! - `GET /ready`: 200 when every actor runs and its consumer has taken an
//!   assignment from its group; 503 otherwise, with a JSON body naming
//!   each actor that is not, its state and why.
//! - `GET /metrics`: the actors' counters and states in the
//!   OpenMetrics/Prometheus text format, read from the counters the
//!   actors keep anyway when scraped (nothing is added to the per-record
//!   path).
//! - `GET /actors/NAME/state/KEY[?store=STORE]`: a key's value in the
//!   actor's stores, as JSON, when this node holds the key's partition;
//!   else which partition holds it (421) or that it is being restored
//!   (503).
//!
//! With a token configured, every request must carry
//! `Authorization: Bearer TOKEN`; the token never appears in logs,
//! errors or `Debug` output.

mod endpoints;
mod http;
mod metrics;
mod node;
mod server;
mod state;

pub(crate) use node::{Admin, AdminActor};
pub(crate) use server::{AdminServer, serve};

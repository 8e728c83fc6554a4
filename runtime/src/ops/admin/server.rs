//! Serving the endpoint: binding its address, its routes, and stopping.

use std::net::SocketAddr;

use actix_web::http::Method;
use actix_web::{App, HttpServer, web};

use super::endpoints::{actors, health, metrics, page, pause, ready, resume};
use super::http::{not_found, resource};
use super::node::Admin;
use super::state::state;
use crate::error::{Error, Result};

/// The running endpoint: where it listens, and how to stop it.
#[derive(Debug)]
pub(crate) struct AdminServer {
    pub(crate) addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl AdminServer {
    /// Stops taking requests and finishes those in hand.
    pub(crate) async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Binds `addr` and serves `admin` there until stopped. Fails, naming the
/// address, when it cannot bind.
pub(crate) fn serve(addr: SocketAddr, admin: Admin) -> Result<AdminServer> {
    let node = admin.node.clone();
    if !addr.ip().is_loopback() && admin.token.is_none() {
        tracing::warn!(
            node = %node, %addr,
            "the admin endpoint listens beyond loopback without a token: anyone who reaches it can read it"
        );
    }
    let admin = web::Data::new(admin);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(admin.clone())
            .service(resource("/", Method::GET, page))
            .service(resource("/health", Method::GET, health))
            .service(resource("/ready", Method::GET, ready))
            .service(resource("/metrics", Method::GET, metrics))
            .service(resource("/actors", Method::GET, actors))
            .service(resource("/actors/{name}/pause", Method::POST, pause))
            .service(resource("/actors/{name}/resume", Method::POST, resume))
            .service(resource("/actors/{name}/state/{key}", Method::GET, state))
            .default_service(web::to(not_found))
    })
    // One worker: the endpoint answers probes and scrapes, not traffic.
    .workers(1)
    // The node handles Ctrl-C and SIGTERM (it drains); the server must not.
    .disable_signals()
    .shutdown_timeout(2)
    .bind(addr)
    .map_err(|e| Error::Admin {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the admin endpoint stopped");
        }
    });
    tracing::info!(node = %node, addr = %bound, "admin endpoint listening");
    Ok(AdminServer {
        addr: bound,
        handle,
    })
}

//! What each endpoint answers: health, readiness, the actors and their
//! rates, pausing and resuming, metrics, and the live page.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::http::{error, named, refused};
use super::metrics::Snapshot;
use super::node::{Admin, Rates};

pub(super) async fn health(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
    if let Some(refused) = refused(&req, &admin) {
        return refused;
    }
    HttpResponse::Ok().json(json!({ "status": "alive", "node": admin.node }))
}

/// The live page: the node's actors and topics as a graph, annotated
/// with state, rates and lag from `GET /actors` every second. One
/// self-contained document (no script, style or font from elsewhere). It
/// holds no data of the node, so it is served without the token; the
/// page asks for the token when `/actors` does.
const PAGE: &str = include_str!("page.html");

pub(super) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // Nothing it loads may come from elsewhere.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self'",
        ))
        .body(PAGE)
}

pub(super) async fn ready(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
    if let Some(refused) = refused(&req, &admin) {
        return refused;
    }
    let not_ready: Vec<_> = admin
        .actors
        .iter()
        .filter_map(|actor| {
            actor.not_ready().map(|why| {
                json!({
                    "actor": actor.name,
                    "state": actor.shown_state(),
                    "why": why,
                })
            })
        })
        .collect();
    if not_ready.is_empty() {
        HttpResponse::Ok().json(json!({ "ready": true, "node": admin.node }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "ready": false,
            "node": admin.node,
            "not_ready": not_ready,
        }))
    }
}

pub(super) async fn actors(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
    if let Some(refused) = refused(&req, &admin) {
        return refused;
    }
    let now = Instant::now();
    let mut rates = admin.rates.lock().unwrap_or_else(|e| e.into_inner());
    let list: Vec<_> = admin
        .actors
        .iter()
        .map(|actor| {
            let s = actor.stats.snapshot();
            let (handled, published, seconds) = rates
                .entry(actor.name.clone())
                .or_insert_with(|| Rates::new(now))
                .at(now, s.handled, s.published);
            // Lag per topic read, from librdkafka's last statistics (none
            // before the first, nor when they are off).
            let mut lag: std::collections::BTreeMap<String, i64> = Default::default();
            if let Ok(kafka) = actor.stats.kafka.lock() {
                for ((topic, _), records) in &kafka.lag {
                    *lag.entry(topic.clone()).or_default() += records.max(&0);
                }
            }
            json!({
                "name": actor.name,
                "state": actor.shown_state(),
                "paused": actor.paused(),
                "output": actor.output,
                "subscriptions": actor.subscriptions,
                "assigned_partitions": actor.stats.partitions.load(std::sync::atomic::Ordering::Acquire),
                "handled": s.handled,
                "published": s.published,
                "handler_failures": s.handler_failures,
                "dead_lettered": s.dead_lettered,
                "restarts": s.restarts,
                "handled_per_second": handled,
                "published_per_second": published,
                "rates_over_seconds": seconds,
                "lag": lag,
                "last_error": actor.stats.last_error(),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "node": admin.node, "actors": list }))
}

pub(super) async fn pause(
    req: HttpRequest,
    name: web::Path<String>,
    admin: web::Data<Admin>,
) -> HttpResponse {
    set_paused(req, &name, &admin, true).await
}

pub(super) async fn resume(
    req: HttpRequest,
    name: web::Path<String>,
    admin: web::Data<Admin>,
) -> HttpResponse {
    set_paused(req, &name, &admin, false).await
}

/// How long a pause or resume request waits for the actor's feed to apply
/// it before answering 202 (it applies when the actor runs again).
const APPLY_WAIT: Duration = Duration::from_secs(10);

async fn set_paused(req: HttpRequest, name: &str, admin: &Admin, paused: bool) -> HttpResponse {
    if let Some(refused) = refused(&req, admin) {
        return refused;
    }
    let actor = match named(admin, name) {
        Ok(actor) => actor,
        Err(unknown) => return *unknown,
    };
    if actor.subscriptions.is_empty() {
        return error(
            StatusCode::CONFLICT,
            format!("actor `{name}` reads no topic: there is nothing to pause"),
        );
    }
    actor.stats.ask_paused(paused);
    // The feed applies it between records; wait for it, so that once the
    // answer says paused, no record is handled until resumed.
    let deadline = Instant::now() + APPLY_WAIT;
    while !actor.stats.pause_settled() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let applied = actor.stats.pause_settled();
    tracing::info!(actor = %name, paused, applied, "pause asked through the admin endpoint");
    let body = json!({ "actor": name, "paused": paused, "applied": applied });
    if applied {
        HttpResponse::Ok().json(body)
    } else {
        // Not running now (restarting, unhealthy): it applies on start.
        HttpResponse::Accepted().json(body)
    }
}

pub(super) async fn metrics(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
    if let Some(refused) = refused(&req, &admin) {
        return refused;
    }
    let mut registry = Registry::with_prefix("scribe");
    registry.register_collector(Box::new(Snapshot::of(&admin)));
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &registry) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        );
    }
    HttpResponse::Ok()
        .insert_header((
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .body(body)
}

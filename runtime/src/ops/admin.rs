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
//!
//! With a token configured, every request must carry
//! `Authorization: Bearer TOKEN`; the token never appears in logs,
//! errors or `Debug` output.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::error::{Error, Result};
use crate::kafka::secret::Secret;
use crate::ops::stats::{ActorState, ActorStats, BrokerStats, KafkaStats, StatsSnapshot};

/// One actor as the endpoint reports it.
#[derive(Debug)]
pub(crate) struct AdminActor {
    pub(crate) name: String,
    /// The topic it owns.
    pub(crate) output: String,
    /// What it reads: topics, and patterns as `/REGEX/`. None for an
    /// actor that only publishes (it has no group to join).
    pub(crate) subscriptions: Vec<String>,
    pub(crate) stats: Arc<ActorStats>,
}

impl AdminActor {
    /// Why the actor is not ready, or `None` when it is.
    fn not_ready(&self) -> Option<String> {
        let state = self.stats.state();
        match state {
            ActorState::Running if self.paused() => {
                Some("paused through the admin endpoint".into())
            }
            ActorState::Running
                if !self.subscriptions.is_empty()
                    && self
                        .stats
                        .assignments
                        .load(std::sync::atomic::Ordering::Acquire)
                        == 0 =>
            {
                Some("its consumer has not been assigned partitions yet".into())
            }
            ActorState::Running => None,
            ActorState::Starting => Some("its first instance is starting".into()),
            ActorState::Restarting => Some("it failed and waits to be restarted".into()),
            ActorState::Unhealthy => Some(
                self.stats
                    .stopped_because
                    .lock()
                    .ok()
                    .and_then(|why| why.clone())
                    .unwrap_or_else(|| "stopped by its failure policy".into()),
            ),
            ActorState::Stopped => Some("stopped by a shutdown".into()),
        }
    }

    fn paused(&self) -> bool {
        self.stats.paused.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Its state as reported: `paused` for a running actor that is.
    fn shown_state(&self) -> &'static str {
        match self.stats.state() {
            ActorState::Running if self.paused() => "paused",
            state => state.as_str(),
        }
    }
}

/// What the endpoint serves: the node's actors, and the token it asks
/// for, if any.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) node: String,
    pub(crate) actors: Vec<AdminActor>,
    pub(crate) token: Option<Secret>,
    /// Each actor's counters sampled at most once a second by `GET
    /// /actors`: what its rates are measured against, whoever asks.
    pub(crate) rates: std::sync::Mutex<HashMap<String, Rates>>,
}

/// Two samples of an actor's (handled, published) counters, at least a
/// second apart: rates are measured from the older, so two clients asking
/// in turn both get rates over a second or more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    older: (Instant, u64, u64),
    newer: (Instant, u64, u64),
}

impl Rates {
    fn new(now: Instant) -> Self {
        Self {
            older: (now, 0, 0),
            newer: (now, 0, 0),
        }
    }

    /// Records per second handled and published, and over how many
    /// seconds, with the counters at `now`.
    fn at(&mut self, now: Instant, handled: u64, published: u64) -> (f64, f64, f64) {
        if now.duration_since(self.newer.0) >= Duration::from_secs(1) {
            self.older = self.newer;
            self.newer = (now, handled, published);
        }
        let (since, h, p) = self.older;
        let seconds = now
            .duration_since(since)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        (rate(handled, h), rate(published, p), seconds)
    }
}

impl Admin {
    /// The endpoint for `node`'s `actors`, asking for `token` if any.
    pub(crate) fn new(node: String, actors: Vec<AdminActor>, token: Option<Secret>) -> Self {
        let now = Instant::now();
        let rates = actors
            .iter()
            .map(|a| (a.name.clone(), Rates::new(now)))
            .collect();
        Self {
            node,
            actors,
            token,
            rates: std::sync::Mutex::new(rates),
        }
    }

    fn actor(&self, name: &str) -> Option<&AdminActor> {
        self.actors.iter().find(|a| a.name == name)
    }
}

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

/// A resource taking one method: any other gets 405 saying which.
fn resource<F, Args>(path: &str, method: Method, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allowed = method.clone();
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move |req: HttpRequest| {
            let allowed = allowed.clone();
            async move { method_not_allowed(&req, &allowed) }
        }))
}

fn error(status: StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {} {} (there are GET /, /health, /ready, /metrics and \
             /actors, and POST /actors/NAME/pause and /resume)",
            req.method(),
            req.path()
        ),
    )
}

fn method_not_allowed(req: &HttpRequest, allowed: &Method) -> HttpResponse {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} takes {allowed}, not {}", req.path(), req.method()),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_str(allowed.as_str())
            .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static("GET")),
    );
    response
}

/// `None` when the request may proceed, else the 401 to answer.
fn refused(req: &HttpRequest, admin: &Admin) -> Option<HttpResponse> {
    let token = admin.token.as_ref()?;
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => None,
        Some(_) => Some(error(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this endpoint's".into(),
        )),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint requires `Authorization: Bearer TOKEN`".into(),
        )),
    }
}

/// Compares without returning early at the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
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
const PAGE: &str = include_str!("admin_page.html");

async fn page() -> HttpResponse {
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

async fn ready(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
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

async fn actors(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
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

async fn pause(req: HttpRequest, name: web::Path<String>, admin: web::Data<Admin>) -> HttpResponse {
    set_paused(req, &name, &admin, true).await
}

async fn resume(
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
    let Some(actor) = admin.actor(name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("node `{}` has no actor `{name}`", admin.node),
        );
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

async fn metrics(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
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

/// One actor at one scrape.
#[derive(Debug)]
struct Scraped {
    name: String,
    counters: StatsSnapshot,
    state: ActorState,
    paused: bool,
    partitions: i64,
    in_flight: u64,
    kafka: KafkaStats,
    /// (buckets, sum, count) of the handling and end-to-end histograms.
    handling: (Vec<(f64, u64)>, f64, u64),
    end_to_end: (Vec<(f64, u64)>, f64, u64),
}

/// The actors' counters and states at one scrape.
#[derive(Debug)]
struct Snapshot {
    actors: Vec<Scraped>,
}

impl Snapshot {
    fn of(admin: &Admin) -> Self {
        Self {
            actors: admin
                .actors
                .iter()
                .map(|a| Scraped {
                    name: a.name.clone(),
                    counters: a.stats.snapshot(),
                    state: a.stats.state(),
                    paused: a.paused(),
                    partitions: a
                        .stats
                        .partitions
                        .load(std::sync::atomic::Ordering::Acquire),
                    in_flight: a.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    kafka: a.stats.kafka.lock().map(|k| k.clone()).unwrap_or_default(),
                    handling: a.stats.handling.read(),
                    end_to_end: a.stats.end_to_end.read(),
                })
                .collect(),
        }
    }
}

/// A per-actor counter: its name (`scribe_` before it, `_total` after it
/// in the exposition), its help, and where it is in a snapshot.
type Counter = (&'static str, &'static str, fn(&StatsSnapshot) -> u64);

/// Every per-actor counter.
const COUNTERS: &[Counter] = &[
    (
        "records_handled",
        "Records whose handler returned Ok.",
        |s| s.handled,
    ),
    (
        "records_published",
        "Records the actor published that the broker acknowledged.",
        |s| s.published,
    ),
    (
        "records_undecodable",
        "Records that could not be decoded.",
        |s| s.undecodable,
    ),
    (
        "records_dead_lettered",
        "Records written to the actor's dead-letter topic.",
        |s| s.dead_lettered,
    ),
    (
        "records_skipped",
        "Records passed over on purpose: types the actor does not handle, and error replies meant for a gateway.",
        |s| s.skipped,
    ),
    (
        "error_replies",
        "Gateway requests the actor could not handle, answered with an error reply.",
        |s| s.error_replies,
    ),
    (
        "handler_failures",
        "Handler calls that returned an error or panicked.",
        |s| s.handler_failures,
    ),
    (
        "handler_retries",
        "Handler calls repeated after the handler returned an error.",
        |s| s.retried,
    ),
    (
        "publish_failures",
        "Records the actor published that the broker never acknowledged.",
        |s| s.publish_failures,
    ),
    (
        "publish_stalls",
        "Publishes that found the producer's queue full and waited.",
        |s| s.publish_stalls,
    ),
    (
        "actor_restarts",
        "Times the supervisor restarted the actor.",
        |s| s.restarts,
    ),
    (
        "transactions",
        "Exactly-once transactions committed.",
        |s| s.transactions,
    ),
    (
        "transactions_aborted",
        "Exactly-once transactions aborted (their records are handled again).",
        |s| s.transactions_aborted,
    ),
];

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        for (name, help, value) in COUNTERS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for actor in &self.actors {
                let labels = [("actor", actor.name.as_str())];
                ConstCounter::new(value(&actor.counters)).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "actor_state",
            "1 for the state the actor is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            for state in ActorState::ALL {
                let labels = [("actor", actor.name.as_str()), ("state", state.as_str())];
                ConstGauge::new(i64::from(state == actor.state))
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "actor_paused",
            "1 while the actor is paused through the admin endpoint.",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            let labels = [("actor", actor.name.as_str())];
            ConstGauge::new(i64::from(actor.paused)).encode(metric.encode_family(&labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "actor_assigned_partitions",
            "Partitions assigned to the actor's consumer in this node.",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            let labels = [("actor", actor.name.as_str())];
            ConstGauge::new(actor.partitions).encode(metric.encode_family(&labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "records_in_flight",
            "Records taken from the consumer whose offsets cannot be committed yet.",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            let labels = [("actor", actor.name.as_str())];
            ConstGauge::new(i64::try_from(actor.in_flight).unwrap_or(i64::MAX))
                .encode(metric.encode_family(&labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "consumer_lag",
            "Records between the consumer's position and the partition's end (librdkafka's statistics).",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            for ((topic, partition), lag) in &actor.kafka.lag {
                let partition = partition.to_string();
                let labels = [
                    ("actor", actor.name.as_str()),
                    ("topic", topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                ConstGauge::new(*lag).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "producer_queue_records",
            "Records in the producer's queue not yet acknowledged by a broker (librdkafka's statistics).",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            let labels = [("actor", actor.name.as_str())];
            ConstGauge::new(i64::try_from(actor.kafka.producer_queue).unwrap_or(i64::MAX))
                .encode(metric.encode_family(&labels)?)?;
        }
        for (name, help, which) in [
            (
                "handling_seconds",
                "How long the handler took per record.",
                (|a: &Scraped| &a.handling) as fn(&Scraped) -> &(Vec<(f64, u64)>, f64, u64),
            ),
            (
                "end_to_end_seconds",
                "From a record's timestamp to the end of its handling.",
                |a: &Scraped| &a.end_to_end,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for actor in &self.actors {
                let (buckets, sum, count) = which(actor);
                let labels = [("actor", actor.name.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
            }
        }
        self.encode_brokers(&mut encoder)
    }
}

/// A per-broker figure: its name, help, type, and where it is.
type BrokerFigure = (
    &'static str,
    &'static str,
    MetricType,
    fn(&BrokerStats) -> f64,
);

/// What each client measured of each broker (librdkafka's statistics).
const BROKER_FIGURES: &[BrokerFigure] = &[
    (
        "kafka_rtt_avg_seconds",
        "Average request round trip to the broker.",
        MetricType::Gauge,
        |b| b.rtt_avg_us as f64 / 1e6,
    ),
    (
        "kafka_rtt_p99_seconds",
        "99th percentile of the request round trip to the broker.",
        MetricType::Gauge,
        |b| b.rtt_p99_us as f64 / 1e6,
    ),
    (
        "kafka_request_errors",
        "Requests to the broker that failed to go out or come back, or timed out.",
        MetricType::Counter,
        |b| b.request_errors as f64,
    ),
    (
        "kafka_connects",
        "Connections made to the broker.",
        MetricType::Counter,
        |b| b.connects as f64,
    ),
    (
        "kafka_disconnects",
        "Connections to the broker lost.",
        MetricType::Counter,
        |b| b.disconnects as f64,
    ),
];

impl Snapshot {
    fn encode_brokers(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> std::result::Result<(), std::fmt::Error> {
        for (name, help, kind, value) in BROKER_FIGURES {
            let mut metric = encoder.encode_descriptor(name, help, None, *kind)?;
            for actor in &self.actors {
                for ((client, broker), figures) in &actor.kafka.brokers {
                    let labels = [
                        ("actor", actor.name.as_str()),
                        ("client", client),
                        ("broker", broker.as_str()),
                    ];
                    let family = metric.encode_family(&labels)?;
                    match kind {
                        MetricType::Counter => {
                            ConstCounter::new(value(figures) as u64).encode(family)?
                        }
                        _ => ConstGauge::new(value(figures)).encode(family)?,
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(state: ActorState, assignments: u64) -> Admin {
        let stats = Arc::new(ActorStats::default());
        stats.set_state(state);
        for _ in 0..assignments {
            stats.assigned(3);
        }
        ActorStats::add(&stats.handled, 7);
        Admin::new(
            "n".into(),
            vec![AdminActor {
                name: "relay".into(),
                output: "out".into(),
                subscriptions: vec!["in".into()],
                stats,
            }],
            None,
        )
    }

    #[test]
    fn a_running_actor_is_not_ready_until_its_consumer_is_assigned() {
        let waiting = admin(ActorState::Running, 0);
        assert_eq!(
            waiting.actors[0].not_ready().as_deref(),
            Some("its consumer has not been assigned partitions yet")
        );
        assert_eq!(admin(ActorState::Running, 1).actors[0].not_ready(), None);
    }

    #[test]
    fn metrics_name_each_counter_and_state_per_actor() {
        let admin = admin(ActorState::Running, 1);
        let mut registry = Registry::with_prefix("scribe");
        registry.register_collector(Box::new(Snapshot::of(&admin)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("scribe_records_handled_total{actor=\"relay\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_state{actor=\"relay\",state=\"running\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_state{actor=\"relay\",state=\"unhealthy\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_assigned_partitions{actor=\"relay\"} 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_unhealthy_actor_stays_unhealthy() {
        let stats = ActorStats::default();
        stats.set_state(ActorState::Unhealthy);
        stats.set_state(ActorState::Stopped);
        assert_eq!(stats.state(), ActorState::Unhealthy);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

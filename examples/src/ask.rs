//! Ask an actor from an HTTP handler: a [`Doubler`] actor answers
//! [`DoubleRequest`]s on the topic it owns; an actix-web endpoint, `GET
//! /double/{n}`, asks it through a [`scribe::Gateway`] that owns the
//! request topic, and returns the answer as JSON.
//!
//! ```text
//! GET /double/21 ─▶ gateway ──double.requests──▶ doubler ──double.replies──▶ gateway ─▶ {"n":21,"doubled":42}
//! ```

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use apache_avro::AvroSchema;
use scribe::prelude::*;
use scribe::{Gateway, GatewayOptions, NodeBuilder, RunningNode};
use serde::{Deserialize, Serialize};

/// The request topic, owned by the HTTP gateway.
pub const REQUESTS: &str = "double.requests";
/// The reply topic, owned by the doubler.
pub const REPLIES: &str = "double.replies";

/// Please double `n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.examples")]
pub struct DoubleRequest {
    /// The number to double.
    pub n: i64,
}

/// `n`, doubled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.examples")]
pub struct Doubled {
    /// The number asked about.
    pub n: i64,
    /// Twice it.
    pub doubled: i64,
}

/// The responder: answers each request on the topic it owns.
#[derive(Debug)]
pub struct Doubler {
    out: Publisher<Doubled>,
}

impl Actor for Doubler {
    type Context = Context<Self>;
}

impl TopicActor for Doubler {
    type Output = Doubled;
    type Args = ();
    fn subscriptions(_: &(), subs: &mut Subscriptions<Self>) {
        subs.subscribe::<DoubleRequest>(REQUESTS);
    }
    fn create(_: (), out: Publisher<Doubled>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<DoubleRequest>> for Doubler {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<DoubleRequest>, _: &mut Context<Self>) -> Self::Result {
        let doubled = m.n.checked_mul(2).ok_or("too large to double")?;
        // Published while handling the request: the reply's causation id
        // is the request's id, which is how the gateway matches it.
        self.out
            .publish(m.key().unwrap_or_default(), Doubled { n: m.n, doubled })?;
        Ok(())
    }
}

/// Adds the doubler to `node`, and declares the gateway that asks it (so
/// the one-writer check covers the request topic).
pub fn doubler(node: NodeBuilder) -> NodeBuilder {
    node.actor::<Doubler>("doubler", REPLIES, ())
        .gateway("http", REQUESTS, REPLIES)
}

/// The gateway the HTTP endpoint asks through, on `node`.
pub async fn gateway(node: &RunningNode) -> scribe::Result<Arc<Gateway<DoubleRequest, Doubled>>> {
    let options = GatewayOptions::new("http", REQUESTS, REPLIES).timeout(Duration::from_secs(5));
    Ok(Arc::new(node.gateway(options).await?))
}

/// `GET /double/{n}`: 200 with the answer; 504 when none came in time.
async fn double(
    n: web::Path<i64>,
    gateway: web::Data<Gateway<DoubleRequest, Doubled>>,
) -> HttpResponse {
    let n = n.into_inner();
    match gateway.ask(&n.to_string(), &DoubleRequest { n }).await {
        Ok(answer) => HttpResponse::Ok().json(answer),
        Err(error @ scribe::Error::AskTimedOut { .. }) => {
            HttpResponse::GatewayTimeout().json(serde_json::json!({ "error": error.to_string() }))
        }
        Err(error) => HttpResponse::BadGateway()
            .json(serde_json::json!({ "error": scribe::error_chain(&error) })),
    }
}

/// The endpoint's routes, asking through `gateway`.
pub fn routes(
    gateway: Arc<Gateway<DoubleRequest, Doubled>>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::from(gateway))
            .route("/double/{n}", web::get().to(double));
    }
}

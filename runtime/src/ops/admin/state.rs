//! `GET /actors/NAME/state/KEY`: the value of a key in an actor's stores,
//! as JSON, when this node holds the key's partition; otherwise which
//! partition holds it and that this node does not (routing the query to
//! the node that does is the caller's).
//!
//! `?store=NAME` asks one store; without it, every store of the actor
//! answers. The values are the committed ones (under exactly-once, what
//! the last committed transaction left).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::http::{error, named, refused};
use super::node::Admin;
use crate::ops::state_query::StateAnswer;
use crate::ops::stats::ActorState;

/// The query string of a state query.
#[derive(Debug, serde::Deserialize)]
pub(super) struct StateParams {
    store: Option<String>,
}

pub(super) async fn state(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    params: web::Query<StateParams>,
    admin: web::Data<Admin>,
) -> HttpResponse {
    if let Some(refused) = refused(&req, &admin) {
        return refused;
    }
    let (name, key) = path.into_inner();
    let actor = match named(&admin, &name) {
        Ok(actor) => actor,
        Err(unknown) => return *unknown,
    };
    if actor.stores.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("actor `{name}` has no stores: it keeps no state to read"),
        );
    }
    let running = actor.stats.state() == ActorState::Running;
    let Some(view) = actor.stats.state_view().filter(|_| running) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "actor `{name}` is {}: it holds no state until an instance runs",
                actor.shown_state()
            ),
        );
    };
    let store = params.store.as_deref();
    match view.query(&key, store) {
        StateAnswer::Held { partition, values } => {
            let found = values.values().any(Option::is_some);
            let body = json!({
                "actor": name,
                "key": key,
                "partition": partition,
                "held": true,
                "stores": values,
            });
            if found {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::NotFound().json(body)
            }
        }
        StateAnswer::NotHeld { partition, held } => {
            let restoring = partition.filter(|p| {
                actor
                    .stats
                    .restores()
                    .iter()
                    .any(|((_, restored), _)| restored == p)
            });
            let (status, message) = match (restoring, partition) {
                (Some(p), _) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "partition {p}, which holds key `{key}`, is being restored on this node: ask again"
                    ),
                ),
                (None, Some(p)) => (
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "partition {p} holds key `{key}`, and this node does not hold it (it holds {held:?}): ask the node that does"
                    ),
                ),
                (None, None) => (
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("no partition this node holds ({held:?}) has key `{key}`"),
                ),
            };
            HttpResponse::build(status).json(json!({
                "actor": name,
                "key": key,
                "partition": partition,
                "held": false,
                "held_partitions": held,
                "error": message,
            }))
        }
        StateAnswer::Refused(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

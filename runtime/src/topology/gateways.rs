//! Gateways ([`GatewayInfo`]): each owns its request topic, is paired
//! with the responder that owns its reply topic, and asks and expects
//! types that responder reads and writes.

use apache_avro::schema_compatibility::SchemaCompatibility;

use super::actors::ActorInfo;
use crate::actor::Binding;
use crate::error::{Error, Result};

/// A gateway a node declares (`[[gateways]]`,
/// [`NodeBuilder::gateway`](crate::NodeBuilder::gateway)): it writes
/// `requests`, which it owns, and reads the replies the owner of `replies`
/// publishes (see [`Gateway`](crate::Gateway)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInfo {
    /// Its name.
    pub name: String,
    /// The topic it owns and asks on.
    pub requests: String,
    /// The topic the responder owns and answers on.
    pub replies: String,
    /// The Avro full name of the record type it asks with, when declared
    /// ([`NodeBuilder::gateway_types`](crate::NodeBuilder::gateway_types)).
    pub request_type: Option<String>,
    /// The Avro full name of the record type it expects back, when declared.
    pub reply_type: Option<String>,
}

/// Whether the types `gateway` declares fit `responder`, by name: its
/// subscription to the request topic takes the request type, and the reply
/// type is one it writes. The schemas themselves are checked when a program
/// opens the gateway ([`RunningNode::gateway`](crate::RunningNode::gateway)).
fn check_declared_types(
    responder: &ActorInfo,
    gateway: &GatewayInfo,
) -> std::result::Result<(), String> {
    let mut reading = responder
        .subscriptions
        .iter()
        .filter(|s| s.reads(&gateway.requests))
        .peekable();
    if let Some(request) = &gateway.request_type
        && let Some(first) = reading.peek().copied()
        && !reading.any(|s| match &s.binding {
            Binding::Every | Binding::Type => s.record_type == *request,
            Binding::Prefix(prefix) => request.starts_with(prefix.as_str()),
            // Read with the actor's own function: nothing to compare.
            Binding::Foreign => true,
        })
    {
        return Err(format!(
            "its request type `{request}` is not what actor `{}` reads there (`{}`)",
            responder.name, first.record_type
        ));
    }
    if let Some(reply) = &gateway.reply_type
        && !responder
            .output_schemas
            .iter()
            .any(|w| crate::wire::codec::full_name(w) == *reply)
    {
        return Err(format!(
            "its reply type `{reply}` is not what actor `{}` writes (`{}`)",
            responder.name, responder.output_type
        ));
    }
    Ok(())
}

/// The one-writer rule for gateways: a gateway's request topic is written
/// by no actor (nor as a dead-letter topic) and by no other gateway, and
/// is not its reply topic. With `whole` (every node of the deployment is
/// in `actors`), also the pairing: the reply topic has an owner, and that
/// owner reads the request topic (by name or pattern), so something
/// answers; the owner's name is the gateway's responder.
pub fn check_gateways(actors: &[ActorInfo], gateways: &[GatewayInfo], whole: bool) -> Result<()> {
    let refuse = |gateway: &GatewayInfo, topic: &str, reason: String| Error::GatewayTopic {
        gateway: gateway.name.clone(),
        topic: topic.to_owned(),
        reason,
    };
    for (i, gateway) in gateways.iter().enumerate() {
        if gateway.requests == gateway.replies {
            return Err(refuse(
                gateway,
                &gateway.requests,
                "it is also the reply topic: the responder writes that one".into(),
            ));
        }
        if let Some(actor) = actors.iter().find(|a| {
            a.output == gateway.requests
                || a.dead_letter_topic.as_deref() == Some(&gateway.requests)
        }) {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!("actor `{}` writes it (one writer per topic)", actor.name),
            ));
        }
        if let Some(other) = gateways[..i]
            .iter()
            .find(|g| g.requests == gateway.requests && g.name != gateway.name)
        {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "gateway `{}` writes it too (one writer per topic)",
                    other.name
                ),
            ));
        }
        if let Some(responder) = actors.iter().find(|a| a.output == gateway.replies) {
            check_declared_types(responder, gateway)
                .map_err(|reason| refuse(gateway, &gateway.requests, reason))?;
        }
        if !whole {
            continue;
        }
        let Some(responder) = actors.iter().find(|a| a.output == gateway.replies) else {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "no actor owns its reply topic `{}`, so nothing answers",
                    gateway.replies
                ),
            ));
        };
        if !responder
            .subscriptions
            .iter()
            .any(|s| s.reads(&gateway.requests))
        {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "actor `{}` owns its reply topic `{}` but does not read `{}`, so nothing answers",
                    responder.name, gateway.replies, gateway.requests
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a gateway asking with `request` and expecting `reply` fits
/// `responder` (the owner of its reply topic) on `requests`: the
/// responder's subscription there can read `request`, and `reply` can read
/// what the responder writes. Says what does not fit.
pub fn check_gateway_types(
    responder: &ActorInfo,
    requests: &str,
    request: &apache_avro::Schema,
    reply: &apache_avro::Schema,
) -> std::result::Result<(), String> {
    let name = |schema: &apache_avro::Schema| crate::wire::codec::full_name(schema);
    let sub = responder
        .subscriptions
        .iter()
        .filter(|s| s.reads(requests))
        .find(|s| match &s.binding {
            Binding::Every | Binding::Foreign => true,
            Binding::Type => s.record_type == name(request),
            Binding::Prefix(prefix) => name(request).starts_with(prefix.as_str()),
        })
        .ok_or_else(|| {
            format!(
                "actor `{}` owns the reply topic but takes no `{}` from `{requests}`",
                responder.name,
                name(request)
            )
        })?;
    if let Binding::Prefix(_) | Binding::Foreign = sub.binding {
        // Read as JSON, or by the actor's own function: nothing to check.
    } else {
        SchemaCompatibility::can_read(request, &sub.schema).map_err(|e| {
            format!(
                "actor `{}` reads `{requests}` as `{}`, which cannot read the request type `{}`: {e}",
                responder.name,
                sub.record_type,
                name(request)
            )
        })?;
    }
    let written = match responder.output_schemas.as_slice() {
        [one] => one,
        several => several
            .iter()
            .find(|w| name(w) == name(reply))
            .ok_or_else(|| {
                format!(
                    "actor `{}` writes no record of the reply type `{}` (it writes {})",
                    responder.name,
                    name(reply),
                    responder.output_type
                )
            })?,
    };
    SchemaCompatibility::can_read(written, reply).map_err(|e| {
        format!(
            "the reply type `{}` cannot read what actor `{}` writes, `{}`: {e}",
            name(reply),
            responder.name,
            responder.output_type
        )
    })?;
    Ok(())
}

/// What opening gateway `options` asks of a node of `actors`
/// ([`RunningNode::gateway`](crate::RunningNode::gateway), and a
/// simulation's): its request topic is one no actor writes, and when its
/// responder (the owner of its reply topic) is among `actors`, that
/// responder reads the request topic in a type that reads `request`, and
/// `reply` reads what it writes.
pub(crate) fn check_opened_gateway(
    actors: &[ActorInfo],
    options: &crate::GatewayOptions,
    request: &apache_avro::Schema,
    reply: &apache_avro::Schema,
) -> Result<()> {
    let declared = GatewayInfo {
        name: options.name.clone(),
        requests: options.requests.clone(),
        replies: options.replies.clone(),
        // Checked below by schema, which says more than names.
        request_type: None,
        reply_type: None,
    };
    check_gateways(actors, &[declared], false)?;
    if let Some(responder) = actors.iter().find(|a| a.output == options.replies) {
        check_gateway_types(responder, &options.requests, request, reply).map_err(|reason| {
            Error::GatewayTopic {
                gateway: options.name.clone(),
                topic: options.requests.clone(),
                reason,
            }
        })?;
    }
    Ok(())
}

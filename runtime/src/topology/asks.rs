//! What actors declare they ask ([`Subscriptions::asks`](crate::Subscriptions::asks)),
//! checked like gateways.

use super::actors::ActorInfo;
use super::gateways::check_gateway_types;
use crate::error::{Error, Result};

/// Checks the pairings actors declare
/// ([`Subscriptions::asks`](crate::Subscriptions::asks)): the request type
/// is one the asker writes, the reply topic is another's, and its owner
/// reads the asker's topic in a type that reads the request and writes a
/// type the reply reads. With `whole` (every actor of the deployment is
/// in `actors`), a reply topic nobody owns is refused too.
pub fn check_asks(actors: &[ActorInfo], whole: bool) -> Result<()> {
    for actor in actors {
        for ask in &actor.asks {
            let refuse = |reason: String| Error::InvalidSetting {
                setting: format!(
                    "actor `{}`: asks `{}` on `{}`",
                    actor.name, ask.request_type, ask.replies
                ),
                reason,
            };
            if !actor
                .output_schemas
                .iter()
                .any(|s| crate::wire::codec::full_name(s) == ask.request_type)
            {
                return Err(refuse(format!(
                    "it asks with `{}`, which it does not write ({})",
                    ask.request_type, actor.output_type
                )));
            }
            if ask.replies == actor.output {
                return Err(refuse(
                    "the replies come on the responder's topic, not the asker's own".into(),
                ));
            }
            match actors.iter().find(|a| a.output == ask.replies) {
                Some(responder) => {
                    check_gateway_types(responder, &actor.output, &ask.request, &ask.reply)
                        .map_err(refuse)?;
                }
                None if whole => {
                    return Err(refuse(format!(
                        "no actor owns `{}`, so nothing answers",
                        ask.replies
                    )));
                }
                None => {}
            }
        }
    }
    Ok(())
}

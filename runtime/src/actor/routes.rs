//! [`Routes`]: which decoder a topic's records go to, for one actor
//! instance.

use std::collections::HashMap;

use actix::{Actor, Context};

use super::decode::Route;
use super::info::SubscriptionInfo;
use super::pattern::pattern_regex;
use crate::error::Result;

/// The routes of one actor instance: which decoder a topic's records go to.
pub(crate) struct Routes<A: Actor<Context = Context<A>>> {
    routes: Vec<Box<dyn Route<A>>>,
    /// How the timers of each timer set reach the actor.
    pub(crate) timers: Vec<super::TimerRoute<A>>,
    exact: HashMap<String, usize>,
    /// Each pattern as Rust matches it, as librdkafka is given it, and its route.
    patterns: Vec<(regex::Regex, String, usize)>,
}

impl<A: Actor<Context = Context<A>>> Routes<A> {
    pub(crate) fn new() -> Self {
        Self {
            routes: Vec::new(),
            timers: Vec::new(),
            exact: HashMap::new(),
            patterns: Vec::new(),
        }
    }

    /// Adds a route for a topic, or for every topic matching a pattern.
    pub(crate) fn add(&mut self, info: &SubscriptionInfo, route: Box<dyn Route<A>>) -> Result<()> {
        let index = self.routes.len();
        self.routes.push(route);
        if info.pattern {
            let regex = pattern_regex(&info.topic)?;
            self.patterns
                .push((regex, format!("^{}", info.topic), index));
        } else {
            self.exact.insert(info.topic.clone(), index);
        }
        Ok(())
    }

    /// Whether there is nothing to consume.
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// What the consumer subscribes to: topic names, and `^`-prefixed
    /// patterns, which librdkafka matches against the cluster's topics.
    pub(crate) fn subscription(&self) -> Vec<String> {
        self.exact
            .keys()
            .cloned()
            .chain(
                self.patterns
                    .iter()
                    .map(|(_, subscription, _)| subscription.clone()),
            )
            .collect()
    }

    /// The route of `topic`'s records.
    pub(crate) fn find(&self, topic: &str) -> Option<usize> {
        self.exact.get(topic).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(re, _, _)| re.is_match(topic))
                .map(|(_, _, i)| *i)
        })
    }

    pub(crate) fn route(&self, index: usize) -> &dyn Route<A> {
        &*self.routes[index]
    }
}

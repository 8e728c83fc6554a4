//! Pausing and resuming an instance's consumer as the admin endpoint asks,
//! keeping what waits for its restore held back.

use super::{Feed, Source};
use crate::actor::TopicActor;

impl<A: TopicActor, S: Source> Feed<A, S> {
    /// Pauses or resumes the consumer as the admin endpoint asked, once
    /// per change (a load per poll otherwise).
    pub(super) fn apply_pause(&mut self, task: &std::task::Context<'_>) {
        self.stats.feed.register(task.waker());
        let wanted = self.stats.paused.load(std::sync::atomic::Ordering::Acquire);
        if wanted == self.paused {
            return;
        }
        let Some(consumer) = &self.consumer else {
            return;
        };
        let paused = consumer.set_paused(wanted).and_then(|()| {
            // What waits for its restore stays held back.
            match (&self.state, wanted) {
                (Some(state), false) => state
                    .held_back()
                    .try_for_each(|(topic, partition)| consumer.pause(topic, *partition)),
                _ => Ok(()),
            }
        });
        match paused {
            Ok(()) => {
                self.paused = wanted;
                self.stats
                    .pause_applied
                    .store(wanted, std::sync::atomic::Ordering::Release);
                tracing::info!(
                    actor = %self.actor,
                    "{}",
                    if wanted { "paused: taking no records" } else { "resumed" }
                );
            }
            Err(error) => {
                tracing::warn!(actor = %self.actor, %error, paused = wanted, "cannot pause or resume the consumer");
            }
        }
    }
}

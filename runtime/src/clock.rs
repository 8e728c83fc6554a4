//! The time and the ids actors see.
//!
//! Outside a simulation these are the system clock and random UUIDs. Inside
//! one ([`crate::sim`], feature `testing`) they are the simulated clock and
//! ids drawn from the simulation's seed, so a run is reproducible and
//! "one hour" passes in milliseconds. Actors that read the time should call
//! [`now`] or [`now_ms`] rather than `SystemTime::now()`: the result is the
//! same in production and follows the simulated clock in tests.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// The current time: the system's, or the simulated one inside a simulation.
pub fn now() -> SystemTime {
    #[cfg(feature = "testing")]
    if let Some(now) = virtual_time::now() {
        return now;
    }
    SystemTime::now()
}

/// [`now`] in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    millis_of(now())
}

/// `time` in milliseconds since the Unix epoch (0 before it), as record
/// timestamps are written.
pub fn millis_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh event id: random, or inside a simulation drawn from its seed.
pub(crate) fn new_id() -> Uuid {
    #[cfg(feature = "testing")]
    if let Some(id) = virtual_time::new_id() {
        return id;
    }
    Uuid::new_v4()
}

/// The simulated clock and id source of the thread running a simulation.
#[cfg(feature = "testing")]
pub(crate) mod virtual_time {
    use std::cell::RefCell;
    use std::time::SystemTime;

    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use uuid::Uuid;

    struct Virtual {
        /// The tokio instant (paused clock) at which the simulation began.
        start: tokio::time::Instant,
        /// The wall-clock time the simulation began at.
        base: SystemTime,
        ids: ChaCha8Rng,
    }

    thread_local! {
        static VIRTUAL: RefCell<Option<Virtual>> = const { RefCell::new(None) };
    }

    /// Makes this thread's clock and ids virtual until the guard drops.
    pub(crate) fn install(base: SystemTime, seed: u64) -> Guard {
        VIRTUAL.with(|v| {
            *v.borrow_mut() = Some(Virtual {
                start: tokio::time::Instant::now(),
                base,
                // A stream of its own, so ids do not shift when the
                // simulation draws more or fewer scheduling decisions.
                ids: ChaCha8Rng::seed_from_u64(seed ^ 0x05ee_d1d5),
            })
        });
        Guard(())
    }

    /// Restores the real clock when dropped.
    pub(crate) struct Guard(());

    impl Drop for Guard {
        fn drop(&mut self) {
            VIRTUAL.with(|v| v.borrow_mut().take());
        }
    }

    pub(super) fn now() -> Option<SystemTime> {
        VIRTUAL.with(|v| {
            v.borrow()
                .as_ref()
                .map(|v| v.base + (tokio::time::Instant::now() - v.start))
        })
    }

    pub(super) fn new_id() -> Option<Uuid> {
        VIRTUAL.with(|v| {
            v.borrow_mut().as_mut().map(|v| {
                let mut bytes = [0u8; 16];
                v.ids.fill_bytes(&mut bytes);
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            })
        })
    }
}

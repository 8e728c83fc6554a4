//! The time and the ids actors see.
//!
//! Outside a simulation these are the system clock and random UUIDs. Inside
//! one (`scribe::sim`, feature `testing`) they are the simulated clock and
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

/// The simulated clock and id source of a simulation, in force on its
/// thread while the simulation runs.
#[cfg(feature = "testing")]
pub(crate) mod virtual_time {
    use std::cell::RefCell;
    use std::rc::Rc;
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

    /// One simulation's clock and ids.
    #[derive(Clone)]
    pub(crate) struct Clock(Rc<RefCell<Virtual>>);

    thread_local! {
        static CURRENT: RefCell<Option<Clock>> = const { RefCell::new(None) };
    }

    impl Clock {
        /// A clock starting now (read inside the simulation's runtime) at `base`.
        pub(crate) fn new(base: SystemTime, seed: u64) -> Self {
            Clock(Rc::new(RefCell::new(Virtual {
                start: tokio::time::Instant::now(),
                base,
                // A stream of its own, so ids do not shift when the
                // simulation draws more or fewer scheduling decisions.
                ids: ChaCha8Rng::seed_from_u64(seed ^ 0x05ee_d1d5),
            })))
        }

        /// Puts this clock in force on this thread until the guard drops
        /// (then whatever was in force before is again).
        pub(crate) fn enter(&self) -> Entered {
            Entered(CURRENT.with(|c| c.replace(Some(self.clone()))))
        }
    }

    /// Restores the clock in force before [`Clock::enter`].
    pub(crate) struct Entered(Option<Clock>);

    impl Drop for Entered {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }

    pub(super) fn now() -> Option<SystemTime> {
        CURRENT.with(|c| {
            c.borrow().as_ref().map(|clock| {
                let v = clock.0.borrow();
                v.base + (tokio::time::Instant::now() - v.start)
            })
        })
    }

    pub(super) fn new_id() -> Option<Uuid> {
        CURRENT.with(|c| {
            c.borrow().as_ref().map(|clock| {
                let mut bytes = [0u8; 16];
                clock.0.borrow_mut().ids.fill_bytes(&mut bytes);
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            })
        })
    }
}

//! The seed a simulation runs from: `SCRIBE_SIM_SEED` when set, so that
//! a failure is reproduced by its seed.

/// The environment variable that sets the seed of [`Simulation::new`](super::Simulation::new) and
/// [`seeds`].
pub const SEED_VAR: &str = "SCRIBE_SIM_SEED";

/// The seeds a test should run: the one in `SCRIBE_SIM_SEED` when set (to
/// reproduce a failure), otherwise `0..count`.
///
/// ```
/// for seed in scribe::sim::seeds(8) {
///     // let sim = Simulation::builder(node()).seed(seed).build()?; ...
/// #   let _ = seed;
/// }
/// ```
pub fn seeds(count: u64) -> Vec<u64> {
    match env_seed() {
        Some(seed) => vec![seed],
        None => (0..count).collect(),
    }
}

pub(super) fn env_seed() -> Option<u64> {
    std::env::var(SEED_VAR).ok()?.trim().parse().ok()
}

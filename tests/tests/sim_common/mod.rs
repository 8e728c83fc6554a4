//! Helpers the simulator tests share: numbers in, sequence numbers out.

use scribe::sim::Simulation;
use scribe_tests::records::Number;

/// Injects seqs `seqs` of keys `k0..k{keys}` into `in`, seq by seq.
pub(crate) fn inject(sim: &mut Simulation, keys: usize, seqs: std::ops::Range<i64>) {
    for seq in seqs {
        for k in 0..keys {
            let key = format!("k{k}");
            sim.inject(
                "in",
                &key,
                &Number {
                    key: key.clone(),
                    seq,
                },
            )
            .expect("injected");
        }
    }
}

/// The sequence numbers on `topic` under `key`, in order.
pub(crate) fn seqs(sim: &Simulation, topic: &str, key: &str) -> Vec<i64> {
    sim.values::<Number>(topic, key)
        .expect("readable")
        .iter()
        .map(|n| n.seq)
        .collect()
}

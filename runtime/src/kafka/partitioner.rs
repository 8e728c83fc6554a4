//! Where a keyed record goes: Kafka's default partitioner.

/// The partition Kafka's default partitioner (and librdkafka's
/// `murmur2_random`, which scribe's producers use) gives a record with
/// `key` on a topic of `partitions` partitions: murmur2 of the key, made
/// positive, modulo the partition count.
///
/// ```
/// let partition = scribe::partition_for_key(b"sensor-7", 6);
/// assert!((0..6).contains(&partition));
/// // The same key always lands on the same partition.
/// assert_eq!(partition, scribe::partition_for_key(b"sensor-7", 6));
/// ```
///
/// `tests/tests/keys_land_where_the_partitioner_says.rs` checks it against
/// where scribe's producer actually puts records, on a real broker.
///
/// # Panics
/// When `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// Kafka's murmur2 (seed 0x9747b28c), as its Java client computes it.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::murmur2;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from the Java client's own tests (Utils.murmur2), as i32.
        let cases: [(&str, i32); 4] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()) as i32, expected, "{input}");
        }
    }
}

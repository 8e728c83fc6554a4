//! [`Fingerprint`]: how a single-object value names its writer's schema,
//! after the marker that opens it.

use std::fmt;

use apache_avro::{Schema, rabin::Rabin};

/// The two bytes that open every single-object encoded value.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// Length of the single-object header: marker and fingerprint.
pub(crate) const HEADER_LEN: usize = 10;

/// The CRC-64-AVRO (Rabin) fingerprint of a schema's parsing canonical form,
/// as the 8 little-endian bytes the single-object header carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 8]);

impl Fingerprint {
    /// Computes the fingerprint of a schema.
    pub fn of(schema: &Schema) -> Self {
        let bytes = schema.fingerprint::<Rabin>().bytes;
        let mut out = [0u8; 8];
        out.copy_from_slice(&bytes[..8]);
        Fingerprint(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

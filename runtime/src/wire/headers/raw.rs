//! Reading a consumed record's headers from librdkafka directly, whatever
//! bytes their keys are: rust-rdkafka's accessors panic on a key that is
//! not UTF-8, which any Kafka client may write (a key is bytes on the
//! wire). Such a header is reported, never read as text.
//!
//! The one module of scribe with `unsafe` code (the workspace denies it
//! elsewhere; `tests/tests/unsafe_code_stays_in_one_audited_module.rs`
//! checks): three calls into librdkafka's C API, each explained below.

#![allow(unsafe_code)]

use std::ffi::CStr;

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

/// A header left out of a consumed record's headers because its key is
/// not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableKey {
    /// Its position among the record's headers, from 0.
    pub index: usize,
    /// Its key, every byte that is not printable ASCII escaped (`\xff`),
    /// cut to [`UnreadableKey::SHOWN`] characters.
    pub key: String,
}

impl UnreadableKey {
    /// The most characters of a key it shows.
    pub const SHOWN: usize = 64;

    fn new(index: usize, key: &[u8]) -> Self {
        let escaped = key.escape_ascii().to_string();
        let key = match escaped.char_indices().nth(Self::SHOWN) {
            Some((at, _)) => format!("{}...", &escaped[..at]),
            None => escaped,
        };
        Self { index, key }
    }
}

/// Calls `header` with the position, key and value of each header of
/// `message`, in order; the value of a header without one is empty.
pub(super) fn each<'a>(
    message: &'a BorrowedMessage<'_>,
    mut header: impl FnMut(usize, &'a [u8], &'a [u8]),
) {
    let mut list: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the native message `message` owns, alive
    // while it is borrowed. librdkafka sets `list` to the message's own
    // header list (freed with the message), or fails and leaves it null.
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut list) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || list.is_null() {
        return;
    }
    // SAFETY: `list` is the valid header list read above.
    let count = unsafe { rd::rd_kafka_header_cnt(list) };
    for index in 0..count {
        let mut name = std::ptr::null();
        let mut value = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `index` is below the list's count; librdkafka points
        // `name` at the header's NUL-terminated key and `value` at its
        // `size` bytes (null for no value), both inside the list, which
        // lives as long as `message`: so do the slices made of them.
        let err =
            unsafe { rd::rd_kafka_header_get_all(list, index, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: as above; `name` is NUL-terminated.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value: &[u8] = if value.is_null() || size == 0 {
            &[]
        } else {
            // SAFETY: as above: `size` bytes at `value`.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }
        };
        header(index, key, value);
    }
}

/// Calls `pair` with each header of `message` whose key is UTF-8, and
/// `unreadable` with each other one.
pub(super) fn each_pair<'a>(
    message: &'a BorrowedMessage<'_>,
    mut pair: impl FnMut(&'a str, &'a [u8]),
    mut unreadable: impl FnMut(UnreadableKey),
) {
    each(message, |index, key, value| {
        match std::str::from_utf8(key) {
            Ok(key) => pair(key, value),
            Err(_) => unreadable(UnreadableKey::new(index, key)),
        }
    });
}

/// Every header of a consumed record as (key, value), and the headers
/// left out because their key is not UTF-8.
pub fn kafka_pairs<'a>(
    message: &'a BorrowedMessage<'_>,
) -> (Vec<(&'a str, &'a [u8])>, Vec<UnreadableKey>) {
    let mut pairs = Vec::new();
    let mut unreadable = Vec::new();
    each_pair(
        message,
        |key, value| pairs.push((key, value)),
        |key| unreadable.push(key),
    );
    (pairs, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_key_is_shown_escaped_and_cut() {
        let key = UnreadableKey::new(2, b"k\xff\x00");
        assert_eq!(
            key,
            UnreadableKey {
                index: 2,
                key: r"k\xff\x00".into()
            }
        );
        let long = UnreadableKey::new(0, &[0xfe; 100]);
        assert_eq!(long.key.chars().count(), UnreadableKey::SHOWN + 3);
        assert!(long.key.ends_with("..."), "{}", long.key);
    }
}

//! The BEGIN record at the start of a send stream (from a peer).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zrelay_zfs::stream_begin::parse(data);
});

//! Resume tokens (from a receiver, or a peer): the token text, and the
//! packed nvlist inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zrelay_zfs::resume_token::nvlist::decode(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zrelay_zfs::resume_token::decode(s);
    }
});

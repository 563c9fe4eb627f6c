//! Frames after the hello, as a server reads them from a peer: headers,
//! control payloads decoded as requests and checked, data chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zrelay_rpc::fuzz::server_frames(data));

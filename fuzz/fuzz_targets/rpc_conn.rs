//! A peer's whole side of a connection to a sink or source: the hello, then
//! frames (control messages decoded as requests and checked, data read).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zrelay_rpc::fuzz::server_conn(data));

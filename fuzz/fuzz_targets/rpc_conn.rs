//! A peer's whole side of a connection to a sink or source: the hello, then
//! frames (control messages decoded as requests and checked, data read).
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| rt.block_on(zrelay_rpc::fuzz::server_conn(data)));
});

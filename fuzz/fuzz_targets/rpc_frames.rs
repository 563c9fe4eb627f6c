//! Frames after the hello, as a server reads them from a peer: headers,
//! control payloads decoded as requests and checked, data chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| rt.block_on(zrelay_rpc::fuzz::server_frames(data)));
});

//! A configuration file (zrepl's YAML).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // zrelay_config catches a panic of its YAML parser (libyaml-safer 0.3.0
    // panics on some malformed tags) and refuses the file. libfuzzer-sys's
    // panic hook would abort on that caught panic, so the hook is quiet
    // here; a panic nothing catches still aborts, and is reported.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zrelay_config::parse_str(s, std::path::Path::new("/etc/zrelay/zrelay.yml"));
    }
});

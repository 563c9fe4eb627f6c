//! What zrelay parses from `zfs` and `zpool`: the listing, property rows,
//! holds, send estimates, channel-program tables, pool feature flags,
//! destroy and receive errors. The first byte picks the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zrelay_zfs::parse::{batch, destroy, features, holds, list, send_dry, stderr};

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 9 {
        0 => drop(list::parse_list(s)),
        1 => drop(list::parse_placeholder_get(s)),
        2 => drop(batch::parse_get_rows(s)),
        3 => drop(holds::parse_holds(s)),
        4 => drop(send_dry::parse_send_dry(s)),
        5 => drop(batch::parse_program_table(s)),
        6 => drop(destroy::parse_destroy_stderr("pool/fs", s)),
        7 => drop(features::parse_pool_features(s)),
        _ => {
            let _ = stderr::classify(s);
            let _ = stderr::recv_resume_token(s);
            let _ = batch::named_errors(s);
        }
    }
});

//! Hostile configuration files end quickly, in a clear error that names the
//! file, the line and the limit: alias expansion ("billion laughs"), deep
//! nesting, many keys, long keys and scalars. Times are printed (run with
//! `--nocapture`) and asserted loosely: a generous absolute bound that holds
//! in debug builds, and, for the key counts, a growth ratio that a quadratic
//! algorithm cannot meet. Times are the test thread's CPU time, not the wall
//! clock: on a 2-core machine shared with a test guest or a build, the wall
//! clock counted the time the thread waited for a core, and both bounds
//! failed there with nothing slow in the parser.

use std::path::Path;
use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

use zrelay_config::{parse_str, ConfigError};

/// Far above what any of these inputs takes in a debug build (tens of ms),
/// far below what the quadratic or exponential versions took (seconds to
/// an allocation failure).
const BOUND: Duration = Duration::from_secs(3);

/// The CPU time this thread has used so far.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn timed(name: &str, text: &str) -> (Result<zrelay_config::Config, ConfigError>, Duration) {
    let t = thread_cpu();
    let r = parse_str(text, Path::new("/etc/zrelay/hostile.yml"));
    let d = thread_cpu().saturating_sub(t);
    eprintln!("{name}: {} bytes in {d:?} of CPU", text.len());
    (r, d)
}

fn refused(name: &str, text: &str, want: &str) -> String {
    let (r, d) = timed(name, text);
    let e = r.expect_err(name).to_string();
    assert!(e.starts_with("/etc/zrelay/hostile.yml:"), "{name}: {e}");
    assert!(e.contains(want), "{name}: {e}");
    assert!(e.len() < 1000, "{name}: error of {} bytes", e.len());
    assert!(d < BOUND, "{name}: {d:?}");
    e
}

#[test]
fn billion_laughs_stops_at_the_alias_budget() {
    let mut s = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, this) = (w[0], w[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        s.push_str(&format!("{this}: &{this} [{refs}]\n"));
    }
    assert!(s.len() < 700, "{}", s.len());
    let e = refused(
        "billion laughs",
        &s,
        "aliases expand to more than 100000 nodes",
    );
    // Line 7: *e copies 9^4+… nodes; the budget runs out there.
    assert!(e.contains(":7:") || e.contains(":6:"), "{e}");
}

#[test]
fn aliases_within_the_budget_still_work() {
    let text = "x: &x {a: 1}\njobs: []\n";
    // An unknown top-level key is refused after the alias was expanded.
    let (r, _) = timed("small alias", text);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("unknown key \"x\""), "{e}");
}

fn keys(n: usize, prefix: &str) -> String {
    let mut s = String::from(
        "jobs:\n- name: snapjob\n  type: snap\n  snapshotting: {type: manual}\n  pruning: {keep: [{type: last_n, count: 1}]}\n  filesystems:\n",
    );
    for i in 0..n {
        s.push_str(&format!("    \"pool/{prefix}{i}\": true\n"));
    }
    s
}

/// `n` distinct top-level keys: the whole tree is built (duplicate check
/// included), then the first unknown key is refused.
fn root_keys(n: usize, prefix: &str) -> String {
    let mut s = String::from("jobs: []\n");
    for i in 0..n {
        s.push_str(&format!("\"{prefix}{i}\": 1\n"));
    }
    s
}

fn best_of_3(name: &str, text: &str, want: &str) -> Duration {
    (0..3)
        .map(|_| {
            let (r, d) = timed(name, text);
            match r {
                Ok(_) if want.is_empty() => {}
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => {
                    let e = e.to_string();
                    assert!(!want.is_empty() && e.contains(want), "{name}: {e}");
                }
            }
            d
        })
        .min()
        .unwrap()
}

#[test]
fn many_distinct_keys_are_linear() {
    let want = "unknown key \"k0\"";
    let small = best_of_3("40k keys", &root_keys(40_000, "k"), want);
    let large = best_of_3("200k keys", &root_keys(200_000, "k"), want);
    assert!(large < BOUND, "200k keys: {large:?}");
    // 5x the keys: linear is ~5x, quadratic 25x.
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-3);
    eprintln!("200k/40k time ratio: {ratio:.1}");
    assert!(ratio < 12.0, "ratio {ratio:.1}: {small:?} -> {large:?}");
}

#[test]
fn many_keys_with_a_long_common_prefix_are_fast() {
    let prefix = "x".repeat(200);
    let want = format!("unknown key \"{prefix}0\"");
    let d = best_of_3(
        "40k keys, 200-byte common prefix",
        &root_keys(40_000, &prefix),
        &want,
    );
    assert!(d < BOUND, "{d:?}");
}

#[test]
fn a_filter_of_40k_filesystems_validates_fast() {
    let d = best_of_3("40k filesystems", &keys(40_000, "k"), "");
    assert!(d < BOUND, "{d:?}");
}

#[test]
fn a_late_duplicate_among_many_keys_names_both_lines() {
    let mut s = keys(40_000, "k");
    s.push_str("    \"pool/k7\": false\n");
    let e = refused("duplicate after 40k keys", &s, "duplicate key \"pool/k7\"");
    assert!(e.contains("(first defined on line 14)"), "{e}");
    assert!(e.contains(":40007:"), "{e}");
}

#[test]
fn deep_flow_sequences_are_refused() {
    let n = 100_000;
    let s = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
    refused("100k nested [", &s, "nest deeper than 64 levels");
}

#[test]
fn deep_flow_mappings_are_refused() {
    let n = 100_000;
    let s = format!("a: {}1{}\n", "{a: ".repeat(n), "}".repeat(n));
    refused("100k nested {a:", &s, "nest deeper than 64 levels");
}

#[test]
fn deep_block_sequences_are_refused() {
    // `- - - x`: block sequences nest on one line.
    let s = format!("{}x\n", "- ".repeat(100_000));
    refused("100k nested block -", &s, "nest deeper than 64 levels");
}

#[test]
fn unclosed_deep_nesting_is_refused_too() {
    let s = format!("a: {}\n", "[".repeat(100_000));
    refused("100k unclosed [", &s, "nest deeper than 64 levels");
}

#[test]
fn nesting_up_to_the_limit_parses() {
    // 63 sequences inside the root mapping: 64 collections.
    let s = format!("x: {}1{}\n", "[".repeat(63), "]".repeat(63));
    let (r, _) = timed("64 levels", &s);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("unknown key \"x\""), "{e}");
    let s = format!("x: {}1{}\n", "[".repeat(64), "]".repeat(64));
    refused("65 levels", &s, "nest deeper than 64 levels");
}

#[test]
fn a_long_scalar_is_read_and_shown_cut() {
    let long = "y".repeat(10 << 20);
    // An implicit key longer than 1024 characters is not YAML (libyaml).
    let s = format!("{long}: 1\n");
    refused("10 MiB key", &s, "mapping values are not allowed");
    // As an explicit key it is a key, refused as unknown and shown cut.
    let s = format!("? {long}\n: 1\n");
    let e = refused("10 MiB explicit key", &s, "unknown key \"yyyy");
    assert!(e.contains("(10485760 bytes)"), "{e}");
    let s = format!("jobs: \"{long}\"\n");
    let e = refused("10 MiB value", &s, "expected a sequence, found string");
    assert!(e.contains("(10485760 bytes)"), "{e}");
}

/// Found by the `config` fuzz target: the YAML parser (libyaml-safer 0.3.0)
/// panicked on a tag followed directly by `,` in a flow sequence. The file
/// is refused with an error instead of crashing `configcheck` or the daemon.
#[test]
fn a_tag_the_yaml_parser_gives_up_on_is_an_error_not_a_crash() {
    for text in [
        "jobs:\n- name: sink\n  recv:\n    properties:\n      allow_from_sender: [!exec, compression]\n",
        "[!x,]",
    ] {
        refused("tag-comma", text, "the YAML parser gave up on this file");
    }
}

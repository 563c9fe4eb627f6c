//! Hostile peers against the real `zrelay daemon` binary on loopback (no ZFS needed):
//! idle connections before and after the hello, slow frames, oversized announced frames,
//! more connections than the caps, fuzzed frames, hostile names and tokens, log
//! injection, descriptor exhaustion. Every attack ends with the daemon alive, its RSS
//! under a bound, a clear refusal in its log (and no forged line), and a legitimate
//! client still served. Figures (RSS, time until a slow peer is cut off) are printed as
//! `FIGURE …` lines: run with `--nocapture` to see them. `ZRELAY_BIN=/path/to/zrelay`
//! runs the suite against another build (e.g. the release binary).

mod attacks_conn;
mod attacks_text;
mod harness;

//! Showing text that came from outside (a peer, a token, `zfs` output, a
//! config) in a log line, an error, status or history.
//!
//! Invariants:
//! - [`show`] output is one line: every control character, quote and
//!   backslash is escaped (as Rust's `escape_debug` does), so peer text can
//!   never start a forged log line or break a quoted field.
//! - It holds at most `max` bytes of the input (cut on a character
//!   boundary), followed by a note of how long the input was, so a hostile
//!   60 MiB name costs a few hundred bytes wherever it is shown.

/// How many bytes of peer text a log line, error frame, status or history
/// entry shows by default.
pub const PEER_TEXT_MAX: usize = 256;

/// `s` escaped onto one line and cut to its first `max` bytes; a cut text
/// ends with `…(N bytes)` giving the full length.
pub fn show(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 16);
    for c in s[..end].chars() {
        // escape_debug keeps printable non-ASCII as is and escapes controls,
        // quotes and backslashes; bidi and other format characters too.
        out.extend(c.escape_debug());
    }
    if end < s.len() {
        out.push_str(&format!("…({} bytes)", s.len()));
    }
    out
}

/// [`show`] with [`PEER_TEXT_MAX`].
pub fn peer(s: &str) -> String {
    show(s, PEER_TEXT_MAX)
}

/// [`show`] for bytes that may not be UTF-8 (invalid sequences become U+FFFD).
pub fn show_bytes(b: &[u8], max: usize) -> String {
    let cut = &b[..b.len().min(max)];
    let mut s = show(&String::from_utf8_lossy(cut), usize::MAX);
    if b.len() > max {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_controls_are_escaped() {
        let s = show("a\nb\r\x1b[31m\"\\", 100);
        assert_eq!(s, "a\\nb\\r\\u{1b}[31m\\\"\\\\");
        assert!(!s.contains('\n') && !s.contains('\r'));
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "x".repeat(60 << 20);
        let s = peer(&long);
        assert!(s.len() < PEER_TEXT_MAX + 32, "{}", s.len());
        assert!(s.ends_with(&format!("…({} bytes)", 60 << 20)));
        assert_eq!(show("aéb", 2), "a…(4 bytes)");
        assert_eq!(show("abc", 3), "abc");
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        assert_eq!(show_bytes(b"ok\xff\n", 10), "ok\u{fffd}\\n");
        assert_eq!(show_bytes(b"abcdef", 2), "ab…(6 bytes)");
    }
}

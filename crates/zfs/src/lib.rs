//! `zrelay-zfs`: the only place where zrelay runs `zfs` or `zpool`.
//!
//! Invariants:
//! - Every dataset, snapshot and bookmark name that reaches a command line has been
//!   validated by [`name`] the way OpenZFS's `entity_namecheck` validates it.
//! - Parsers in [`parse`] are pure functions of command output; they never run commands.

pub mod name;
pub mod parse;

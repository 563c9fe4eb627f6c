//! `zrelay-zfs`: the only place where zrelay runs `zfs` or `zpool`.
//!
//! Invariants:
//! - Every dataset, snapshot and bookmark name that reaches a command line has been
//!   validated by [`name`] the way OpenZFS's `entity_namecheck` validates it.
//! - Parsers in [`parse`] are pure functions of command output; they never run commands.
//! - Every invocation goes through [`cmd::Runner`], which logs it with its duration and
//!   keeps the list of running commands ([`cmd::InvocationLog`]).
//! - `zfs send` runs only from [`send_args::ValidatedSendArgs`]; resume tokens are decoded
//!   from their binary form ([`resume_token`], never from `zfs send -nvt` text) and checked
//!   against the requested filesystem, GUIDs and encryption policy in one place.
//! - `zfs recv -F` is reachable only through [`api::Zfs::recv_force_rollback`].
//! - Every error is classed temporary or permanent ([`error::ErrorClass`],
//!   through [`error::Classify`], which every zrelay crate's error implements).

pub mod api;
pub mod cmd;
pub mod error;
pub mod name;
pub mod parse;
pub mod peer_text;
pub mod process;
pub mod real;
mod real_batch;
mod real_bookmarks;
pub mod resume_token;
pub mod send_args;
pub mod stream_begin;

pub use api::{
    DestroyReport, DestroyTarget, Features, PropertyValue, RecvArgs, VersionRef, Zfs, ZfsVersion,
};
pub use error::{Classify, ErrorClass, Result, ZfsError};
pub use name::{BookmarkName, DatasetPath, SnapshotName};
pub use real::RealZfs;
pub use send_args::{SendArgs, SendFlags, ValidatedSendArgs};

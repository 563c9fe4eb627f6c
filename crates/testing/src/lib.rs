//! `zrelay-testing`: the behavioural suites and fault injection that tests
//! of zrelay share.
//!
//! - [`conformance`]: the ZFS-layer suite every `zrelay_zfs::Zfs`
//!   implementation must pass (the in-memory fake of `zrelay-fake` in
//!   `cargo test`, `RealZfs` in `zrelay-platformtest`).
//! - [`replication`]: the replication engine's suite, through the local
//!   endpoints and the driver.
//! - [`faults`]: fault-injecting wrappers of the endpoint traits.
//!
//! Invariants:
//! - Only test code depends on this crate (crates' `[dev-dependencies]`,
//!   `zrelay-platformtest`, `bench`); it is never part of the release binary.
//! - The suites use only the public traits and types of the production
//!   crates and a fixture; nothing here knows whether ZFS is real, so the same
//!   cases run against the fake and against real OpenZFS.

pub mod conformance;
pub mod faults;
pub mod replication;

/// Fail a replication case unless the condition holds (the ZFS-layer
/// suite's macro, under the replication suite's name).
pub(crate) use crate::ensure_case as check;

//! `zrelay-pruning`: zrepl's pruning, exactly — the keep rules `grid`,
//! `last_n`, `regex` and `not_replicated` as pure functions ([`mod@evaluate`]),
//! and their execution against a sender, a receiver or a snap job's
//! filesystems ([`prune`]).
//!
//! Invariants:
//! - A pruning run destroys exactly the snapshots no rule keeps, minus the
//!   protected ones ([`plan_filesystem`]: the caller's `protect` GUIDs; on the
//!   receiver also its newest snapshot, the base of the next incremental, and
//!   the base of a resumable partial receive). With no rules it destroys
//!   nothing (zrepl 0.7).
//! - It never forces: a snapshot zfs refuses to destroy (a hold, such as
//!   zrepl's last-received or step holds, or a clone) is reported as kept,
//!   with the reason.
//! - It never touches bookmarks: only snapshots are subjects of the rules and
//!   of `destroy_snapshots` (the replication cursor bookmark stays).
//! - It never touches placeholders: receiver placeholder filesystems are
//!   skipped.
//! - Invalid rules (bad regex, `count: 0`, malformed grid) are errors, never
//!   panics; one filesystem's failure never stops the others.
//! - Evaluation does not depend on the order of the input snapshots.
//!
//! Sources: zrepl's `pruning/pruning.go`, `pruning/keep_grid.go`,
//! `pruning/retentiongrid/retentiongrid.go`, `pruning/keep_last_n.go`,
//! `pruning/keep_regex.go`, `pruning/keep_not_replicated.go`,
//! `config/retentiongrid.go` and `daemon/pruner/pruner.go` (with their
//! v0.7 `internal/` counterparts). Deviations are documented where they are
//! made: [`plan`] (cursor by `createtxg`, receiver protection), [`grid`]
//! (ties in creation time ordered by `createtxg`) and [`mod@evaluate`]
//! (`last_n` counts the newest by `createtxg`, which a clock stepped back
//! cannot reorder).

pub mod error;
pub mod evaluate;
pub mod exec;
pub mod grid;
pub mod job;
pub mod plan;
pub mod report;
pub mod rules;

pub use error::{PruneError, NO_CURSOR};
pub use evaluate::{evaluate, Cursor, Decision, Snap, NO_RULES};
pub use exec::{prune, try_prune, PruneOptions, Side};
pub use job::{receiver_protection, JobPruner};
pub use plan::{plan_filesystem, PROTECTED_BASE, PROTECTED_NEWEST, PROTECTED_RESUME};
pub use report::{FsPruneReport, PruneReport, SideKind};
pub use rules::{check_rules, format_grid, GridInterval, KeepRule, KeepRules};

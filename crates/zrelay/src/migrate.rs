//! `zrelay migrate`: zrepl's migrations of the state it keeps on ZFS.
//!
//! - `replication-cursor:v1-v2 [--dry-run]`. zrepl before 0.3 kept one
//!   replication cursor per filesystem, the bookmark
//!   `#zrepl_replication_cursor` (v1); zrepl 0.3 and later, and zrelay, keep
//!   one per job, `#zrepl_CURSOR_G_<guid>_J_<job>` (v2), which replication
//!   creates by itself. As zrepl's migration, this one renames nothing: for
//!   every filesystem with a v1 cursor it finds the one push or source job
//!   whose `filesystems` filter includes it, checks that this job already
//!   has a v2 cursor at the same or a later `createtxg`, and destroys the v1
//!   cursor. Run it after one successful replication with the new version.
//! - `0.0.X:0.1:placeholder` (also spelled `0.0.X:0.1-placeholder`): zrepl
//!   0.0.X marked placeholders with a hash-based property value, which zrepl
//!   0.1 rewrote. zrelay reads only the current form; it is not needed (a
//!   zrepl 0.0.X setup must be migrated with zrepl 0.1 first).
//!
//! Invariants: a v1 cursor is destroyed only if exactly one job includes its
//! filesystem and that job has a v2 cursor (name and bookmark GUID agree)
//! that is not older; `--dry-run` changes nothing.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use zrelay_config::{Config, JobKind};
use zrelay_endpoint::abstractions::{parse_bookmark, AbstractionKind};
use zrelay_endpoint::{FsFilter, JobId};
use zrelay_zfs::api::DestroyTarget;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::{ListedDataset, Version};
use zrelay_zfs::{BookmarkName, RealZfs, Zfs};

use crate::abstraction::list_all;
use crate::daemon::ConfigArg;

/// `zrelay migrate`.
#[derive(Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: Migration,
}

#[derive(Subcommand)]
enum Migration {
    /// Destroy the v1 replication cursors (`#zrepl_replication_cursor`)
    /// that the owning job's v2 cursor has superseded.
    #[command(name = "replication-cursor:v1-v2")]
    ReplicationCursorV1V2(MigrateFlags),
    /// zrepl 0.0.X to 0.1 placeholder migration: not needed by zrelay.
    #[command(name = "0.0.X:0.1:placeholder", alias = "0.0.X:0.1-placeholder")]
    Placeholder01(MigrateFlags),
}

/// The flags of every migration.
#[derive(Args)]
struct MigrateFlags {
    /// Change nothing: print what would be done.
    #[arg(long)]
    dry_run: bool,
}

/// What the cursor migration did, or would do, on one filesystem with a
/// v1 cursor.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The v1 cursor was destroyed (or would be, in a dry run).
    Migrated {
        /// The v1 cursor.
        v1: String,
        /// The owning job's newest v2 cursor.
        v2: String,
        /// Nothing was changed.
        dry_run: bool,
    },
    /// No job's `filesystems` filter includes the filesystem: left alone.
    NoOwner,
    /// The v1 cursor stays, for this reason.
    Refused(String),
}

/// The jobs that created v1 cursors: push and source jobs, with their filters.
pub(crate) fn sender_jobs(config: &Config) -> Vec<(JobId, &FsFilter)> {
    config
        .jobs
        .iter()
        .filter_map(|j| match &j.kind {
            JobKind::Push(p) => Some((j.name.clone(), &p.filesystems)),
            JobKind::Source(s) => Some((j.name.clone(), &s.filesystems)),
            _ => None,
        })
        .collect()
}

/// Migrate the v1 cursor of `ds`, if it has one (`None` if not).
pub(crate) async fn migrate_fs(
    zfs: &dyn Zfs,
    jobs: &[(JobId, &FsFilter)],
    ds: &ListedDataset,
    dry_run: bool,
) -> Option<Verdict> {
    let is_v1 = |v: &&Version| {
        v.kind == VersionKind::Bookmark
            && parse_bookmark(&v.name).is_some_and(|p| p.kind == AbstractionKind::CursorV1)
    };
    let v1 = ds.versions.iter().find(is_v1)?;
    let v1_name = v1.full_name(&ds.path);
    let owners: Vec<&JobId> = jobs
        .iter()
        .filter(|(_, f)| f.matches(&ds.path))
        .map(|(j, _)| j)
        .collect();
    let owner = match owners[..] {
        [] => return Some(Verdict::NoOwner),
        [one] => one,
        [a, b, ..] => {
            return Some(Verdict::Refused(format!(
            "jobs \"{a}\" and \"{b}\" both include {}: cannot attribute the v1 cursor to either",
            ds.path
        )))
        }
    };
    let newest_v2 = ds
        .versions
        .iter()
        .filter(|v| v.kind == VersionKind::Bookmark)
        .filter(|v| {
            parse_bookmark(&v.name).is_some_and(|p| {
                p.kind == AbstractionKind::CursorV2
                    && p.guid == Some(v.guid)
                    && p.job.as_deref() == Some(owner.as_str())
            })
        })
        .max_by_key(|v| v.createtxg);
    let Some(v2) = newest_v2 else {
        return Some(Verdict::Refused(format!(
            "job \"{owner}\" has no v2 replication cursor on {}: replicate once with zrelay first",
            ds.path
        )));
    };
    if v2.createtxg < v1.createtxg {
        return Some(Verdict::Refused(format!(
            "the v1 cursor (createtxg {}) is newer than job \"{owner}\"'s v2 cursor (createtxg {})",
            v1.createtxg, v2.createtxg
        )));
    }
    if !dry_run {
        let refused = |e: &dyn std::fmt::Display| {
            Some(Verdict::Refused(format!("destroying {v1_name}: {e}")))
        };
        let b = match BookmarkName::new(&ds.path, &v1.name) {
            Ok(b) => b,
            Err(e) => return refused(&e),
        };
        if let Err(e) = zfs.destroy(&DestroyTarget::Bookmark(b)).await {
            return refused(&e);
        }
    }
    Some(Verdict::Migrated {
        v1: v1_name,
        v2: v2.full_name(&ds.path),
        dry_run,
    })
}

/// Run a `migrate` subcommand.
pub async fn run(a: MigrateArgs, cfg: &ConfigArg) -> Result<()> {
    match a.command {
        Migration::Placeholder01(_) => {
            println!(
                "zrelay does not need the zrepl 0.0.X to 0.1 placeholder migration: it reads \
                 placeholders as zrepl 0.1 and later write them. A setup still on zrepl 0.0.X \
                 must be migrated with zrepl 0.1 first. Nothing was done."
            );
            Ok(())
        }
        Migration::ReplicationCursorV1V2(f) => {
            let config = cfg.load()?;
            let jobs = sender_jobs(&config);
            let zfs = RealZfs::new();
            let mut refused = 0;
            let mut seen = 0;
            for ds in list_all(&zfs).await? {
                let Some(verdict) = migrate_fs(&zfs, &jobs, &ds, f.dry_run).await else {
                    continue;
                };
                seen += 1;
                match verdict {
                    Verdict::Migrated { v1, v2, dry_run } => {
                        let verb = if dry_run {
                            "would destroy"
                        } else {
                            "destroyed"
                        };
                        println!("{}: {verb} {v1} (superseded by {v2})", ds.path);
                    }
                    Verdict::NoOwner => {
                        println!(
                            "{}: skipped: no job's filesystems filter includes it",
                            ds.path
                        )
                    }
                    Verdict::Refused(why) => {
                        refused += 1;
                        println!("{}: MIGRATION FAILED: {why}", ds.path);
                    }
                }
            }
            eprintln!("{seen} filesystem(s) with a v1 replication cursor");
            if refused > 0 {
                bail!(
                    "{refused} filesystem(s) could not be migrated: inspect the output and re-run"
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;

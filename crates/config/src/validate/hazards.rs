//! Hazards zrepl 0.7 accepts, found on validated jobs: warnings, not
//! errors (see [`crate::ConfigWarning`]).
//!
//! - A keep rule list that keeps none of the snapshots the job itself takes
//!   (its `snapshotting.prefix` plus timestamp): each is destroyed by the
//!   next pruning run on that side (after replication on the receiver).
//! - `replication.protection` `guarantee_nothing`: nothing protects the
//!   step's snapshots from pruning while it runs.
//! - `logging: []`: the daemon logs nothing at all.

use std::time::{Duration, SystemTime};

use zrelay_endpoint::{Guarantee, Protection};
use zrelay_pruning::KeepRules;
use zrelay_snapshot::{SnapshotNamer, Snapshotting};
use zrelay_zfs::peer_text::peer;

use super::Cx;
use crate::error::KeyPath;
use crate::model::{Global, Job, JobKind, PruningConfig};

/// The hazards of one validated job at `path`.
pub(super) fn job(cx: Cx<'_>, path: &KeyPath, job: &Job) {
    let pruning = path.k("pruning");
    match &job.kind {
        JobKind::Push(p) => {
            let name = own_snapshot(&p.snapshotting);
            sides(cx, &pruning, &p.pruning, name.as_deref());
            protection(cx, &path.k("replication"), &p.replication.protection);
        }
        JobKind::Pull(p) => {
            // The sender's snapshot names are the source job's: unknown here.
            sides(cx, &pruning, &p.pruning, None);
            protection(cx, &path.k("replication"), &p.replication.protection);
        }
        JobKind::Snap(s) => {
            let name = own_snapshot(&s.snapshotting);
            keep(
                cx,
                &pruning.k("keep"),
                &s.keep,
                name.as_deref(),
                Side::Local,
            );
        }
        JobKind::Sink(_) | JobKind::Source(_) => {}
    }
}

/// The hazards of `global`.
pub(super) fn global(cx: Cx<'_>, global: &Global, logging_given: bool) {
    if logging_given && global.logging.is_empty() {
        cx.warn(
            &KeyPath::root().k("global").k("logging"),
            "no logging outlets: the daemon logs nothing, not even errors (zrepl allows it); \
             leave `logging` out for the default stdout outlet",
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Sender,
    Receiver,
    Local,
}

fn sides(cx: Cx<'_>, path: &KeyPath, p: &PruningConfig, name: Option<&str>) {
    keep(
        cx,
        &path.k("keep_sender"),
        &p.keep_sender,
        name,
        Side::Sender,
    );
    keep(
        cx,
        &path.k("keep_receiver"),
        &p.keep_receiver,
        name,
        Side::Receiver,
    );
}

/// A name the job's snapshotter gives (`None` for manual snapshotting).
fn own_snapshot(s: &Snapshotting) -> Option<String> {
    let prefix = s.prefix()?;
    let (format, location) = s.naming()?;
    let namer = SnapshotNamer::new(prefix, format, location).ok()?;
    // A fixed moment (2023-11-14T22:13:20Z), so warnings are reproducible.
    Some(namer.name_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)))
}

fn keep(cx: Cx<'_>, path: &KeyPath, rules: &KeepRules, own: Option<&str>, side: Side) {
    let fate = match side {
        Side::Sender => "on the sending side by the next pruning run",
        Side::Receiver => "on the receiving side once replicated",
        Side::Local => "by the next pruning run",
    };
    // No rules at all destroy nothing (zrelay's pruner, as zrepl's).
    let Some(own) = own.filter(|_| !rules.is_empty()) else {
        return;
    };
    if !rules.may_keep(own) {
        cx.warn(
            path,
            format!(
                "no rule keeps the snapshots this job takes (named like {:?}): each is \
                 destroyed {fate}",
                peer(own)
            ),
        );
    }
}

fn protection(cx: Cx<'_>, path: &KeyPath, p: &Protection) {
    let path = path.k("protection");
    if p.initial == Guarantee::GuaranteeNothing {
        cx.warn(
            &path.k("initial"),
            "guarantee_nothing: no hold protects an initial replication's snapshot while it \
             is sent, so pruning on the sender can destroy it and the step must start over",
        );
    }
    if p.incremental == Guarantee::GuaranteeNothing {
        cx.warn(
            &path.k("incremental"),
            "guarantee_nothing: neither holds nor bookmarks protect the incremental base, so \
             pruning on the sender can destroy it and replication then needs a full send",
        );
    }
}

//! Tests: table tests of the diff and the planner, and property tests over random
//! linear histories.

use zrelay_endpoint::{FsListing, FsVersion, ResumeState};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::DatasetPath;

use crate::PlannedStep;

mod diff_table;
mod plan_table;
mod props;
mod replicas;

fn version(kind: VersionKind, name: &str, guid: u64, txg: u64) -> FsVersion {
    FsVersion {
        kind,
        name: name.to_string(),
        guid,
        createtxg: txg,
        creation: 1_700_000_000 + txg as i64 * 60,
    }
}

/// A snapshot `@name`.
pub(crate) fn snap(name: &str, guid: u64, txg: u64) -> FsVersion {
    version(VersionKind::Snapshot, name, guid, txg)
}

/// A bookmark `#name`.
pub(crate) fn book(name: &str, guid: u64, txg: u64) -> FsVersion {
    version(VersionKind::Bookmark, name, guid, txg)
}

pub(crate) fn path(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

pub(crate) fn listing(p: &str, versions: &[FsVersion]) -> FsListing {
    FsListing {
        versions: versions.to_vec(),
        ..FsListing::new(path(p))
    }
}

pub(crate) fn token(from_guid: Option<u64>, to_guid: u64, to_name: &str) -> ResumeState {
    ResumeState {
        token: format!("1-token-{to_guid}"),
        to_guid,
        from_guid,
        to_name: to_name.to_string(),
        bytes: 4096,
    }
}

pub(crate) fn full(to: &FsVersion) -> PlannedStep {
    PlannedStep {
        from: None,
        to: to.clone(),
        resume: None,
    }
}

pub(crate) fn inc(from: &FsVersion, to: &FsVersion) -> PlannedStep {
    PlannedStep {
        from: Some(from.clone()),
        to: to.clone(),
        resume: None,
    }
}

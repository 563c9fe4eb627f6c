//! When rounds run: zrepl's periodic sync-up (`daemon/snapper/periodic.go`,
//! `findSyncPoint`) as a pure function of a listing, and the schedule kinds.

use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::ListedDataset;

use crate::cron::CronSchedule;
use crate::error::{Result, SnapshotError};

/// zrepl's `ZREPL_SNAPPER_SYNCUP_WARN_MIN_DURATION`: when the sync point is
/// further away than this, filesystems without a snapshot of the prefix are
/// named in a warning (they wait until then).
const SYNCUP_WARN_MIN: Duration = Duration::from_secs(1);

/// A snapshotter's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `interval`, first at the sync point.
    Periodic {
        /// The interval.
        interval: Duration,
    },
    /// At the cron expression's fire times.
    Cron(CronSchedule),
    /// Only on demand.
    Manual,
}

/// The first snapshot time of a periodic schedule (zrepl's `findSyncPoint`):
/// for each filesystem, its newest snapshot (by `createtxg`) whose name
/// starts with `prefix` plus `interval`; the earliest of these wins, so
/// that every filesystem is snapshotted together from then on. Filesystems
/// without such a snapshot count as `now`, but only if no filesystem has
/// one. A time in the past means "now".
///
/// A filesystem whose newest snapshot is from the future (clock trouble) is
/// left out; if that leaves none, it is an error.
pub fn sync_point(
    fss: &[ListedDataset],
    prefix: &str,
    interval: Duration,
    now: SystemTime,
) -> Result<SystemTime> {
    if fss.is_empty() {
        return Ok(now);
    }
    let now_secs = unix_secs(now);
    let mut with_versions: Vec<(SystemTime, &ListedDataset)> = Vec::new();
    let mut without: Vec<&ListedDataset> = Vec::new();
    let mut errors: Vec<SnapshotError> = Vec::new();
    for d in fss {
        let newest = d
            .versions
            .iter()
            .filter(|v| v.kind == VersionKind::Snapshot && v.name.starts_with(prefix))
            .max_by_key(|v| v.createtxg);
        match newest {
            None => without.push(d),
            Some(v) if v.creation > now_secs => {
                let e = SnapshotError::FromTheFuture {
                    snapshot: v.full_name(&d.path),
                    created: v.creation,
                    now: now_secs,
                };
                warn!(fs = %d.path, error = %e, "cannot determine optimal sync point for this filesystem");
                errors.push(e);
            }
            Some(v) => {
                let created =
                    SystemTime::UNIX_EPOCH + Duration::from_secs(v.creation.max(0) as u64);
                debug!(fs = %d.path, snapshot = %v.name, "found latest snapshot");
                with_versions.push((created + interval, d));
            }
        }
    }
    if errors.len() == fss.len() {
        return Err(SnapshotError::SyncPoint(format!(
            "hard errors in determining sync point for every matching filesystem: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let winner = with_versions
        .iter()
        .map(|(t, _)| *t)
        .min()
        .unwrap_or(now)
        .max(now);
    info!(sync_point = %crate::report::rfc3339::format(winner), "determined sync point");
    if winner.duration_since(now).unwrap_or_default() > SYNCUP_WARN_MIN {
        for d in without {
            warn!(fs = %d.path, "filesystem will not be snapshotted until sync point");
        }
    }
    Ok(winner)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_zfs::parse::{DatasetKind, Version};
    use zrelay_zfs::{Classify, DatasetPath};

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn fs(path: &str, snaps: &[(&str, u64, i64)]) -> ListedDataset {
        ListedDataset {
            path: DatasetPath::parse(path).unwrap(),
            kind: DatasetKind::Filesystem,
            guid: 1,
            createtxg: 1,
            creation: 0,
            resume_token: None,
            placeholder: false,
            encryption: None,
            encryption_root: None,
            key_status: None,
            versions: snaps
                .iter()
                .map(|(name, txg, creation)| Version {
                    kind: VersionKind::Snapshot,
                    name: name.to_string(),
                    guid: *txg,
                    createtxg: *txg,
                    creation: *creation,
                    userrefs: Some(0),
                })
                .collect(),
        }
    }

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn aligned_to_the_newest_snapshot_of_the_prefix() {
        let t = T0 as i64;
        let fss = [fs(
            "p/a",
            &[
                ("zrepl_1", 10, t - 3000),
                ("zrepl_2", 20, t - 600),
                ("other", 30, t - 10),
            ],
        )];
        // newest zrepl_ snapshot at now-600: next at now+3000
        assert_eq!(
            sync_point(&fss, "zrepl_", H, at(T0)).unwrap(),
            at(T0 + 3000)
        );
    }

    #[test]
    fn newest_is_by_createtxg_and_earliest_fs_wins() {
        let t = T0 as i64;
        let fss = [
            // createtxg decides, not the listing order or creation
            fs(
                "p/a",
                &[("zrepl_b", 20, t - 1200), ("zrepl_a", 10, t - 100)],
            ),
            fs("p/b", &[("zrepl_c", 30, t - 300)]),
            fs("p/c", &[]),
        ];
        assert_eq!(
            sync_point(&fss, "zrepl_", H, at(T0)).unwrap(),
            at(T0 + 2400)
        );
    }

    #[test]
    fn past_or_missing_means_now() {
        let t = T0 as i64;
        let old = [fs("p/a", &[("zrepl_1", 10, t - 7200)])];
        assert_eq!(sync_point(&old, "zrepl_", H, at(T0)).unwrap(), at(T0));
        let none = [fs("p/a", &[("manual", 10, t - 60)]), fs("p/b", &[])];
        assert_eq!(sync_point(&none, "zrepl_", H, at(T0)).unwrap(), at(T0));
        assert_eq!(sync_point(&[], "zrepl_", H, at(T0)).unwrap(), at(T0));
    }

    #[test]
    fn snapshots_from_the_future() {
        let t = T0 as i64;
        let future = [fs("p/a", &[("zrepl_1", 10, t + 60)])];
        let e = sync_point(&future, "zrepl_", H, at(T0)).unwrap_err();
        assert!(e.to_string().contains("from the future"), "{e}");
        assert!(e.is_temporary());
        // one good filesystem is enough
        let mixed = [
            fs("p/a", &[("zrepl_1", 10, t + 60)]),
            fs("p/b", &[("zrepl_1", 10, t - 60)]),
        ];
        assert_eq!(
            sync_point(&mixed, "zrepl_", H, at(T0)).unwrap(),
            at(T0 + 3540)
        );
    }
}

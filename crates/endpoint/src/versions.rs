//! Listing and destroying the versions of one filesystem, shared by both
//! local endpoints (pruning reaches them through the traits).

use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::error::{EndpointError, Result};
use crate::types::{DestroyOutcome, FsVersion};

/// The versions of `target`, oldest first.
pub(crate) async fn list(zfs: &dyn Zfs, target: &DatasetPath) -> Result<Vec<FsVersion>> {
    let versions = zfs
        .list_versions(target)
        .await
        .map_err(|e| EndpointError::zfs(format!("list versions of {target}"), e))?;
    Ok(versions.iter().map(FsVersion::from).collect())
}

/// Destroy the snapshots `names` (short names) of `target` in one batch.
/// Every name is validated first; one invalid name refuses the whole request.
pub(crate) async fn destroy(
    zfs: &dyn Zfs,
    target: &DatasetPath,
    names: &[String],
) -> Result<DestroyOutcome> {
    for n in names {
        SnapshotName::new(target, n).map_err(|e| {
            EndpointError::InvalidRequest(format!("snapshot name \"{}\": {e}", n.escape_debug()))
        })?;
    }
    if names.is_empty() {
        return Ok(DestroyOutcome::default());
    }
    let report = zfs
        .destroy_snapshots(target, names)
        .await
        .map_err(|e| EndpointError::zfs(format!("destroy snapshots of {target}"), e))?;
    Ok(DestroyOutcome {
        destroyed: report.destroyed,
        kept: report
            .failed
            .into_iter()
            .map(|f| {
                let short = f
                    .snapshot
                    .split_once('@')
                    .map(|(_, s)| s.to_string())
                    .unwrap_or(f.snapshot);
                (short, format!("{:?}", f.reason))
            })
            .collect(),
    })
}

//! The receiver's commit: verify the received snapshots' GUIDs and move this
//! job's last-received hold to them, in a few batched commands.

use tracing::warn;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::SnapshotName;

use super::LocalReceiver;
use crate::abstractions::parse_hold_tag;
use crate::error::{EndpointError, Result};
use crate::types::{BatchResult, CommitReq, Guarantee};

impl LocalReceiver {
    pub(super) async fn commit_impl(
        &self,
        reqs: &[CommitReq],
    ) -> Result<BatchResult<EndpointError>> {
        let tag = self.job.last_received_hold_tag();
        let mut results: Vec<Result<()>> = Vec::with_capacity(reqs.len());
        let mut snaps: Vec<Option<SnapshotName>> = Vec::with_capacity(reqs.len());
        for r in reqs {
            let s = self.target(&r.fs).and_then(|t| {
                SnapshotName::new(&t, &r.to.name)
                    .map_err(|e| EndpointError::InvalidRequest(e.to_string()))
            });
            match s {
                Ok(s) => {
                    snaps.push(Some(s));
                    results.push(Ok(()));
                }
                Err(e) => {
                    snaps.push(None);
                    results.push(Err(e));
                }
            }
        }
        // 1. Verify the received snapshots' GUIDs, in one call.
        let names: Vec<String> = snaps.iter().flatten().map(|s| s.to_string()).collect();
        let got = if names.is_empty() {
            Vec::new()
        } else {
            self.zfs
                .get_many(&names, &["guid"])
                .await
                .map_err(|e| EndpointError::zfs("verify received snapshots", e))?
        };
        let mut got = got.into_iter();
        for (i, r) in reqs.iter().enumerate() {
            let Some(s) = &snaps[i] else { continue };
            let Some((_, props)) = got.next() else {
                continue;
            };
            let check = props
                .map_err(|e| EndpointError::zfs(format!("verify {s}"), e))
                .and_then(|p| {
                    let guid = p.get("guid").and_then(|v| v.value.parse::<u64>().ok());
                    match guid {
                        Some(g) if g == r.to.guid => Ok(()),
                        other => Err(EndpointError::zfs(
                            format!("verify {s}"),
                            zrelay_zfs::ZfsError::GuidMismatch {
                                name: s.to_string(),
                                actual: other.unwrap_or(0),
                                expected: r.to.guid,
                            },
                        )),
                    }
                });
            if let Err(e) = check {
                results[i] = Err(e);
                snaps[i] = None;
            }
        }
        // 2. Hold the new ones.
        let hold: Vec<SnapshotName> = reqs
            .iter()
            .zip(&snaps)
            .filter(|(r, s)| {
                s.is_some() && r.protection.for_step(r.incremental) != Guarantee::GuaranteeNothing
            })
            .filter_map(|(_, s)| s.clone())
            .collect();
        if !hold.is_empty() {
            let res = self
                .zfs
                .hold_many(&hold, &tag)
                .await
                .map_err(|e| EndpointError::zfs("hold received snapshots", e))?;
            for (s, r) in hold.iter().zip(res) {
                if let Err(e) = r {
                    if let Some(i) = snaps.iter().position(|x| x.as_ref() == Some(s)) {
                        results[i] = Err(EndpointError::zfs(format!("hold {s}"), e));
                        snaps[i] = None;
                    }
                }
            }
        }
        // 3. Release this job's last-received hold everywhere else on those
        // filesystems. Their versions come from this receiver's listing; a
        // filesystem it has not listed (this process started after the
        // client's listing: the sink was restarted mid-attempt) is listed
        // now, so no old hold outlives a restart.
        let unlisted: Vec<zrelay_zfs::DatasetPath> = {
            let cache = self.versions.lock().unwrap();
            snaps
                .iter()
                .flatten()
                .filter(|s| !cache.contains_key(s.fs()))
                .map(|s| s.fs().clone())
                .collect()
        };
        let mut fresh = std::collections::HashMap::new();
        for fs in unlisted {
            match self.zfs.list_versions(&fs).await {
                Ok(v) => {
                    fresh.insert(fs, v);
                }
                Err(e) => {
                    warn!(fs = %fs, error = %e, "cannot list versions to release old last-received holds")
                }
            }
        }
        let mut candidates = Vec::new();
        {
            let cache = self.versions.lock().unwrap();
            for s in snaps.iter().flatten() {
                let Some(versions) = cache.get(s.fs()).or_else(|| fresh.get(s.fs())) else {
                    continue;
                };
                for v in versions {
                    if v.kind == VersionKind::Snapshot
                        && v.name != s.name()
                        && v.userrefs.unwrap_or(0) > 0
                    {
                        candidates.extend(SnapshotName::new(s.fs(), &v.name).ok());
                    }
                }
            }
        }
        if !candidates.is_empty() {
            let holds = self
                .zfs
                .holds_many(&candidates)
                .await
                .map_err(|e| EndpointError::zfs("list holds", e))?;
            let release: Vec<SnapshotName> = holds
                .into_iter()
                .filter(|(_, tags)| {
                    tags.iter().any(|t| {
                        parse_hold_tag(t).is_some_and(|(_, j)| j == self.job.as_str()) && t == &tag
                    })
                })
                .map(|(s, _)| s)
                .collect();
            if !release.is_empty() {
                let res = self
                    .zfs
                    .release_many(&release, &tag)
                    .await
                    .map_err(|e| EndpointError::zfs("release old last-received holds", e))?;
                for (s, r) in release.iter().zip(res) {
                    if let Err(e) = r {
                        warn!(snapshot = %s, error = %e, "cannot release an old last-received hold");
                    }
                }
            }
        }
        self.versions
            .lock()
            .unwrap()
            .retain(|fs, _| !snaps.iter().flatten().any(|s| s.fs() == fs));
        Ok(results)
    }
}

//! Executing the rules against one side (zrepl's `daemon/pruner/pruner.go`):
//! one listing, then per filesystem a plan ([`crate::plan_filesystem`]) and
//! one batched destroy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::{debug, info, info_span, warn, Instrument};
use zrelay_endpoint::{DestroyOutcome, FsListing, Receiver, Sender};
use zrelay_zfs::DatasetPath;

use crate::error::PruneError;
use crate::plan::{for_side, plan_compiled, snapshots};
use crate::report::{FsPruneReport, PruneReport, SideKind};
use crate::rules::{Compiled, KeepRules};

/// The endpoint a pruning run works on.
#[derive(Clone)]
pub enum Side {
    /// The sender of a push/pull job (`keep_sender`).
    Sender(Arc<dyn Sender>),
    /// The receiver of a push/pull job (`keep_receiver`).
    Receiver(Arc<dyn Receiver>),
    /// The filesystems of a snap job (`keep`): no cursor, no `not_replicated`.
    Local(Arc<dyn Sender>),
}

impl Side {
    /// Which side this is.
    pub fn kind(&self) -> SideKind {
        match self {
            Side::Sender(_) => SideKind::Sender,
            Side::Receiver(_) => SideKind::Receiver,
            Side::Local(_) => SideKind::Local,
        }
    }

    /// The endpoint's description.
    pub fn describe(&self) -> String {
        match self {
            Side::Sender(s) | Side::Local(s) => s.describe(),
            Side::Receiver(r) => r.describe(),
        }
    }

    async fn list(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        match self {
            Side::Sender(s) | Side::Local(s) => s.list_filesystems().await,
            Side::Receiver(r) => r.list_filesystems().await,
        }
    }

    async fn destroy(
        &self,
        fs: &DatasetPath,
        names: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        match self {
            Side::Sender(s) | Side::Local(s) => s.destroy_snapshots(fs, names).await,
            Side::Receiver(r) => r.destroy_snapshots(fs, names).await,
        }
    }
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Side::{}({})", self.kind(), self.describe())
    }
}

/// How a pruning run behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Evaluate and report what would be destroyed; destroy nothing.
    pub dry_run: bool,
    /// At most this many snapshots per `destroy_snapshots` call
    /// (`ZREPL_DESTROY_MAX_BATCH_SIZE`); 0 = one call per filesystem.
    pub max_batch: usize,
    /// `(filesystem in the sender's namespace, GUID)`: snapshots that must
    /// survive whatever the rules say. The daemon passes the sender's
    /// replication cursor GUIDs when pruning the receiver (they also locate
    /// the cursor there for `not_replicated`).
    pub protect: Vec<(DatasetPath, u64)>,
}

/// Prune `side` by `rules`. Never fails as a whole: failures are in the
/// report, per filesystem or (invalid rules, failed listing) for the run.
pub async fn prune(side: &Side, rules: &KeepRules, opts: &PruneOptions) -> PruneReport {
    match try_prune(side, rules, opts).await {
        Ok(r) => r,
        Err(e) => PruneReport {
            side: side.kind(),
            dry_run: opts.dry_run,
            error: Some(e.to_string()),
            filesystems: Vec::new(),
        },
    }
}

/// [`prune`], but a failure before any filesystem is looked at (invalid
/// rules, failed listing) is returned as the error, with its retry class.
///
/// # Errors
/// Invalid rules for this side, or a failed listing.
pub async fn try_prune(
    side: &Side,
    rules: &KeepRules,
    opts: &PruneOptions,
) -> Result<PruneReport, PruneError> {
    let kind = side.kind();
    let span = info_span!("prune", prune_side = %kind, dry_run = opts.dry_run);
    async move {
        let compiled = for_side(kind, rules.compiled().to_vec())
            .inspect_err(|e| warn!(error = %e, "invalid keep rules"))?;
        let listing = side.list().await.map_err(|e| {
            let e = PruneError::endpoint(format!("list filesystems of {}", side.describe()), e);
            warn!(error = %e, "cannot list filesystems");
            e
        })?;
        let mut report = PruneReport {
            side: kind,
            dry_run: opts.dry_run,
            error: None,
            filesystems: Vec::with_capacity(listing.len()),
        };
        for l in &listing {
            let f = prune_fs(side, &compiled, l, opts)
                .instrument(info_span!("fs", fs = %l.path))
                .await;
            report.filesystems.push(f);
        }
        Ok(report)
    }
    .instrument(span)
    .await
}

/// Human text for a reason `zfs destroy` gave for keeping a snapshot.
fn refusal(why: &str) -> String {
    // The endpoint's own protections (another puller's needs) say so themselves.
    if why.starts_with("protected: ") {
        return why.to_string();
    }
    let why = match why {
        "Held" => "it is held (zfs hold)",
        "Busy" => "dataset is busy (held or in use)",
        "HasDependentClones" => "it has dependent clones",
        "DoesNotExist" => "it does not exist (any more)",
        other => other,
    };
    format!("no rule keeps it, but zfs did not destroy it: {why} (never forced)")
}

async fn prune_fs(
    side: &Side,
    rules: &[Compiled],
    l: &FsListing,
    opts: &PruneOptions,
) -> FsPruneReport {
    let mut r = FsPruneReport::new(l.path.clone());
    if side.kind() == SideKind::Receiver && l.placeholder {
        debug!("skipping placeholder filesystem");
        r.skipped = Some("filesystem is placeholder".into());
        return r;
    }
    let protect: Vec<u64> = opts
        .protect
        .iter()
        .filter(|(fs, _)| fs == &l.path)
        .map(|(_, g)| *g)
        .collect();
    let decisions = match plan_compiled(side.kind(), rules, l, &protect) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "cannot plan pruning, skipping filesystem");
            r.error = Some(e.to_string());
            return r;
        }
    };
    let order: Vec<String> = snapshots(l).into_iter().map(|s| s.name).collect();
    let mut survivors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut doomed = Vec::new();
    for d in decisions {
        if d.keep {
            survivors.insert(d.name, d.kept_by);
        } else {
            doomed.push(d.name);
        }
    }
    if opts.dry_run {
        info!(
            would_destroy = doomed.len(),
            kept = survivors.len(),
            "dry run: nothing destroyed"
        );
        r.would_destroy = doomed;
    } else {
        destroy(side, l, &doomed, opts.max_batch, &mut r, &mut survivors).await;
    }
    r.kept = order
        .into_iter()
        .filter_map(|n| survivors.remove(&n).map(|why| (n, why)))
        .collect();
    r
}

/// Destroy `doomed` (oldest first) in batches of `max_batch` (0: one batch).
/// What zfs refused, and what a failed call left, joins `survivors`.
async fn destroy(
    side: &Side,
    l: &FsListing,
    doomed: &[String],
    max_batch: usize,
    r: &mut FsPruneReport,
    survivors: &mut BTreeMap<String, Vec<String>>,
) {
    let batch = if max_batch == 0 {
        doomed.len().max(1)
    } else {
        max_batch
    };
    let mut refused = 0usize;
    for (i, chunk) in doomed.chunks(batch).enumerate() {
        for n in chunk {
            debug!(destroy_snap = %n, "policy destroys snapshot");
        }
        match side.destroy(&l.path, chunk).await {
            Ok(out) => {
                let mut answered = BTreeSet::new();
                for n in out.destroyed {
                    answered.insert(n.clone());
                    r.destroyed.push(n);
                }
                for (n, why) in out.kept {
                    answered.insert(n.clone());
                    refused += 1;
                    survivors.entry(n).or_default().push(refusal(&why));
                }
                for n in chunk.iter().filter(|n| !answered.contains(*n)) {
                    r.error = Some(format!("missing destroy-result for @{n}"));
                    survivors.entry(n.clone()).or_default().push(
                        "no rule keeps it, but the endpoint reported no destroy result".into(),
                    );
                }
            }
            Err(e) => {
                let e = PruneError::endpoint(format!("destroy snapshots of {}", l.path), e);
                warn!(error = %e, "target could not destroy snapshots");
                let reason = format!("no rule keeps it, but destroying failed: {e}");
                for n in doomed[i * batch..].iter() {
                    survivors.entry(n.clone()).or_default().push(reason.clone());
                }
                r.error = Some(e.to_string());
                break;
            }
        }
    }
    if let Some(e) = &r.error {
        warn!(destroyed = r.destroyed.len(), error = %e, "pruning failed");
    } else {
        info!(
            destroyed = r.destroyed.len(),
            kept = survivors.len(),
            refused,
            "pruned"
        );
    }
}

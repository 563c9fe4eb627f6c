//! The parts jobs share: snapshotting and hooks, pruning, send, recv,
//! replication and conflict resolution (and the zrelay extensions).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use zrelay_endpoint::{
    FsFilter, Guarantee, PlaceholderEncryption, Protection, RecvOptions, SendOptions,
    PROTECTED_PROPERTIES,
};
use zrelay_planner::InitialPolicy;
use zrelay_zfs::peer_text::peer;
use zrelay_zfs::SendFlags;

use super::{Cx, R};
use crate::error::KeyPath;
use crate::model::{
    BandwidthLimit, Hook, HookKind, KeepRule, KeepRules, PruningConfig, RecvConfig,
    ReplicationConfig, Schedule, SendConfig, SnapshotFilter, SnapshotPlan, Snapshotting,
    TimestampFormat, WireCompression,
};
use crate::raw::{
    RawBandwidthLimit, RawConflictResolution, RawGuarantee, RawHook, RawInitial, RawKeep,
    RawPlaceholderEncryption, RawProtection, RawPruningSenderReceiver, RawRecv, RawReplication,
    RawSend, RawSnapshotting, RawWireCompression,
};
use crate::{cron, timestamp, units};

/// Default hook timeout.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `bandwidth_limit.bucket_capacity`.
const BUCKET: &str = "128 KiB";

/// `snapshotting`, validated, then compiled once for the snapshotter.
pub(super) fn snapshotting(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: &RawSnapshotting,
    job_fs: &FsFilter,
) -> R<SnapshotPlan> {
    let s = snapshotting_keys(cx, path, raw, job_fs)?;
    SnapshotPlan::new(s).map_err(|e| cx.err(path, e))
}

fn snapshotting_keys(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: &RawSnapshotting,
    job_fs: &FsFilter,
) -> R<Snapshotting> {
    let naming = |prefix: &str,
                  fmt: &Option<String>,
                  loc: &Option<String>|
     -> R<(TimestampFormat, String)> {
        let f = match fmt {
            None => TimestampFormat::Dense,
            Some(s) => {
                TimestampFormat::parse(s).map_err(|e| cx.err(&path.k("timestamp_format"), e))?
            }
        };
        let loc = loc.clone().unwrap_or_else(|| "UTC".into());
        let loc_path = path.k("timestamp_location");
        timestamp::check_location(&loc).map_err(|e| cx.err(&loc_path, e))?;
        if f.requires_utc() && !timestamp::is_utc(&loc) {
            return Err(cx.err(
                &loc_path,
                format!(
                    "invalid format string {:?} or location {loc:?}: format string requires UTC location",
                    f.as_config_str()
                ),
            ));
        }
        timestamp::check_snapshot_names(prefix, &f, &loc).map_err(|e| {
            let key = if fmt.is_some() {
                "timestamp_format"
            } else {
                "prefix"
            };
            cx.err(&path.k(key), e)
        })?;
        Ok((f, loc))
    };
    Ok(match raw {
        RawSnapshotting::Manual => Snapshotting::Manual,
        RawSnapshotting::Periodic(p) => {
            let (timestamp_format, timestamp_location) =
                naming(&p.prefix, &p.timestamp_format, &p.timestamp_location)?;
            Snapshotting::Periodic {
                prefix: p.prefix.clone(),
                interval: cx.interval(&path.k("interval"), &p.interval)?,
                hooks: hooks(cx, &path.k("hooks"), &p.hooks, job_fs)?,
                timestamp_format,
                timestamp_location,
            }
        }
        RawSnapshotting::Cron(c) => {
            let (timestamp_format, timestamp_location) =
                naming(&c.prefix, &c.timestamp_format, &c.timestamp_location)?;
            cron::parse_cron(&c.cron)
                .map_err(|e| cx.err(&path.k("cron"), format!("cron syntax invalid: {e}")))?;
            Snapshotting::Cron {
                prefix: c.prefix.clone(),
                cron: c.cron.clone(),
                hooks: hooks(cx, &path.k("hooks"), &c.hooks, job_fs)?,
                timestamp_format,
                timestamp_location,
            }
        }
    })
}

/// A snapshotting hook's command. zrepl runs a relative path as Go's
/// `exec.Command` does: from `$PATH` without a `/`, else from the daemon's
/// working directory. zrelay's snapshotter runs absolute paths only, so a
/// relative path is resolved here, at load time (the daemon loads its
/// configuration in its working directory), with a warning.
fn hook_path(cx: Cx<'_>, path: &KeyPath, s: &str) -> R<PathBuf> {
    let p = cx.file_path(path, s)?;
    if p.is_absolute() {
        return Ok(p);
    }
    let from_path = (!s.contains('/'))
        .then(|| std::env::var_os("PATH"))
        .flatten()
        .and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(&p))
                .find(|c| c.is_absolute() && c.is_file())
        });
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let resolved = from_path.unwrap_or_else(|| cwd.join(&p));
    cx.warn(
        path,
        format!(
            "hook command path {:?} is relative: resolved at startup to {:?} (from $PATH \
             without a '/', else from the daemon's working directory, as zrepl runs it); \
             write an absolute path",
            peer(s),
            peer(&resolved.to_string_lossy())
        ),
    );
    Ok(resolved)
}

fn hooks(cx: Cx<'_>, path: &KeyPath, raw: &[RawHook], job_fs: &FsFilter) -> R<Vec<Hook>> {
    let mut out = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        let p = path.i(i);
        let timeout = |t: &Option<String>| cx.go_duration(&p.k("timeout"), t, HOOK_TIMEOUT, true);
        let hook = match h {
            RawHook::Command(c) => {
                Hook {
                    kind: HookKind::Command {
                        path: hook_path(cx, &p.k("path"), &c.path)?,
                    },
                    timeout: timeout(&c.timeout)?,
                    // zrepl's default `{'<': true}`: every filesystem of the job.
                    filesystems: match &c.filesystems {
                        None => job_fs.clone(),
                        Some(f) => cx.filter(&p.k("filesystems"), f)?,
                    },
                    err_is_fatal: c.err_is_fatal.unwrap_or(false),
                }
            }
            RawHook::Postgres(d) | RawHook::Mysql(d) => {
                let dsn = cx.non_empty(&p.k("dsn"), &d.dsn)?.to_string();
                Hook {
                    kind: if matches!(h, RawHook::Postgres(_)) {
                        HookKind::PostgresCheckpoint { dsn }
                    } else {
                        HookKind::MysqlLockTables { dsn }
                    },
                    timeout: timeout(&d.timeout)?,
                    filesystems: cx.filter(&p.k("filesystems"), &d.filesystems)?,
                    err_is_fatal: d.err_is_fatal.unwrap_or(false),
                }
            }
        };
        out.push(hook);
    }
    Ok(out)
}

pub(super) fn pruning(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: &RawPruningSenderReceiver,
) -> R<PruningConfig> {
    Ok(PruningConfig {
        keep_sender: keep_rules(cx, &path.k("keep_sender"), &raw.keep_sender, true)?,
        keep_receiver: keep_rules(cx, &path.k("keep_receiver"), &raw.keep_receiver, false)?,
    })
}

/// Keep rules; `not_replicated` only where a replication cursor exists.
pub(super) fn keep_rules(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: &[RawKeep],
    sender: bool,
) -> R<KeepRules> {
    let mut out = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let p = path.i(i);
        out.push(match k {
            RawKeep::NotReplicated(n) => {
                if !sender {
                    return Err(cx.err(
                        &p.k("type"),
                        "`not_replicated` is only allowed in keep_sender (it needs the replication cursor)",
                    ));
                }
                KeepRule::NotReplicated {
                    keep_snapshot_at_cursor: n.keep_snapshot_at_cursor.unwrap_or(true),
                }
            }
            RawKeep::LastN(l) => {
                if l.count <= 0 || l.count > u32::MAX as i64 {
                    return Err(cx.err(
                        &p.k("count"),
                        format!("must be a positive number, got {}", l.count),
                    ));
                }
                KeepRule::LastN {
                    count: l.count as usize,
                    regex: match &l.regex {
                        None => None,
                        Some(r) => Some(cx.regex(&p.k("regex"), r)?),
                    },
                }
            }
            RawKeep::Grid(g) => KeepRule::Grid {
                intervals: units::parse_grid(&g.grid).map_err(|e| cx.err(&p.k("grid"), e))?,
                regex: cx.regex(&p.k("regex"), &g.regex)?,
            },
            RawKeep::Regex(r) => KeepRule::Regex {
                regex: cx.regex(&p.k("regex"), &r.regex)?,
                negate: r.negate.unwrap_or(false),
            },
        });
        // The pruner's own checks (zrepl's: shrinking grid intervals, …),
        // rule by rule so that the error points at the rule.
        zrelay_pruning::check_rules(std::slice::from_ref(out.last().expect("pushed")))
            .map_err(|e| cx.err(&p, e))?;
    }
    // Compiled once, here; pruning runs use the compiled rules.
    KeepRules::new(out).map_err(|e| cx.err(path, e))
}

pub(super) fn send(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawSend>) -> R<SendConfig> {
    let Some(s) = raw else {
        return Ok(SendConfig::default());
    };
    let f = |b: Option<bool>| b.unwrap_or(false);
    Ok(SendConfig {
        options: SendOptions {
            encrypted: f(s.encrypted),
            flags: SendFlags {
                raw: f(s.raw),
                send_properties: f(s.send_properties),
                backup_properties: f(s.backup_properties),
                large_blocks: f(s.large_blocks),
                compressed: f(s.compressed),
                embedded_data: f(s.embedded_data),
                saved: f(s.saved),
            },
        },
        bandwidth_limit: bandwidth(cx, &path.k("bandwidth_limit"), s.bandwidth_limit.as_ref())?,
    })
}

/// A property name as `zfs recv -o/-x` takes it.
fn property(cx: Cx<'_>, path: &KeyPath, name: &str) -> R<String> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
    if !ok {
        return Err(cx.err(
            path,
            format!(
                "\"{}\" is not a ZFS property name",
                zrelay_zfs::peer_text::peer(name)
            ),
        ));
    }
    Ok(name.to_string())
}

pub(super) fn recv(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawRecv>) -> R<RecvConfig> {
    let Some(r) = raw else {
        return Ok(RecvConfig::default());
    };
    let mut options = RecvOptions::default();
    if let Some(props) = &r.properties {
        let pp = path.k("properties");
        let mut seen = HashSet::new();
        for (i, name) in props.inherit.iter().enumerate() {
            let p = pp.k("inherit").i(i);
            let name = property(cx, &p, name)?;
            if !seen.insert(name.clone()) {
                // zrepl passes `-x` twice, which OpenZFS refuses.
                cx.warn(
                    &p,
                    format!(
                        "property {:?} is listed twice: zrepl passes `-x` twice and OpenZFS \
                         refuses the receive; zrelay passes it once",
                        peer(&name)
                    ),
                );
                continue;
            }
            options.inherit_props.push(name);
        }
        for (name, value) in &props.override_.0 {
            let p = pp.k("override").k(name);
            let name = property(cx, &p, name)?;
            if seen.contains(&name) {
                cx.warn(
                    &p,
                    format!(
                        "property {:?} is both inherited and overridden: `zfs receive` gets \
                         both `-x` and `-o` for it (as from zrepl), which OpenZFS refuses, so \
                         every receive of this job fails",
                        peer(&name)
                    ),
                );
            }
            options.override_props.push((name, value.clone()));
        }
        for (i, name) in props.allow_from_sender.iter().enumerate() {
            let p = pp.k("allow_from_sender").i(i);
            let name = property(cx, &p, name)?;
            if !PROTECTED_PROPERTIES.contains(&name.as_str()) {
                return Err(cx.err(
                    &p,
                    format!(
                        "{name:?} is not protected on receive; allow_from_sender takes {}",
                        PROTECTED_PROPERTIES.join(", ")
                    ),
                ));
            }
            if options.allow_from_sender.contains(&name) {
                return Err(cx.err(&p, format!("property {name:?} is listed twice")));
            }
            if seen.contains(&name) || options.override_props.iter().any(|(k, _)| *k == name) {
                return Err(cx.err(
                    &p,
                    format!("property {name:?} is inherited or overridden, so the sender's value cannot be allowed"),
                ));
            }
            options.allow_from_sender.push(name);
        }
    }
    options.placeholder_encryption = match r.placeholder.as_ref().and_then(|p| p.encryption) {
        None | Some(RawPlaceholderEncryption::Unspecified) => PlaceholderEncryption::Unspecified,
        Some(RawPlaceholderEncryption::Off) => PlaceholderEncryption::Off,
        Some(RawPlaceholderEncryption::Inherit) => PlaceholderEncryption::Inherit,
    };
    options.force_overwrite = r.force_overwrite.unwrap_or(false);
    if let Some(rp) = &r.replicas {
        options.replicas = zrelay_endpoint::ReplicaPolicy {
            rename: rp.rename.unwrap_or(false),
            destroy: rp.destroy.unwrap_or(false),
        };
    }
    Ok(RecvConfig {
        options,
        bandwidth_limit: bandwidth(cx, &path.k("bandwidth_limit"), r.bandwidth_limit.as_ref())?,
    })
}

/// `bandwidth_limit`: `None` when `max` is negative (the default `-1 B`).
pub(super) fn bandwidth(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: Option<&RawBandwidthLimit>,
) -> R<Option<BandwidthLimit>> {
    let Some(b) = raw else { return Ok(None) };
    let cap_s = b.bucket_capacity.as_deref().unwrap_or(BUCKET);
    let cap = units::parse_bytes(cap_s).map_err(|e| cx.err(&path.k("bucket_capacity"), e))?;
    if cap <= 0 {
        return Err(cx.err(
            &path.k("bucket_capacity"),
            format!("{cap_s:?}: bucket_capacity must be greater than 0"),
        ));
    }
    let Some(max_s) = b.max.as_deref() else {
        return Ok(None);
    };
    let max = units::parse_bytes(max_s).map_err(|e| cx.err(&path.k("max"), e))?;
    if max == 0 {
        // zrepl's token bucket with a rate of 0 fails every transfer after
        // its first bucket; zrelay's throttle reads 0 as no limit.
        cx.warn(
            &path.k("max"),
            format!(
                "{:?}: zrepl lets no data through after the first bucket (every transfer \
                 fails); zrelay applies no limit. Write a positive rate, or -1 B for no limit",
                peer(max_s)
            ),
        );
    }
    Ok((max > 0).then_some(BandwidthLimit {
        max_bytes_per_sec: max as u64,
        bucket_capacity: cap as u64,
    }))
}

/// `protection` of `replication` (or of a target).
pub(super) fn protection(p: &RawProtection) -> Protection {
    Protection {
        initial: guarantee(p.initial),
        incremental: guarantee(p.incremental),
    }
}

fn guarantee(g: Option<RawGuarantee>) -> Guarantee {
    match g {
        None | Some(RawGuarantee::Resumability) => Guarantee::GuaranteeResumability,
        Some(RawGuarantee::Incremental) => Guarantee::GuaranteeIncremental,
        Some(RawGuarantee::Nothing) => Guarantee::GuaranteeNothing,
    }
}

/// `replication` and `conflict_resolution` of a push (`push: true`) or pull job.
pub(super) fn replication(
    cx: Cx<'_>,
    job: &KeyPath,
    raw: Option<&RawReplication>,
    conflict: Option<&RawConflictResolution>,
    push: bool,
) -> R<ReplicationConfig> {
    let mut out = ReplicationConfig {
        initial: match conflict.and_then(|c| c.initial_replication) {
            None | Some(RawInitial::MostRecent) => InitialPolicy::MostRecent,
            Some(RawInitial::All) => InitialPolicy::All,
            Some(RawInitial::Fail) => InitialPolicy::Fail,
        },
        ..ReplicationConfig::default()
    };
    let Some(r) = raw else { return Ok(out) };
    let path = job.k("replication");
    if let Some(p) = &r.protection {
        out.protection = protection(p);
    }
    if let Some(c) = &r.concurrency {
        let at_least_1 = |key: &str, v: Option<i64>, default: usize| -> R<usize> {
            match v {
                None => Ok(default),
                Some(n) if n >= 1 => Ok(n as usize),
                Some(n) => Err(cx.err(
                    &path.k("concurrency").k(key),
                    format!("must be at least 1, got {n}"),
                )),
            }
        };
        out.steps = at_least_1("steps", c.steps, out.steps)?;
        if c.size_estimates.is_some() {
            out.size_estimates = Some(at_least_1("size_estimates", c.size_estimates, 1)?);
        }
    }
    if let Some(f) = &r.snapshot_filter {
        let p = path.k("snapshot_filter");
        out.snapshot_filter = Some(match (&f.prefix, &f.regex) {
            (Some(prefix), None) => {
                SnapshotFilter::Prefix(cx.non_empty(&p.k("prefix"), prefix)?.to_string())
            }
            (None, Some(re)) => {
                let re = cx.regex(&p.k("regex"), re)?;
                SnapshotFilter::regex(&re).map_err(|e| cx.err(&p.k("regex"), e.to_string()))?
            }
            _ => return Err(cx.err(&p, "needs exactly one of `prefix` and `regex`")),
        });
    }
    if let Some(w) = &r.wire_compression {
        out.wire_compression = wire_compression(cx, &path.k("wire_compression"), w)?;
    }
    if let Some(s) = &r.schedule {
        let p = path.k("schedule");
        if !push {
            return Err(cx.err(
                &p,
                "replication.schedule is a zrelay extension for push jobs only; \
                 a pull job replicates on its `interval`",
            ));
        }
        out.schedule = Some(match (&s.interval, &s.cron) {
            (Some(i), None) => Schedule::Interval(cx.interval(&p.k("interval"), i)?),
            (None, Some(c)) => Schedule::Cron(
                cron::CronSchedule::parse(c)
                    .map_err(|e| cx.err(&p.k("cron"), format!("cron syntax invalid: {e}")))?,
            ),
            _ => return Err(cx.err(&p, "needs exactly one of `interval` and `cron`")),
        });
    }
    Ok(out)
}

/// *zrelay extension* `replication.wire_compression`: `type` auto, off or
/// zstd; `level` (1 to 9) only with zstd.
fn wire_compression(cx: Cx<'_>, path: &KeyPath, w: &RawWireCompression) -> R<WireCompression> {
    let kind = w.kind.as_deref().unwrap_or("auto");
    let out = match kind {
        "auto" => WireCompression::Auto,
        "off" => WireCompression::Off,
        "zstd" => {
            let max = WireCompression::MAX_LEVEL;
            let level = match w.level {
                None => WireCompression::DEFAULT_LEVEL,
                Some(l) if (1..=max as i64).contains(&l) => l as u8,
                Some(l) => {
                    return Err(cx.err(
                        &path.k("level"),
                        format!("must be a zstd level from 1 to {max}, got {l}"),
                    ))
                }
            };
            return Ok(WireCompression::Zstd { level });
        }
        other => {
            return Err(cx.err(
                &path.k("type"),
                format!("must be auto, off or zstd, got {}", peer(other)),
            ))
        }
    };
    if w.level.is_some() {
        return Err(cx.err(
            &path.k("level"),
            format!("only `type: zstd` takes a level (this is `type: {kind}`)"),
        ));
    }
    Ok(out)
}

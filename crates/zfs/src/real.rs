//! [`RealZfs`]: the [`Zfs`] trait on the real `zfs` command.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::api::{
    DestroyReport, DestroyTarget, PropertyValue, RecvArgs, VersionRef, Zfs, ZfsVersion,
};
use crate::cmd::{stderr_kind, CmdLine, InvocationLog, Runner};
use crate::error::{Result, ZfsError};
use crate::name::{BookmarkName, DatasetPath, SnapshotName};
use crate::parse::{
    parse_destroy_stderr, parse_holds, parse_list, parse_send_dry, ListedDataset, ParseError,
    SendEstimate, StderrKind, LIST_PROPS,
};
use crate::process::{ProcRecvSink, ProcSendStream, RecvSink, SendStream, Verdict};
use crate::send_args::{check_guid, ValidatedSendArgs};

/// The real `zfs` command.
#[derive(Debug, Clone, Default)]
pub struct RealZfs {
    runner: Runner,
}

impl RealZfs {
    /// Use `zfs`/`zpool` from `PATH`.
    pub fn new() -> Self {
        RealZfs::default()
    }

    /// Use a given runner (custom binaries, shared invocation log).
    pub fn with_runner(runner: Runner) -> Self {
        RealZfs { runner }
    }

    /// The record of every command this instance ran.
    pub fn log(&self) -> &InvocationLog {
        self.runner.log()
    }

    /// The runner, for `zpool` commands.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    async fn run(&self, cmd: CmdLine) -> Result<String> {
        self.runner.output(&cmd).await
    }

    /// Run and map "does not exist" to the typed error for `name`.
    async fn run_on(&self, cmd: CmdLine, name: &str) -> Result<String> {
        self.run(cmd).await.map_err(|e| not_found_as(e, name))
    }

    fn list_cmd(&self, root: &DatasetPath, depth1: bool) -> CmdLine {
        let cmd = self.runner.zfs().args([
            "list",
            "-Hp",
            "-o",
            &LIST_PROPS.join(","),
            "-t",
            "filesystem,volume,snapshot,bookmark",
        ]);
        let cmd = if depth1 {
            cmd.args(["-d", "1"])
        } else {
            cmd.arg("-r")
        };
        cmd.arg(root.as_str())
    }

    async fn list_with(&self, root: &DatasetPath, depth1: bool) -> Result<Vec<ListedDataset>> {
        let cmd = self.list_cmd(root, depth1);
        let out = self.run_on(cmd.clone(), root.as_str()).await?;
        parse_list(&out).map_err(|source| ZfsError::Parse {
            cmd: cmd.to_string(),
            source,
        })
    }

    fn recv_cmd(&self, args: &RecvArgs, force: bool) -> CmdLine {
        let mut cmd = self.runner.zfs().arg("recv");
        if args.resumable {
            cmd = cmd.arg("-s");
        }
        if args.unmounted {
            cmd = cmd.arg("-u");
        }
        if force {
            cmd = cmd.arg("-F");
        }
        for (k, v) in &args.override_props {
            cmd = cmd.arg("-o").arg(format!("{k}={v}"));
        }
        for k in &args.inherit_props {
            cmd = cmd.arg("-x").arg(k);
        }
        cmd.arg(args.fs.as_str())
    }

    fn start_recv(&self, args: &RecvArgs, force: bool) -> Result<Box<dyn RecvSink>> {
        let sink = ProcRecvSink::spawn(
            &self.runner,
            self.recv_cmd(args, force),
            args.fs.to_string(),
        )?;
        Ok(Box::new(GuidCheckedSink {
            inner: sink,
            zfs: self.clone(),
            fs: args.fs.clone(),
            expect: args.expect.clone(),
            done: None,
        }))
    }
}

/// The output of `zpool list -H -o name`: one pool name a line, sorted.
pub(crate) fn parse_pools(out: &str) -> std::result::Result<Vec<DatasetPath>, ParseError> {
    let mut pools = Vec::new();
    let lines = out.lines().enumerate();
    // some versions print this instead of nothing, even with -H
    for (i, line) in lines.filter(|(_, l)| !l.is_empty() && *l != "no pools available") {
        let bad = |source| ParseError::InvalidName {
            line_no: i + 1,
            line: line.to_string(),
            source,
        };
        let pool = DatasetPath::parse(line).map_err(bad)?;
        if !pool.is_pool() {
            return Err(ParseError::InvalidField {
                line_no: i + 1,
                line: line.to_string(),
                field: "name",
                value: line.to_string(),
                reason: "a pool name has no '/'",
            });
        }
        pools.push(pool);
    }
    pools.sort();
    pools.dedup();
    Ok(pools)
}

/// Rewrite a "does not exist" command failure as [`ZfsError::DatasetDoesNotExist`].
pub(crate) fn not_found_as(e: ZfsError, name: &str) -> ZfsError {
    match e {
        ZfsError::Command {
            kind: StderrKind::DatasetDoesNotExist,
            ..
        } => ZfsError::DatasetDoesNotExist {
            path: name.to_string(),
        },
        other => other,
    }
}

#[async_trait]
impl Zfs for RealZfs {
    async fn list(&self, root: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.list_with(root, false).await
    }

    async fn list_depth1(&self, fs: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.list_with(fs, true).await
    }

    async fn pools(&self) -> Result<Vec<DatasetPath>> {
        let cmd = self.runner.zpool().args(["list", "-H", "-o", "name"]);
        let out = self.run(cmd.clone()).await?;
        parse_pools(&out).map_err(|source| ZfsError::Parse {
            cmd: cmd.to_string(),
            source,
        })
    }

    async fn pool_features(&self, pool: &str) -> Result<crate::parse::PoolFeatures> {
        let pool = DatasetPath::parse(pool)?;
        let cmd = self
            .runner
            .zpool()
            .args(["get", "-H", "-o", "property,value", "all"])
            .arg(pool.pool());
        let out = self.run_on(cmd.clone(), pool.pool()).await?;
        crate::parse::parse_pool_features(&out).map_err(|source| ZfsError::Parse {
            cmd: cmd.to_string(),
            source,
        })
    }

    async fn get(&self, name: &str, props: &[&str]) -> Result<BTreeMap<String, PropertyValue>> {
        let cmd = self
            .runner
            .zfs()
            .args([
                "get",
                "-Hp",
                "-o",
                "property,value,source",
                &props.join(","),
            ])
            .arg(name);
        let out = self.run_on(cmd, name).await?;
        let mut map = BTreeMap::new();
        for line in out.lines() {
            // the source column never holds a tab; a user property's value may
            let Some((p, rest)) = line.split_once('\t') else {
                continue;
            };
            if let Some((v, s)) = rest.rsplit_once('\t') {
                map.insert(
                    p.to_string(),
                    PropertyValue {
                        value: v.to_string(),
                        source: s.to_string(),
                    },
                );
            }
        }
        Ok(map)
    }

    async fn set(&self, ds: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        let cmd = self
            .runner
            .zfs()
            .arg("set")
            .args(props.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(ds.as_str());
        self.run_on(cmd, ds.as_str()).await.map(drop)
    }

    async fn inherit(&self, ds: &DatasetPath, prop: &str) -> Result<()> {
        let cmd = self.runner.zfs().args(["inherit", prop, ds.as_str()]);
        self.run_on(cmd, ds.as_str()).await.map(drop)
    }

    async fn create(&self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        let mut cmd = self.runner.zfs().arg("create");
        for (k, v) in props {
            cmd = cmd.arg("-o").arg(format!("{k}={v}"));
        }
        let parent = fs.parent().map(|p| p.to_string()).unwrap_or_default();
        self.run_on(cmd.arg(fs.as_str()), &parent).await.map(drop)
    }

    async fn snapshot(&self, snaps: &[SnapshotName]) -> Result<()> {
        if snaps.is_empty() {
            return Ok(());
        }
        let cmd = self
            .runner
            .zfs()
            .arg("snapshot")
            .args(snaps.iter().map(|s| s.to_string()));
        self.run(cmd).await.map(drop)
    }

    async fn bookmark(&self, from: &VersionRef, guid: u64, bookmark: &BookmarkName) -> Result<()> {
        self.bookmark_checked(from, guid, bookmark).await
    }

    async fn hold(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        let cmd = self.runner.zfs().args(["hold", tag, &snap.to_string()]);
        match self.run(cmd).await {
            Err(e) if stderr_kind(&e) == Some(StderrKind::AlreadyExists) => Ok(()),
            other => other
                .map(drop)
                .map_err(|e| not_found_as(e, &snap.to_string())),
        }
    }

    async fn release(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        let cmd = self.runner.zfs().args(["release", tag, &snap.to_string()]);
        match self.run(cmd).await {
            Err(e)
                if matches!(
                    stderr_kind(&e),
                    Some(StderrKind::NoSuchHoldTag | StderrKind::DatasetDoesNotExist)
                ) =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    async fn holds(&self, snap: &SnapshotName) -> Result<Vec<String>> {
        let cmd = self.runner.zfs().args(["holds", "-H", &snap.to_string()]);
        let out = self.run_on(cmd.clone(), &snap.to_string()).await?;
        let holds = parse_holds(&out).map_err(|source| ZfsError::Parse {
            cmd: cmd.to_string(),
            source,
        })?;
        Ok(holds.into_iter().map(|(_, tag)| tag).collect())
    }

    async fn destroy_snapshots(&self, fs: &DatasetPath, names: &[String]) -> Result<DestroyReport> {
        if names.is_empty() {
            return Ok(DestroyReport::default());
        }
        for n in names {
            SnapshotName::new(fs, n)?;
        }
        crate::api::check_destroy_batch(fs, names)?;
        let spec = format!("{}@{}", fs, names.join(","));
        let cmd = self.runner.zfs().args(["destroy", &spec]);
        match self.run(cmd).await {
            Ok(_) => Ok(DestroyReport {
                destroyed: names.to_vec(),
                failed: Vec::new(),
            }),
            Err(ZfsError::Command {
                stderr,
                cmd,
                status,
                kind,
            }) => {
                let Some(failed) = parse_destroy_stderr(fs.as_str(), &stderr) else {
                    return Err(ZfsError::Command {
                        cmd,
                        status,
                        stderr,
                        kind,
                    });
                };
                // zfs destroys nothing when any snapshot of the batch fails: retry the others
                let bad: Vec<&str> = failed
                    .iter()
                    .filter_map(|f| f.snapshot.split_once('@').map(|x| x.1))
                    .collect();
                let rest: Vec<String> = names
                    .iter()
                    .filter(|n| !bad.contains(&n.as_str()))
                    .cloned()
                    .collect();
                let mut report = if rest.is_empty() || rest.len() == names.len() {
                    DestroyReport::default()
                } else {
                    Box::pin(self.destroy_snapshots(fs, &rest)).await?
                };
                report.failed.extend(failed);
                Ok(report)
            }
            Err(e) => Err(e),
        }
    }

    async fn destroy(&self, target: &DestroyTarget) -> Result<()> {
        // a missing snapshot says "could not find any snapshots to destroy",
        // which classifies as does-not-exist like the other cases
        target.check_no_range()?;
        let name = target.to_string();
        let cmd = self.runner.zfs().args(["destroy", &name]);
        self.run_on(cmd, &name).await.map(drop)
    }

    async fn rename(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        for d in [from, to] {
            DestroyTarget::Dataset(d.clone()).check_no_range()?;
        }
        let cmd = self
            .runner
            .zfs()
            .args(["rename", from.as_str(), to.as_str()]);
        self.run_on(cmd, from.as_str()).await.map(drop)
    }

    async fn rollback(&self, snap: &SnapshotName) -> Result<()> {
        let cmd = self.runner.zfs().args(["rollback", &snap.to_string()]);
        self.run_on(cmd, &snap.to_string()).await.map(drop)
    }

    async fn send_dry(&self, args: &ValidatedSendArgs) -> Result<SendEstimate> {
        let cmd = self.runner.zfs().args(args.zfs_args(true));
        let out = self.run(cmd.clone()).await?;
        parse_send_dry(&out).map_err(|source| ZfsError::Parse {
            cmd: cmd.to_string(),
            source,
        })
    }

    async fn send(&self, args: &ValidatedSendArgs) -> Result<Box<dyn SendStream>> {
        let cmd = self.runner.zfs().args(args.zfs_args(false));
        Ok(Box::new(ProcSendStream::spawn(&self.runner, cmd)?))
    }

    async fn recv(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        self.start_recv(args, false)
    }

    async fn recv_force_rollback(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        // `recv -F` of a non-replication stream does not roll back over
        // existing snapshots ("destination has snapshots"), so, as zrepl does,
        // destroy them first. Encrypted targets are refused BEFORE anything
        // is destroyed: OpenZFS would refuse the receive afterwards anyway.
        match self.get(args.fs.as_str(), &["encryption"]).await {
            Ok(p)
                if p.get("encryption")
                    .is_some_and(|v| v.value != "off" && v.value != "-") =>
            {
                return Err(ZfsError::RecvDestroyOrOverwriteEncrypted {
                    fs: args.fs.to_string(),
                    stderr: "zfs receive -F cannot be used to destroy an encrypted filesystem"
                        .into(),
                });
            }
            Ok(_) => {
                let snaps: Vec<String> = self
                    .list_versions(&args.fs)
                    .await?
                    .into_iter()
                    .filter(|v| v.kind == crate::name::VersionKind::Snapshot)
                    .map(|v| v.name)
                    .collect();
                let report = self.destroy_snapshots(&args.fs, &snaps).await?;
                if let Some(f) = report.failed.first() {
                    return Err(ZfsError::Command {
                        cmd: format!("zfs destroy (before recv -F into {})", args.fs),
                        status: "refused".into(),
                        stderr: format!("cannot destroy {}: {:?}", f.snapshot, f.reason),
                        kind: StderrKind::Busy,
                    });
                }
            }
            Err(e) if e.is_does_not_exist() => {}
            Err(e) => return Err(e),
        }
        self.start_recv(args, true)
    }

    async fn recv_abort(&self, fs: &DatasetPath) -> Result<()> {
        let cmd = self.runner.zfs().args(["recv", "-A", fs.as_str()]);
        self.run_on(cmd, fs.as_str()).await.map(drop)
    }

    async fn version(&self) -> Result<ZfsVersion> {
        let cmd = self.runner.zfs().arg("version");
        let out = self.run(cmd.clone()).await?;
        ZfsVersion::parse(&out)
            .ok_or_else(|| ZfsError::Unsupported(format!("cannot read the version from {out:?}")))
    }

    // Batched operations: one command per batch (see real_batch.rs and
    // real_bookmarks.rs). `destroy_bookmarks` keeps the default loop: `zfs destroy`
    // takes one bookmark per call ("too many arguments" otherwise, OpenZFS 2.3) and
    // channel programs cannot destroy bookmarks (`zfs.sync.destroy` returns ENOENT).

    async fn get_many(
        &self,
        names: &[String],
        props: &[&str],
    ) -> Result<Vec<(String, Result<BTreeMap<String, PropertyValue>>)>> {
        self.get_many_batched(names, props).await
    }

    async fn hold_many(&self, snaps: &[SnapshotName], tag: &str) -> Result<Vec<Result<()>>> {
        self.hold_many_batched(snaps, tag).await
    }

    async fn release_many(&self, snaps: &[SnapshotName], tag: &str) -> Result<Vec<Result<()>>> {
        self.release_many_batched(snaps, tag).await
    }

    async fn holds_many(&self, snaps: &[SnapshotName]) -> Result<Vec<(SnapshotName, Vec<String>)>> {
        self.holds_many_batched(snaps).await
    }

    async fn bookmark_many(
        &self,
        reqs: &[(VersionRef, u64, BookmarkName)],
    ) -> Result<Vec<Result<()>>> {
        self.bookmark_many_batched(reqs).await
    }
}

/// A receive that, once finished, checks the received snapshot's GUID.
struct GuidCheckedSink {
    inner: ProcRecvSink,
    zfs: RealZfs,
    fs: DatasetPath,
    expect: Option<(String, u64)>,
    /// The first `finish`'s verdict; later calls repeat it (a failure as `Closed`).
    done: Option<Verdict>,
}

impl tokio::io::AsyncWrite for GuidCheckedSink {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl RecvSink for GuidCheckedSink {
    async fn finish(&mut self) -> Result<()> {
        match &self.done {
            Some(Verdict::Succeeded) => return Ok(()),
            Some(Verdict::Failed(msg)) => return Err(ZfsError::Closed(msg.clone())),
            None => {}
        }
        let res = async {
            self.inner.finish().await?;
            if let Some((snap, guid)) = &self.expect {
                let name = SnapshotName::new(&self.fs, snap)?;
                check_guid(&self.zfs, &name.to_string(), *guid).await?;
            }
            Ok::<(), ZfsError>(())
        }
        .await;
        self.done = Some(Verdict::of(&res));
        res
    }

    async fn abort(&mut self) {
        self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_parsed_sorted_and_checked() {
        let p = |s: &str| DatasetPath::parse(s).unwrap();
        let got = parse_pools("tank\nbackup pool\n\nrpool\n").unwrap();
        assert_eq!(got, vec![p("backup pool"), p("rpool"), p("tank")]);
        assert!(parse_pools("").unwrap().is_empty());
        assert!(parse_pools("no pools available\n").unwrap().is_empty());
        let e = parse_pools("tank\ntank/child\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse_pools("ta@nk\n").is_err());
    }

    /// `zpool list` through the runner: the command line, and a failure
    /// classified from stderr like any other command's.
    #[tokio::test]
    async fn pools_runs_zpool_list() {
        let dir = std::env::temp_dir().join(format!("zrelay-zpool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.to_string_lossy().into_owned()
        };
        let ok = script(
            "ok",
            r#"[ "$*" = "list -H -o name" ] || exit 3; printf 'zroot\ntank\n'"#,
        );
        let zfs = RealZfs::with_runner(Runner::new("zfs", ok));
        let pools = zfs.pools().await.unwrap();
        assert_eq!(pools.len(), 2, "{pools:?}");
        assert_eq!(pools[0].as_str(), "tank");
        let busy = script(
            "busy",
            "echo 'cannot open pools: pool I/O is currently suspended' >&2; exit 1",
        );
        let zfs = RealZfs::with_runner(Runner::new("zfs", busy));
        match zfs.pools().await {
            Err(ZfsError::Command { stderr, .. }) => assert!(stderr.contains("suspended")),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

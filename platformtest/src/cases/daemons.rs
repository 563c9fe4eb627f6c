//! End-to-end: two `zrelay daemon` processes with their own configs, control
//! sockets and pools, replicating over every transport on the guest's
//! loopback. Each case replicates, adds a snapshot, replicates incrementally,
//! and checks GUIDs and file checksums on the receiver.

use anyhow::{ensure, Context as _, Result};
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::daemons::{checksum, free_port, guid, tail, Daemon, Scratch, SecondPool};
use crate::harness::{Body, Case, Ctx};
use crate::tls::TestPki;

/// The end-to-end cases.
pub fn cases() -> Vec<Case> {
    macro_rules! e2e {
        ($name:literal, $body:expr) => {
            Case {
                name: $name,
                run: Body::Platform(|ctx| Box::pin($body(ctx))),
            }
        };
    }
    vec![
        e2e!("DaemonPushSinkTcp", push_sink_tcp),
        e2e!("DaemonPushSinkTls", push_sink_tls),
        e2e!("DaemonPushSinkSsh", push_sink_ssh),
        e2e!("DaemonPushSinkLocal", push_sink_local),
        e2e!("DaemonPullSourceTcp", pull_source_tcp),
        e2e!(
            "DaemonTwoPullersOwnCursorsTls",
            super::pullers::two_pullers_own_cursors
        ),
        e2e!(
            "DaemonFanOutThreeSinksDeadOneBacksOffAndCatchesUp",
            super::fanout::fan_out_three_sinks
        ),
        e2e!(
            "DaemonFanOutKilledMidStepIsReDrivenAndResumes",
            super::fanout_crash::crash_redrive
        ),
        e2e!(
            "DaemonNoDowngradeDeadRecordRetriedAfterFix",
            super::no_downgrade::no_downgrade
        ),
        e2e!(
            "DaemonFanOutPruningKeepsUntilEveryTargetOrGrace",
            super::fanout_grace::pruning_across_targets
        ),
        e2e!(
            "DaemonReplicasRenamedFollowDestroyedGoAfterGrace",
            super::replicas::renames_and_deletion
        ),
        e2e!(
            "DaemonTakesOverZreplStateIncrementally",
            super::takeover::takeover
        ),
        e2e!(
            "DaemonTlsRefusesUnknownAndMissingClientCerts",
            super::daemons_more::tls_refusals
        ),
        e2e!(
            "DaemonTcpRefusesUnmappedClient",
            super::daemons_more::tcp_refuses_unmapped_ip
        ),
        e2e!(
            "DaemonTcpCompressesOnTheWireByDefault",
            super::daemons_more::tcp_compresses_on_the_wire
        ),
        e2e!(
            "DaemonSigtermKeepsStepResumable",
            super::daemons_more::sigterm_keeps_step_resumable
        ),
        e2e!(
            "DaemonSnapAndPushConvergeOverSimulatedHours",
            super::daemons_periods::snap_and_push_converge
        ),
        e2e!(
            "OperatorStatusRawAndPromtoolDuringReplication",
            super::operator::status_and_metrics_during_replication
        ),
        e2e!(
            "OperatorWakeupWaitFailsWhenTheReceiverCannotReceive",
            super::operator::wakeup_wait_fails_when_the_receiver_cannot_receive
        ),
        e2e!(
            "OperatorHistoryShowsKilledStepStaleThenCompleted",
            super::operator::history_shows_killed_step_stale_then_completed
        ),
    ]
}

/// How the two daemons talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp` with a `clients` map.
    Tcp,
    /// `tls` with client certificates.
    Tls,
    /// `ssh+stdinserver` through a real sshd with a forced command.
    Ssh,
    /// `local`: both jobs in one daemon.
    Local,
}

/// The sender tree of a case: `src/app data` and `src/app data/logs`, with
/// files and the snapshot `@zrelay_1`.
pub struct Tree {
    /// `root/src`.
    pub src: DatasetPath,
    /// `root/src/app data`.
    pub app: DatasetPath,
    /// `root/src/app data/logs`.
    pub logs: DatasetPath,
}

impl Tree {
    /// Create the tree with data and `@zrelay_1`.
    pub async fn create(ctx: &Ctx, bytes: usize) -> Result<Tree> {
        let src = ctx.ds("src");
        let app = ctx.ds("src/app data");
        let logs = ctx.ds("src/app data/logs");
        for fs in [&src, &app, &logs] {
            ctx.zfs.create(fs, &[]).await?;
        }
        ctx.write(&app, "first.bin", bytes).await?;
        ctx.write(&logs, "app.log", 100_000).await?;
        let t = Tree { src, app, logs };
        t.snapshot(ctx, "zrelay_1").await?;
        Ok(t)
    }

    /// Snapshot both filesystems in one `zfs snapshot`.
    pub async fn snapshot(&self, ctx: &Ctx, name: &str) -> Result<()> {
        ctx.zfs
            .snapshot(&[
                SnapshotName::new(&self.app, name)?,
                SnapshotName::new(&self.logs, name)?,
            ])
            .await?;
        Ok(())
    }

    /// Both filesystems arrived under `dst_root` (`dst_root/<sender path>`):
    /// the snapshots' GUIDs match and `file` of `app` has the same checksum.
    pub async fn verify(
        &self,
        ctx: &Ctx,
        dst_root: &str,
        snaps: &[&str],
        file: &str,
    ) -> Result<()> {
        for fs in [&self.app, &self.logs] {
            let dst = format!("{dst_root}/{fs}");
            for s in snaps {
                let (a, b) = (
                    guid(ctx, &format!("{fs}@{s}")).await?,
                    guid(ctx, &format!("{dst}@{s}")).await?,
                );
                ensure!(a == b, "{dst}@{s}: guid {b}, sender has {a}");
            }
        }
        let dst = format!("{dst_root}/{}", self.app);
        let (a, b) = (
            checksum(ctx, self.app.as_str(), file).await?,
            checksum(ctx, &dst, file).await?,
        );
        ensure!(
            a == b && a.len() == 64,
            "{file}: sha256 {b} on the receiver, {a} on the sender"
        );
        Ok(())
    }
}

pub(crate) fn global(dir: &str, name: &str) -> String {
    format!(
        "global:\n  control:\n    sockpath: \"{dir}/{name}.sock\"\n  history:\n    path: \"{dir}/{name}.sqlite\"\n  serve:\n    stdinserver:\n      sockdir: \"{dir}/stdinserver\"\n"
    )
}

fn push_job(connect: &str, src: &DatasetPath) -> String {
    format!(
        "  - name: push\n    type: push\n    connect: {connect}\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n        - type: last_n\n          count: 100\n      keep_receiver:\n        - type: last_n\n          count: 100\n"
    )
}

fn sink_job(serve: &str, root_fs: &str) -> String {
    format!("  - name: sink\n    type: sink\n    root_fs: \"{root_fs}\"\n    serve: {serve}\n")
}

/// Start sshd on 127.0.0.1:`port` accepting `key` only with the forced
/// command `zrelay stdinserver --config <sink> alice`.
async fn start_sshd(ctx: &Ctx, dir: &str, port: u16, sink_cfg: &str) -> Result<()> {
    let bin = crate::daemons::zrelay_bin()?;
    ctx.sh(&format!(
        r#"d='{dir}'
ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519"
printf 'command="%s stdinserver --config %s alice",restrict %s\n' '{bin}' '{sink_cfg}' "$(cat "$d/id_ed25519.pub")" > "$d/authorized_keys"
mkdir -p /run/sshd && chmod 0755 /run/sshd
cat > "$d/sshd_config" <<EOF
Port {port}
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin forced-commands-only
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile $d/sshd.pid
LogLevel VERBOSE
EOF
/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
for i in $(seq 50); do [ -s "$d/sshd.pid" ] && break; sleep 0.1; done
[ -s "$d/sshd.pid" ] || {{ cat "$d/sshd.log"; exit 1; }}"#,
        bin = bin.display()
    ))
    .await
    .context("starting sshd")?;
    Ok(())
}

async fn push_sink_tcp(ctx: &Ctx) -> Result<()> {
    push_sink(ctx, Transport::Tcp).await
}

async fn push_sink_tls(ctx: &Ctx) -> Result<()> {
    push_sink(ctx, Transport::Tls).await
}

async fn push_sink_ssh(ctx: &Ctx) -> Result<()> {
    push_sink(ctx, Transport::Ssh).await
}

async fn push_sink_local(ctx: &Ctx) -> Result<()> {
    push_sink(ctx, Transport::Local).await
}

/// push → sink over `t`: full, then incremental, verified on the receiver.
pub async fn push_sink(ctx: &Ctx, t: Transport) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let b = SecondPool::create(ctx).await?;
    let root_fs = format!("{}/sink", b.name);
    ctx.sh(&format!("zfs create '{root_fs}'")).await?;
    let tree = Tree::create(ctx, 2_000_000).await?;
    let port = free_port()?;
    let (serve, connect) = match t {
        Transport::Tcp => (
            format!("{{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}"),
            format!("{{type: tcp, address: \"127.0.0.1:{port}\"}}"),
        ),
        Transport::Tls => {
            let pki = TestPki::new()?;
            pki.write(&scratch, &["sink.test"], &["alice"])?;
            (
                format!("{{type: tls, listen: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/sink.test.pem\", key: \"{dir}/sink.test.key\", client_cns: [\"alice\"]}}"),
                format!("{{type: tls, address: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/alice.pem\", key: \"{dir}/alice.key\", server_cn: \"sink.test\"}}"),
            )
        }
        Transport::Ssh => (
            "{type: stdinserver, client_identities: [\"alice\"]}".to_string(),
            format!("{{type: ssh+stdinserver, host: 127.0.0.1, user: root, port: {port}, identity_file: \"{dir}/id_ed25519\", options: [\"StrictHostKeyChecking=no\", \"UserKnownHostsFile=/dev/null\"]}}"),
        ),
        Transport::Local => (
            "{type: local, listener_name: sinklistener}".to_string(),
            "{type: local, listener_name: sinklistener, client_identity: alice}".to_string(),
        ),
    };
    let (sink, push) = if t == Transport::Local {
        let cfg = format!(
            "{}jobs:\n{}{}",
            global(&dir, "both"),
            sink_job(&serve, &root_fs),
            push_job(&connect, &tree.src)
        );
        let cfg = scratch.write("both.yml", &cfg)?;
        let d = Daemon::start(
            "both",
            &cfg,
            &scratch.path("both.sock"),
            &scratch.path("both.log"),
        )
        .await?;
        (None, d)
    } else {
        let sink_cfg = scratch.write(
            "sink.yml",
            &format!(
                "{}jobs:\n{}",
                global(&dir, "sink"),
                sink_job(&serve, &root_fs)
            ),
        )?;
        if t == Transport::Ssh {
            start_sshd(ctx, &dir, port, &sink_cfg.display().to_string()).await?;
        }
        let push_cfg = scratch.write(
            "push.yml",
            &format!(
                "{}jobs:\n{}",
                global(&dir, "push"),
                push_job(&connect, &tree.src)
            ),
        )?;
        let sink = Daemon::start(
            "sink",
            &sink_cfg,
            &scratch.path("sink.sock"),
            &scratch.path("sink.log"),
        )
        .await?;
        let push = Daemon::start(
            "push",
            &push_cfg,
            &scratch.path("push.sock"),
            &scratch.path("push.log"),
        )
        .await?;
        (Some(sink), push)
    };
    let result = async {
        let dst_root = format!("{root_fs}/alice");
        push.wakeup_ok("push").await?;
        tree.verify(ctx, &dst_root, &["zrelay_1"], "first.bin")
            .await?;
        ctx.write(&tree.app, "second.bin", 1_000_000).await?;
        tree.snapshot(ctx, "zrelay_2").await?;
        let summary = push.wakeup_ok("push").await?;
        ensure!(
            summary.contains("@zrelay_1 => @zrelay_2"),
            "second run must be incremental:\n{summary}"
        );
        tree.verify(ctx, &dst_root, &["zrelay_1", "zrelay_2"], "second.bin")
            .await?;
        let placeholder = ctx
            .sh(&format!(
                "zfs get -H -o value,source zrepl:placeholder '{dst_root}'"
            ))
            .await?;
        ensure!(
            placeholder.starts_with("on\tlocal"),
            "{dst_root} must be a placeholder: {placeholder}"
        );
        Ok(())
    }
    .await;
    if t == Transport::Ssh {
        let _ = ctx
            .sh(&format!("kill $(cat '{dir}/sshd.pid') 2>/dev/null || true"))
            .await;
    }
    let push_log = push.log_text();
    let sink_log = sink.as_ref().map(|s| s.log_text()).unwrap_or_default();
    result.with_context(|| {
        format!(
            "--- push log:\n{}\n--- sink log:\n{}",
            tail(&push_log),
            tail(&sink_log)
        )
    })?;
    push.stop().await?;
    if let Some(s) = sink {
        s.stop().await?;
    }
    Ok(())
}

/// pull ← source over tcp: full, then incremental, verified on the puller.
pub async fn pull_source_tcp(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let b = SecondPool::create(ctx).await?;
    let root_fs = format!("{}/pulled", b.name);
    ctx.sh(&format!("zfs create '{root_fs}'")).await?;
    let tree = Tree::create(ctx, 2_000_000).await?;
    let port = free_port()?;
    let source = format!(
        "{}jobs:\n  - name: source\n    type: source\n    serve: {{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"puller\"}}}}\n    filesystems:\n      \"{}<\": true\n    snapshotting:\n      type: manual\n",
        global(&dir, "source"),
        tree.src
    );
    let pull = format!(
        "{}jobs:\n  - name: pull\n    type: pull\n    connect: {{type: tcp, address: \"127.0.0.1:{port}\"}}\n    root_fs: \"{root_fs}\"\n    interval: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n        - type: last_n\n          count: 100\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        global(&dir, "pull")
    );
    let source_cfg = scratch.write("source.yml", &source)?;
    let pull_cfg = scratch.write("pull.yml", &pull)?;
    let source = Daemon::start(
        "source",
        &source_cfg,
        &scratch.path("source.sock"),
        &scratch.path("source.log"),
    )
    .await?;
    let pull = Daemon::start(
        "pull",
        &pull_cfg,
        &scratch.path("pull.sock"),
        &scratch.path("pull.log"),
    )
    .await?;
    let result = async {
        pull.wakeup_ok("pull").await?;
        tree.verify(ctx, &root_fs, &["zrelay_1"], "first.bin")
            .await?;
        ctx.write(&tree.app, "second.bin", 1_000_000).await?;
        tree.snapshot(ctx, "zrelay_2").await?;
        let summary = pull.wakeup_ok("pull").await?;
        ensure!(
            summary.contains("@zrelay_1 => @zrelay_2"),
            "second run must be incremental:\n{summary}"
        );
        tree.verify(ctx, &root_fs, &["zrelay_1", "zrelay_2"], "second.bin")
            .await?;
        // The source's cursor bookmark (job `pull`? no: the source job's name) moved.
        let cursors = ctx
            .sh(&format!("zfs list -H -t bookmark -o name '{}'", tree.app))
            .await?;
        ensure!(
            cursors.contains("#zrepl_CURSOR_G_") && cursors.contains("_J_source"),
            "cursor bookmarks: {cursors}"
        );
        Ok(())
    }
    .await;
    result.with_context(|| {
        format!(
            "--- pull log:\n{}\n--- source log:\n{}",
            tail(&pull.log_text()),
            tail(&source.log_text())
        )
    })?;
    pull.stop().await?;
    source.stop().await?;
    Ok(())
}

//! Running real `zrelay daemon` processes for end-to-end cases: a second
//! pool for the receiving side, config files, daemons with their own control
//! sockets and logs, and the CLI that talks to them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use tokio::process::{Child, Command};

use zrelay_zfs::DatasetPath;

use crate::harness::Ctx;

/// The `zrelay` binary next to this test binary.
pub fn zrelay_bin() -> Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name("zrelay");
    ensure!(
        bin.exists(),
        "{} is missing: build the workspace first",
        bin.display()
    );
    Ok(bin)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A second pool for a case (the receiving side), destroyed on drop.
pub struct SecondPool {
    /// Its name.
    pub name: String,
    vdev: PathBuf,
}

impl SecondPool {
    /// Create `<case pool>_b` on a 256 MiB file vdev.
    pub async fn create(ctx: &Ctx) -> Result<SecondPool> {
        SecondPool::create_with(ctx, "").await
    }

    /// [`SecondPool::create`] with more `zpool create` options (`-d`: every
    /// feature disabled).
    pub async fn create_with(ctx: &Ctx, options: &str) -> Result<SecondPool> {
        let name = format!("{}_b", ctx.pool);
        let vdev = PathBuf::from(format!("/var/tmp/zrelay-platformtest/{name}.img"));
        ctx.sh(&format!(
            "mkdir -p /var/tmp/zrelay-platformtest && truncate -s 256M '{v}' && \
             zpool create -f {options} -o cachefile=none -m '/{name}' '{name}' '{v}'",
            v = vdev.display()
        ))
        .await?;
        Ok(SecondPool { name, vdev })
    }
}

impl Drop for SecondPool {
    fn drop(&mut self) {
        for _ in 0..10 {
            let ok = std::process::Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .output()
                .map(|o| {
                    o.status.success()
                        || String::from_utf8_lossy(&o.stderr).contains("no such pool")
                })
                .unwrap_or(false);
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_file(&self.vdev);
    }
}

/// A case's scratch directory (configs, sockets, logs, keys), removed on drop.
pub struct Scratch {
    /// The directory.
    pub dir: PathBuf,
}

impl Scratch {
    /// A fresh, private directory named after the case's pool.
    pub fn new(ctx: &Ctx) -> Result<Scratch> {
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from(format!("/tmp/zrelay-e2e-{}", ctx.pool));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Scratch { dir })
    }

    /// `dir/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write `dir/name` and return its path.
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.path(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `zrelay daemon`.
pub struct Daemon {
    /// A name for messages.
    pub name: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its stderr, as a file.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Start `zrelay daemon --config <config>` and wait (≤ 30 s) until its
    /// control socket `sock` answers.
    pub async fn start(name: &str, config: &Path, sock: &Path, log: &Path) -> Result<Daemon> {
        Self::start_env(name, config, sock, log, &[]).await
    }

    /// [`Daemon::start`] with extra environment variables.
    pub async fn start_env(
        name: &str,
        config: &Path,
        sock: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let logf = std::fs::File::create(log)?;
        let child = Command::new(zrelay_bin()?)
            .arg("daemon")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .env("ZRELAY_LOG", "info,zrelay_rpc=debug")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .kill_on_drop(true)
            .spawn()
            .context("spawning zrelay daemon")?;
        let mut d = Daemon {
            name: name.to_string(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            child: Some(child),
        };
        let started = Instant::now();
        loop {
            if let Some(st) = d.child.as_mut().unwrap().try_wait()? {
                bail!("daemon {name} exited at start ({st}):\n{}", d.log_text());
            }
            if tokio::net::UnixStream::connect(sock).await.is_ok() {
                return Ok(d);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "daemon {name}: no control socket after 30s:\n{}",
                    d.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `zrelay <args> --config <this daemon's config>`; returns
    /// (success, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> Result<(bool, String, String)> {
        let out = Command::new(zrelay_bin()?)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .await?;
        let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            err.push_str(&format!(
                "\n(zrelay {} exited: {})",
                args.join(" "),
                out.status
            ));
        }
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            err,
        ))
    }

    /// `zrelay signal wakeup JOB --wait`, which must succeed.
    pub async fn wakeup_ok(&self, job: &str) -> Result<String> {
        let (ok, _, err) = self.cli(&["signal", "wakeup", job, "--wait"]).await?;
        ensure!(
            ok,
            "signal wakeup {job} --wait failed:\n{err}\n--- {} log:\n{}",
            self.name,
            tail(&self.log_text())
        );
        Ok(err)
    }

    /// Kill with SIGKILL (a crash: nothing is cleaned up) and reap it.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Stop with SIGTERM and expect a clean exit within 60 s.
    pub async fn stop(mut self) -> Result<String> {
        let mut child = self.child.take().expect("running");
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let st = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .context("daemon did not stop within 60s of SIGTERM")??;
        let log = self.log_text();
        ensure!(
            st.success(),
            "daemon {} exited with {st} on SIGTERM:\n{}",
            self.name,
            tail(&log)
        );
        Ok(log)
    }
}

/// The last 60 lines of a log.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The sha256 of `file` in the mounted filesystem `fs` (mounting it if needed).
pub async fn checksum(ctx: &Ctx, fs: &str, file: &str) -> Result<String> {
    let out = ctx
        .sh(&format!(
            "fs='{fs}'; [ \"$(zfs get -H -o value mounted \"$fs\")\" = yes ] || zfs mount -o ro,noatime \"$fs\"; \
             sha256sum \"$(zfs get -H -o value mountpoint \"$fs\")/{file}\" | cut -d' ' -f1"
        ))
        .await?;
    Ok(out.trim().to_string())
}

/// The guid of `name` (snapshot or dataset) with the plain zfs CLI.
pub async fn guid(ctx: &Ctx, name: &str) -> Result<String> {
    Ok(ctx
        .sh(&format!("zfs get -H -o value guid '{name}'"))
        .await?
        .trim()
        .to_string())
}

/// The receiving side of a two-daemon case: a private scratch directory and a
/// second pool with the sink's `root_fs` (`<pool>_b/sink`).
pub struct Site {
    /// Configs, sockets, logs, keys.
    pub scratch: Scratch,
    /// `scratch.dir` as a string, for configs.
    pub dir: String,
    /// The sink's `root_fs`.
    pub root_fs: String,
    /// The second pool (destroyed on drop).
    pub _pool: SecondPool,
}

/// A sink daemon and a push daemon of one case.
pub struct Pair {
    /// The sink.
    pub sink: Daemon,
    /// The push job's daemon.
    pub push: Daemon,
}

impl Site {
    /// Scratch directory, second pool and `root_fs`.
    pub async fn new(ctx: &Ctx) -> Result<Site> {
        let scratch = Scratch::new(ctx)?;
        let dir = scratch.dir.display().to_string();
        let pool = SecondPool::create(ctx).await?;
        let root_fs = format!("{}/sink", pool.name);
        ctx.sh(&format!("zfs create '{root_fs}'")).await?;
        Ok(Site {
            scratch,
            dir,
            root_fs,
            _pool: pool,
        })
    }

    /// `global:` with this daemon's control socket and history, plus `extra`
    /// (indented YAML lines under `global:`).
    pub fn global(&self, name: &str, extra: &str) -> String {
        let dir = &self.dir;
        format!("global:\n  control:\n    sockpath: \"{dir}/{name}.sock\"\n  history:\n    path: \"{dir}/{name}.sqlite\"\n{extra}")
    }

    /// Start a sink (`serve`) and a push job of `src` (`connect`, manual
    /// snapshotting, sender keeps not-replicated + last 100, receiver last
    /// 100); `push_extra` goes under the push daemon's `global:`.
    pub async fn start_pair(
        &self,
        serve: &str,
        connect: &str,
        src: &DatasetPath,
        push_extra: &str,
    ) -> Result<Pair> {
        self.start_pair_env(serve, connect, src, push_extra, &[])
            .await
    }

    /// [`Site::start_pair`] with `push_env` in the push daemon's environment
    /// (zrepl's knobs, such as `ZREPL_REPLICATION_MAX_ATTEMPTS`).
    pub async fn start_pair_env(
        &self,
        serve: &str,
        connect: &str,
        src: &DatasetPath,
        push_extra: &str,
        push_env: &[(&str, &str)],
    ) -> Result<Pair> {
        let sink = format!(
            "{}jobs:\n  - name: sink\n    type: sink\n    root_fs: \"{}\"\n    serve: {serve}\n",
            self.global("sink", ""),
            self.root_fs
        );
        let push = format!(
            "{}jobs:\n  - name: push\n    type: push\n    connect: {connect}\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n        - type: last_n\n          count: 100\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
            self.global("push", push_extra)
        );
        let sink_cfg = self.scratch.write("sink.yml", &sink)?;
        let push_cfg = self.scratch.write("push.yml", &push)?;
        let p = |n: &str| self.scratch.path(n);
        let sink = Daemon::start("sink", &sink_cfg, &p("sink.sock"), &p("sink.log")).await?;
        let push =
            Daemon::start_env("push", &push_cfg, &p("push.sock"), &p("push.log"), push_env).await?;
        Ok(Pair { sink, push })
    }

    /// Restart the push daemon of this site (after a kill), logging to `log`.
    pub async fn restart_push(&self, log: &str) -> Result<Daemon> {
        let p = |n: &str| self.scratch.path(n);
        Daemon::start("push", &p("push.yml"), &p("push.sock"), &p(log)).await
    }
}

/// A tcp `serve:` mapping `client_ip` to `alice`, and the matching `connect:`.
pub fn tcp_pair(port: u16, client_ip: &str) -> (String, String) {
    (
        format!(
            "{{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"{client_ip}\": \"alice\"}}}}"
        ),
        format!("{{type: tcp, address: \"127.0.0.1:{port}\"}}"),
    )
}

/// Bytes the running `zfs recv` into `fs` has read from its input so far
/// (`rchar` of `/proc/<pid>/io`), or `None` while there is none.
pub fn recv_bytes_read(fs: &str) -> Option<u64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let is_recv = args
            .first()
            .is_some_and(|a| a == b"zfs" || a.ends_with(b"/zfs"))
            && args.iter().any(|a| *a == b"recv" || *a == b"receive")
            && args.last().is_some_and(|a| *a == fs.as_bytes());
        if !is_recv {
            continue;
        }
        let io = std::fs::read_to_string(dir.join("io")).unwrap_or_default();
        let rchar = io
            .lines()
            .find_map(|l| l.strip_prefix("rchar:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = rchar {
            total = Some(total.unwrap_or(0) + n);
        }
    }
    total
}

/// Wait until the `zfs recv` into `fs` has read `bytes` of its stream, so
/// that a cut from now on leaves a resumable state behind: the bytes a
/// sender counts may still sit in socket and pipe buffers, and a receive
/// that ends before it got past its first records keeps nothing (seen on a
/// loaded one-vCPU guest).
pub async fn wait_recv_read(fs: &str, bytes: u64, within: Duration) -> Result<u64> {
    let started = Instant::now();
    loop {
        let read = recv_bytes_read(fs);
        if let Some(n) = read.filter(|n| *n >= bytes) {
            return Ok(n);
        }
        ensure!(
            started.elapsed() < within,
            "the zfs recv into {fs} read {read:?} bytes within {within:?}, not {bytes}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resume token `zfs recv -s` saved for `fs`, waiting up to `within`
/// for it: a receive whose input ended saves it once it has read what was
/// still buffered, and the filesystem of an initial receive is not visible
/// until then. Fails, naming `fs`, when none appears.
pub async fn wait_resume_token(ctx: &Ctx, fs: &str, within: Duration) -> Result<String> {
    let started = Instant::now();
    loop {
        let token = ctx
            .sh(&format!(
                "zfs get -H -o value receive_resume_token '{fs}' 2>/dev/null || true"
            ))
            .await?;
        let token = token.trim().to_string();
        if token.len() > 10 {
            return Ok(token);
        }
        ensure!(
            started.elapsed() < within,
            "no resumable state of {fs} on the sink within {within:?}: {token:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

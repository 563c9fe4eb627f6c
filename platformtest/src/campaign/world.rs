//! A campaign's world: the sender's filesystems in the case's pool, a sink
//! daemon on a second pool, a push daemon that reaches the sink through the
//! fault proxy, and the model the invariants are checked against.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use zrelay_zfs::{DatasetPath, Zfs};

use super::proxy::Proxy;
use super::Tally;
use crate::daemons::{checksum, free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;

/// How many snapshots the push job's rules keep per filesystem on the
/// sender (`not_replicated` + `last_n`) and on the receiver (`last_n`).
pub const KEEP_SENDER: usize = 3;
/// See [`KEEP_SENDER`].
pub const KEEP_RECEIVER: usize = 5;
/// The wakeups a round may take to converge once its fault is gone.
pub const MAX_WAKEUPS: usize = 6;
/// Bounds on each daemon, checked after every round.
pub const MAX_RSS_KIB: u64 = 256 << 10;
/// See [`MAX_RSS_KIB`].
pub const MAX_FDS: usize = 256;

/// One snapshot as listed: guid and createtxg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub name: String,
    pub guid: String,
    pub txg: u64,
}

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Push,
    Sink,
}

/// The world of one campaign.
pub struct World {
    pub scratch: Scratch,
    pub dir: String,
    pub pool_b: SecondPool,
    /// The sink's `root_fs`.
    pub root_fs: String,
    /// The sender's filesystems (`src` and below).
    pub fss: Vec<DatasetPath>,
    pub src: DatasetPath,
    pub proxy: Proxy,
    pub sink: Option<Daemon>,
    pub push: Option<Daemon>,
    /// The push config in use (`push.yml` or another snapshotting).
    pub push_cfg: PathBuf,
    /// Snapshots seen at the previous check, per sender filesystem.
    prev_sender: BTreeMap<String, Vec<Snap>>,
    /// Snapshots (by guid) seen on the receiver at the previous check.
    prev_receiver: BTreeMap<String, Vec<Snap>>,
    /// Whether the sender model applies (another pruner may run).
    pub sender_model: bool,
    history_lines: usize,
    serial: u32,
    logs: u32,
    /// The newest file written per filesystem.
    files: BTreeMap<String, String>,
    pub rng: fastrand::Rng,
}

/// YAML of the push daemon; `snapshotting` is the job's snapshotting block.
fn push_yaml(dir: &str, port: u16, src: &DatasetPath, snapshotting: &str, keep: &str) -> String {
    format!(
        "global:\n  control:\n    sockpath: \"{dir}/push.sock\"\n  history:\n    path: \"{dir}/push.sqlite\"\njobs:\n  - name: push\n    type: push\n    connect: {{type: tcp, address: \"127.0.0.1:{port}\"}}\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n{snapshotting}    pruning:\n      keep_sender:\n        - type: not_replicated\n{keep}      keep_receiver:\n        - type: last_n\n          count: {KEEP_RECEIVER}\n"
    )
}

impl World {
    /// The sender tree (`src`, `src/a`, `src/a/b c`, `src/d`), each with a
    /// file and a first snapshot, the daemons, and the proxy.
    pub async fn new(ctx: &Ctx, seed: u64) -> Result<World> {
        let scratch = Scratch::new(ctx)?;
        let dir = scratch.dir.display().to_string();
        let pool_b = SecondPool::create(ctx).await?;
        let root_fs = format!("{}/sink", pool_b.name);
        ctx.sh(&format!("zfs create '{root_fs}'")).await?;
        let src = ctx.ds("src");
        let fss: Vec<DatasetPath> = ["src", "src/a", "src/a/b c", "src/d"]
            .iter()
            .map(|r| ctx.ds(r))
            .collect();
        for fs in &fss {
            ctx.zfs.create(fs, &[]).await?;
        }
        let (sink_port, proxy_port) = (free_port()?, free_port()?);
        let proxy = Proxy::start(proxy_port, sink_port).await?;
        let sink_yaml = format!(
            "global:\n  control:\n    sockpath: \"{dir}/sink.sock\"\n  history:\n    path: \"{dir}/sink.sqlite\"\njobs:\n  - name: sink\n    type: sink\n    root_fs: \"{root_fs}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{sink_port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n    limits:\n      idle_timeout: 20s\n"
        );
        scratch.write("sink.yml", &sink_yaml)?;
        let manual = "      type: manual\n";
        let keep = format!("        - type: last_n\n          count: {KEEP_SENDER}\n");
        let push_cfg = scratch.write(
            "push.yml",
            &push_yaml(&dir, proxy_port, &src, manual, &keep),
        )?;
        let mut w = World {
            scratch,
            dir,
            pool_b,
            root_fs,
            fss,
            src,
            proxy,
            sink: None,
            push: None,
            push_cfg,
            prev_sender: BTreeMap::new(),
            prev_receiver: BTreeMap::new(),
            sender_model: true,
            history_lines: 0,
            serial: 0,
            logs: 0,
            files: BTreeMap::new(),
            rng: fastrand::Rng::with_seed(seed),
        };
        w.write_and_snapshot(ctx, 1 << 20).await?;
        w.start(Side::Sink).await?;
        w.start(Side::Push).await?;
        Ok(w)
    }

    /// A campaign's start: its seed, tally and world, replicated once and
    /// checked.
    pub async fn begin(ctx: &Ctx, key: &str, name: &'static str) -> Result<(World, Tally)> {
        let seed = super::seed(key);
        let mut t = Tally::new(name, seed);
        let mut w = World::new(ctx, seed).await?;
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        Ok((w, t))
    }

    /// Write a push config with another snapshotting block and sender
    /// keep rules (indented YAML), and return its path.
    pub fn push_config(&self, name: &str, snapshotting: &str, keep: &str) -> Result<PathBuf> {
        self.scratch.write(
            name,
            &push_yaml(&self.dir, self.proxy.port, &self.src, snapshotting, keep),
        )
    }

    /// Start a daemon of `side` (its log gets a new number).
    pub async fn start(&mut self, side: Side) -> Result<()> {
        self.logs += 1;
        let n = self.logs;
        let p = |f: &str| self.scratch.path(f);
        match side {
            Side::Sink => {
                let d = Daemon::start(
                    "sink",
                    &p("sink.yml"),
                    &p("sink.sock"),
                    &p(&format!("sink_{n}.log")),
                )
                .await?;
                self.sink = Some(d);
            }
            Side::Push => {
                let d = Daemon::start(
                    "push",
                    &self.push_cfg,
                    &p("push.sock"),
                    &p(&format!("push_{n}.log")),
                )
                .await?;
                self.push = Some(d);
            }
        }
        Ok(())
    }

    /// SIGKILL a daemon (nothing is cleaned up).
    pub async fn kill(&mut self, side: Side) -> Result<()> {
        let d = match side {
            Side::Push => self.push.as_mut(),
            Side::Sink => self.sink.as_mut(),
        };
        if let Some(d) = d {
            d.kill().await?;
        }
        Ok(())
    }

    /// Stop the push daemon with SIGTERM.
    pub async fn stop_push(&mut self) -> Result<()> {
        if let Some(d) = self.push.take() {
            d.stop().await?;
        }
        Ok(())
    }

    pub fn push(&self) -> &Daemon {
        self.push.as_ref().expect("push daemon running")
    }

    /// The running sink daemon's log so far (empty while none runs).
    pub fn sink_log(&self) -> String {
        self.sink.as_ref().map(|d| d.log_text()).unwrap_or_default()
    }

    /// Create a new sender filesystem `rel` (under the case's root) with a
    /// file; its first snapshot comes with the next round's.
    pub async fn add_fs(&mut self, ctx: &Ctx, rel: &str) -> Result<()> {
        let fs = ctx.ds(rel);
        ctx.zfs.create(&fs, &[]).await?;
        ctx.write(&fs, "first.bin", 1 << 20).await?;
        self.files.insert(fs.to_string(), "first.bin".into());
        self.fss.push(fs);
        Ok(())
    }

    /// Write `bytes` (random per filesystem, up to `bytes`) into some
    /// filesystems and snapshot all of them with the next `c_NNNN` name;
    /// returns the bytes written.
    pub async fn write_and_snapshot(&mut self, ctx: &Ctx, bytes: usize) -> Result<usize> {
        self.serial += 1;
        let mut total = 0;
        for fs in &self.fss {
            if self.serial > 1 && self.rng.u8(..).is_multiple_of(3) {
                continue;
            }
            let n = self.rng.usize(bytes / 4..=bytes.max(4));
            let file = format!("f{}.bin", self.serial);
            ctx.write(fs, &file, n).await?;
            // the previous file goes (its blocks stay in the snapshots until
            // they are pruned), so a long campaign does not fill the pools
            if let Some(old) = self.files.insert(fs.to_string(), file) {
                let mp = ctx.zfs.get(fs.as_str(), &["mountpoint"]).await?;
                if let Some(mp) = mp.get("mountpoint") {
                    let _ = tokio::fs::remove_file(std::path::Path::new(&mp.value).join(old)).await;
                }
            }
            total += n;
        }
        let names: Vec<String> = self
            .fss
            .iter()
            .map(|f| format!("'{f}@c_{:04}'", self.serial))
            .collect();
        ctx.sh(&format!("zfs snapshot {}", names.join(" "))).await?;
        Ok(total)
    }

    /// `zrelay signal wakeup push --wait` until it succeeds, at most
    /// [`MAX_WAKEUPS`] times, a few seconds apart; returns the attempts.
    pub async fn converge(&mut self, tally: &mut Tally) -> Result<usize> {
        let mut last = String::new();
        for i in 1..=MAX_WAKEUPS {
            let (ok, _, err) = self
                .push()
                .cli(&["signal", "wakeup", "push", "--wait"])
                .await?;
            tally.wakeups += 1;
            if ok {
                tally.max_wakeups = tally.max_wakeups.max(i);
                return Ok(i);
            }
            last = err;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        bail!(
            "did not converge within {MAX_WAKEUPS} wakeups; the last said:\n{last}\n--- push log:\n{}\n--- sink log:\n{}",
            tail(&self.push().log_text()),
            tail(&self.sink_log())
        )
    }

    /// The receiver's copy of a sender filesystem.
    pub fn dst(&self, fs: &DatasetPath) -> String {
        format!("{}/alice/{fs}", self.root_fs)
    }

    /// Check every invariant (see the module doc of `campaign`), updating
    /// the model and the tally. Call after a round converged.
    pub async fn check(&mut self, ctx: &Ctx, tally: &mut Tally) -> Result<()> {
        let sender = list_snaps(ctx, self.src.as_str()).await?;
        let receiver = list_snaps(ctx, &format!("{}/alice", self.root_fs)).await?;
        let mut errors = Vec::new();
        for fs in &self.fss {
            let key = fs.to_string();
            let c = sender.get(&key).cloned().unwrap_or_default();
            let r = receiver.get(&self.dst(fs)).cloned().unwrap_or_default();
            // converged: every sender snapshot is on the receiver, same guid
            for s in &c {
                match r.iter().find(|x| x.name == s.name) {
                    Some(x) if x.guid == s.guid => {}
                    Some(x) => errors.push(format!(
                        "{fs}@{}: guid {} on the receiver, {} on the sender",
                        s.name, x.guid, s.guid
                    )),
                    None => errors.push(format!("{fs}@{}: not on the receiver", s.name)),
                }
            }
            // nothing lost on the sender beyond what the rules prune
            if self.sender_model {
                let prev = self.prev_sender.get(&key).cloned().unwrap_or_default();
                let lost = missing_newest(&prev, &c, KEEP_SENDER);
                if !lost.is_empty() {
                    tally.lost += lost.len();
                    errors.push(format!(
                        "{fs}: the sender lost {lost:?}, which the rules keep"
                    ));
                }
                // once converged, not_replicated keeps only the snapshot at
                // the cursor, the newest, which last_n (by createtxg) keeps too
                if c.len() > KEEP_SENDER {
                    errors.push(format!(
                        "{fs}: the sender keeps {} snapshots, the rules {KEEP_SENDER}",
                        c.len()
                    ));
                }
            }
            let prev = self.prev_receiver.get(&key).cloned().unwrap_or_default();
            let lost = missing_newest(&prev, &r, KEEP_RECEIVER);
            if !lost.is_empty() {
                tally.lost += lost.len();
                errors.push(format!(
                    "{fs}: the receiver lost {lost:?}, which the rules keep"
                ));
            }
            if r.len() > KEEP_RECEIVER {
                errors.push(format!(
                    "{fs}: the receiver keeps {} snapshots, the rules {KEEP_RECEIVER}",
                    r.len()
                ));
            }
            self.prev_sender.insert(key.clone(), c);
            self.prev_receiver.insert(key, r);
        }
        // abstractions: no step hold anywhere, one last-received hold and
        // one cursor per filesystem, no tentative cursor
        let holds = list_holds(ctx, &[&ctx.pool, &self.pool_b.name]).await?;
        let steps: Vec<_> = holds
            .iter()
            .filter(|(_, t)| t.starts_with("zrepl_STEP"))
            .collect();
        if !steps.is_empty() {
            tally.leaked_holds += steps.len();
            errors.push(format!("step holds left: {steps:?}"));
        }
        let marks = ctx
            .sh(&format!(
                "zfs list -H -t bookmark -o name -r '{}'",
                self.src
            ))
            .await?;
        for fs in &self.fss {
            let dst = self.dst(fs);
            let lr = holds
                .iter()
                .filter(|(s, t)| {
                    t.starts_with("zrepl_last_received_J_")
                        && s.split('@').next() == Some(dst.as_str())
                })
                .count();
            if lr != 1 {
                errors.push(format!("{dst}: {lr} last-received holds, expected 1"));
            }
            let mine = |m: &&str| m.split('#').next() == Some(fs.as_str());
            let cursors = marks
                .lines()
                .filter(mine)
                .filter(|m| m.contains("#zrepl_CURSOR_G_") && m.ends_with("_J_push"))
                .count();
            let tentative = marks
                .lines()
                .filter(mine)
                .filter(|m| m.contains("#zrepl_CURSORTENTATIVE_"))
                .count();
            if cursors != 1 || tentative != 0 {
                tally.leaked_holds += tentative;
                errors.push(format!(
                    "{fs}: {cursors} cursors and {tentative} tentative cursors"
                ));
            }
        }
        // no rollback, no forced receive, no destroyed filesystem on the sink
        let hist = ctx
            .sh(&format!("zpool history '{}'", self.pool_b.name))
            .await?;
        let lines: Vec<&str> = hist.lines().collect();
        let sink_side = format!("{}/alice", self.root_fs);
        for l in lines
            .iter()
            .skip(self.history_lines)
            .filter(|l| l.contains(&sink_side))
        {
            let forced =
                (l.contains(" zfs recv ") || l.contains(" zfs receive ")) && l.contains(" -F");
            let fs_destroy = l.contains(" zfs destroy ") && !l.contains('@') && !l.contains('#');
            if forced || l.contains(" zfs rollback ") || fs_destroy {
                tally.rollbacks += 1;
                errors.push(format!("the sink's pool history: {l}"));
            }
        }
        self.history_lines = lines.len();
        // the newest file of one filesystem reads the same on both sides
        let i = self.rng.usize(..self.fss.len());
        let fs = self.fss[i].clone();
        if let Some(file) = self.files.get(fs.as_str()).cloned() {
            let dst = self.dst(&fs);
            let a = checksum(ctx, fs.as_str(), &file).await;
            let b = checksum(ctx, &dst, &file).await;
            let _ = ctx
                .sh(&format!("zfs unmount '{dst}' 2>/dev/null || true"))
                .await;
            match (a, b) {
                (Ok(a), Ok(b)) if a == b && a.len() == 64 => {}
                (a, b) => errors.push(format!(
                    "{fs}/{file}: sha256 {b:?} on the receiver, {a:?} on the sender"
                )),
            }
            tally.checksums += 1;
        }
        // no record left dead in the work queue
        let (ok, out, err) = self
            .push()
            .cli(&["queue", "list", "--json", "--job", "push"])
            .await?;
        ensure!(ok, "zrelay queue list: {err}");
        let rows: serde_json::Value = serde_json::from_str(&out).context("queue list --json")?;
        let dead: Vec<String> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["state"] == "dead")
            .map(|r| format!("{} ({})", r["key"]["filesystem"], r["dead_reason"]))
            .collect();
        if !dead.is_empty() {
            tally.dead += dead.len();
            errors.push(format!("dead in the work queue: {}", dead.join(", ")));
        }
        // bounded daemons
        for d in [self.push.as_ref(), self.sink.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Some((rss, fds)) = d.pid().and_then(usage) {
                tally.max_rss_kib = tally.max_rss_kib.max(rss);
                tally.max_fds = tally.max_fds.max(fds);
                if rss > MAX_RSS_KIB || fds > MAX_FDS {
                    errors.push(format!("{}: RSS {rss} KiB, {fds} descriptors (bounds {MAX_RSS_KIB} KiB, {MAX_FDS})", d.name));
                }
            }
        }
        tally.checks += 1;
        ensure!(
            errors.is_empty(),
            "invariants broken:\n  {}\n--- sender snapshots:\n{sender:?}\n--- receiver snapshots:\n{receiver:?}\n--- push log:\n{}",
            errors.join("\n  "),
            tail(&self.push.as_ref().map(|d| d.log_text()).unwrap_or_default())
        );
        Ok(())
    }
}

/// The newest `keep` of `prev ∪ now` (by createtxg, identity by guid) that
/// are not in `now`.
fn missing_newest(prev: &[Snap], now: &[Snap], keep: usize) -> Vec<String> {
    let mut all: Vec<&Snap> = now.iter().collect();
    for p in prev {
        if !now.iter().any(|n| n.guid == p.guid) {
            all.push(p);
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.txg));
    all.into_iter()
        .take(keep)
        .filter(|s| !now.iter().any(|n| n.guid == s.guid))
        .map(|s| s.name.clone())
        .collect()
}

/// Snapshots under `root` per filesystem, oldest first.
pub async fn list_snaps(ctx: &Ctx, root: &str) -> Result<BTreeMap<String, Vec<Snap>>> {
    let out = ctx
        .sh(&format!(
            "zfs list -H -p -t snapshot -o name,guid,createtxg -s createtxg -r '{root}'"
        ))
        .await?;
    let mut m: BTreeMap<String, Vec<Snap>> = BTreeMap::new();
    for l in out.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let [name, guid, txg] = f[..] else {
            bail!("zfs list line {l:?}");
        };
        let (fs, snap) = name.split_once('@').context("a snapshot name")?;
        m.entry(fs.to_string()).or_default().push(Snap {
            name: snap.to_string(),
            guid: guid.to_string(),
            txg: txg.parse().context("createtxg")?,
        });
    }
    Ok(m)
}

/// Every (snapshot, hold tag) in the pools.
pub async fn list_holds(ctx: &Ctx, pools: &[&str]) -> Result<Vec<(String, String)>> {
    let mut held = Vec::new();
    for p in pools {
        let out = ctx
            .sh(&format!(
                "zfs get -H -p -o name,value -t snapshot -r userrefs '{p}'"
            ))
            .await?;
        held.extend(
            out.lines()
                .filter_map(|l| l.split_once('\t'))
                .filter(|(_, v)| *v != "0")
                .map(|(n, _)| format!("'{n}'")),
        );
    }
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let out = ctx.sh(&format!("zfs holds -H {}", held.join(" "))).await?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect())
}

/// (RSS in KiB, open descriptors) of a process.
pub fn usage(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

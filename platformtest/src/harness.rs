//! The harness: a fresh, uniquely named pool on a file vdev for every case,
//! destroyed afterwards even when the case fails or panics.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use futures_util::FutureExt;
use zrelay_testing::conformance::{self, Fixture};
use zrelay_zfs::{DatasetPath, RealZfs, Zfs, ZfsVersion};

/// A case's body.
pub type CaseFn = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A case body: platform-only, or from the behavioural suite shared with the fake.
pub enum Body {
    /// Needs the real system.
    Platform(CaseFn),
    /// From `zrelay_testing::conformance`, run here against real ZFS.
    Conformance(conformance::CaseFn),
    /// From `zrelay_testing::replication`, run here against real ZFS.
    Replication(zrelay_testing::replication::CaseFn),
}

/// One named platform test.
pub struct Case {
    /// The name; zrepl's case name where the case comes from zrepl.
    pub name: &'static str,
    /// The body.
    pub run: Body,
}

/// What a case gets: the real ZFS, its own pool, and a root dataset whose
/// name contains a space.
pub struct Ctx {
    /// The ZFS layer under test.
    pub zfs: RealZfs,
    /// The pool's name.
    pub pool: String,
    /// `<pool>/zrelay platformtest`, created empty for the case.
    pub root: DatasetPath,
    /// The OpenZFS under test.
    pub version: ZfsVersion,
    files: std::sync::atomic::AtomicUsize,
}

impl Ctx {
    /// `root/<rel>` as a dataset path.
    pub fn ds(&self, rel: &str) -> DatasetPath {
        self.root
            .join_relative(rel)
            .expect("valid test dataset name")
    }

    /// Run a shell command in the guest (for setup that zrelay does not do itself).
    pub async fn sh(&self, script: &str) -> Result<String> {
        let out = tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("POOL", &self.pool)
            .env("ROOT", self.root.as_str())
            .output()
            .await
            .context("spawning bash")?;
        if !out.status.success() {
            bail!(
                "shell step failed ({}): {script}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Write `bytes` of incompressible data into a new file of the mounted `fs`.
    pub async fn write(&self, fs: &DatasetPath, file: &str, bytes: usize) -> Result<()> {
        let mp = self.zfs.get(fs.as_str(), &["mountpoint"]).await?;
        let mp = mp
            .get("mountpoint")
            .map(|p| p.value.clone())
            .unwrap_or_default();
        let path = Path::new(&mp).join(file);
        let mut data = vec![0u8; bytes];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ bytes as u64;
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        tokio::fs::write(&path, data)
            .await
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[async_trait::async_trait]
impl Fixture for Ctx {
    fn zfs(&self) -> &dyn Zfs {
        &self.zfs
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        let name = format!(
            "data-{}",
            self.files
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Ctx::write(self, fs, &name, bytes)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

/// Runs cases, each in its own pool, and tallies the outcome.
pub struct Harness {
    vdev_dir: PathBuf,
    version: ZfsVersion,
    run_id: String,
    passed: usize,
    failed: Vec<String>,
    skipped: Vec<(String, String)>,
}

impl Harness {
    /// Pools go on file vdevs under `vdev_dir`.
    pub fn new(vdev_dir: PathBuf, version: ZfsVersion) -> Self {
        Harness {
            vdev_dir,
            version,
            run_id: format!("{:x}", std::process::id()),
            passed: 0,
            failed: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Cases skipped so far, with their reasons.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// Number of cases that passed so far.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// Names of cases that failed so far.
    pub fn failed(&self) -> &[String] {
        &self.failed
    }

    /// Run one case in a fresh pool, then destroy the pool whatever happened.
    pub async fn run(&mut self, index: usize, case: &Case) {
        let started = Instant::now();
        let cpu_before = CpuTimes::read();
        if let Some(why) = crate::needs::missing(case.name, &self.version) {
            self.skipped.push((case.name.to_string(), why.clone()));
            println!("skip   {}: {why}", case.name);
            return;
        }
        let pool = format!("zrelaypt_{}_{index}", self.run_id);
        let vdev = self.vdev_dir.join(format!("{pool}.img"));
        let result = match self.setup(&pool, &vdev).await {
            Ok(ctx) => {
                let body = async {
                    match case.run {
                        Body::Platform(f) => f(&ctx).await,
                        Body::Conformance(f) => f(&ctx).await.map_err(anyhow::Error::msg),
                        Body::Replication(f) => f(&ctx).await.map_err(anyhow::Error::msg),
                    }
                };
                let r = std::panic::AssertUnwindSafe(body).catch_unwind().await;
                match r {
                    Ok(r) => r,
                    Err(panic) => Err(anyhow::anyhow!("panicked: {}", panic_message(&panic))),
                }
            }
            Err(e) => Err(e.context("setting up the pool")),
        };
        let teardown = teardown(&pool, &vdev).await;
        let secs = started.elapsed().as_secs_f64();
        let cpu = CpuTimes::note(cpu_before, CpuTimes::read());
        match result.and(teardown) {
            Ok(()) => {
                self.passed += 1;
                println!("ok     {} ({secs:.1}s{cpu})", case.name);
            }
            Err(e) => {
                self.failed.push(case.name.to_string());
                println!("FAILED {} ({secs:.1}s{cpu}): {e:#}", case.name);
            }
        }
    }

    async fn setup(&self, pool: &str, vdev: &Path) -> Result<Ctx> {
        tokio::fs::create_dir_all(&self.vdev_dir).await?;
        let file =
            std::fs::File::create(vdev).with_context(|| format!("creating {}", vdev.display()))?;
        file.set_len(256 << 20)?;
        let zfs = RealZfs::new();
        let status = tokio::process::Command::new("zpool")
            .args(["create", "-f", "-o", "cachefile=none", "-m"])
            .arg(format!("/{pool}"))
            .arg(pool)
            .arg(vdev)
            .output()
            .await?;
        if !status.status.success() {
            bail!(
                "zpool create {pool}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
        let root = DatasetPath::parse(&format!("{pool}/zrelay platformtest"))?;
        zfs.create(&root, &[]).await?;
        Ok(Ctx {
            zfs,
            pool: pool.to_string(),
            root,
            version: self.version.clone(),
            files: Default::default(),
        })
    }
}

/// The machine's CPU time so far, from the first line of `/proc/stat`, in
/// clock ticks: where a case's wall time went (busy in user space, busy in
/// the kernel, where ZFS works, or idle, waiting on timers), printed beside
/// its duration to show what makes the suite slow under TCG.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    user: u64,
    system: u64,
    idle: u64,
}

impl CpuTimes {
    fn read() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        Self::parse(stat.lines().next()?)
    }

    /// `cpu  user nice system idle iowait irq softirq steal ...`
    fn parse(line: &str) -> Option<CpuTimes> {
        let mut f = line.split_whitespace();
        if f.next()? != "cpu" {
            return None;
        }
        let v: Vec<u64> = f.map_while(|x| x.parse().ok()).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(CpuTimes {
            user: at(0) + at(1),
            system: at(2) + at(5) + at(6),
            idle: at(3) + at(4),
        })
    }

    /// `, cpu U% user S% kernel` of the time from `then` to `now` (nothing
    /// when /proc/stat could not be read).
    fn note(then: Option<Self>, now: Option<Self>) -> String {
        let (Some(now), Some(then)) = (now, then) else {
            return String::new();
        };
        let user = now.user.saturating_sub(then.user);
        let system = now.system.saturating_sub(then.system);
        let total = user + system + now.idle.saturating_sub(then.idle);
        if total == 0 {
            return String::new();
        }
        let pct = |x: u64| x * 100 / total;
        format!(", cpu {}% user {}% kernel", pct(user), pct(system))
    }
}

async fn teardown(pool: &str, vdev: &Path) -> Result<()> {
    let mut last = String::new();
    // a just-killed zfs send or recv can keep the pool busy for a moment
    for _ in 0..10 {
        let out = tokio::process::Command::new("zpool")
            .args(["destroy", "-f", pool])
            .output()
            .await?;
        if out.status.success() {
            let _ = tokio::fs::remove_file(vdev).await;
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if last.contains("no such pool") {
            let _ = tokio::fs::remove_file(vdev).await;
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    bail!("cannot destroy pool {pool}: {last}{}", who_holds(pool))
}

/// What may keep `pool` busy: its mounts (in mount order: a mount listed
/// after a mount below it hides that one), and the processes whose working
/// directory or open files are under its mountpoint (the guest has no
/// `fuser`), or that run `zfs`.
fn who_holds(pool: &str) -> String {
    let under = format!("/{pool}");
    let mut out = String::from("\n    mounts:");
    if let Ok(m) = std::fs::read_to_string("/proc/mounts") {
        for l in m.lines().filter(|l| l.starts_with(pool)) {
            out.push_str(&format!("\n      {l}"));
        }
    }
    out.push_str("\n    processes:");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let base = e.path();
        let cmd = std::fs::read(base.join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let mut why = Vec::new();
        if std::fs::read_link(base.join("cwd")).is_ok_and(|c| c.starts_with(&under)) {
            why.push("cwd".to_string());
        }
        if let Ok(fds) = std::fs::read_dir(base.join("fd")) {
            for fd in fds.flatten() {
                if let Ok(t) = std::fs::read_link(fd.path()) {
                    if t.starts_with(&under) {
                        why.push(format!("fd {}", t.display()));
                    }
                }
            }
        }
        if cmd.starts_with("zfs ") || cmd.contains("/zfs ") {
            why.push("runs zfs".into());
        }
        if !why.is_empty() {
            out.push_str(&format!("\n      {pid} {cmd}: {}", why.join(", ")));
        }
    }
    out
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::CpuTimes;

    #[test]
    fn cpu_shares_come_from_proc_stat() {
        let a = CpuTimes::parse("cpu  100 5 50 1000 10 1 4 0 0 0");
        let b = CpuTimes::parse("cpu  160 5 70 1100 20 1 4 0 0 0");
        // 60 user, 20 kernel, 110 idle of 190 ticks
        assert_eq!(CpuTimes::note(a, b), ", cpu 31% user 10% kernel");
        assert_eq!(CpuTimes::note(None, b), "");
        assert!(CpuTimes::parse("cpu0 1 2 3 4").is_none());
    }
}

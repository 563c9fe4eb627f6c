//! The Debian package (`scripts/deb`) on the guest: it installs with
//! `dpkg -i`, puts every file where Debian expects it, its systemd unit
//! passes `systemd-analyze verify`, the installed `zrelay` runs the
//! quickstart (two pools, a sink and a push daemon, full then incremental,
//! GUIDs and data checked), and `dpkg --purge` removes it again.
//!
//! The package is the newest `target/debian/zrelay_*.deb` beside the
//! platform binary; it must be newer than the `zrelay` binary built with it
//! (`scripts/test` runs `scripts/deb --dev` before the suite).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, ensure, Context as _, Result};

use crate::daemons::{free_port, zrelay_bin};
use crate::harness::Ctx;

/// Files the package must install (`dpkg -L` lists them).
const INSTALLED: &[&str] = &[
    "/usr/bin/zrelay",
    "/etc/zrelay/zrelay.yml.example",
    "/usr/share/bash-completion/completions/zrelay",
    "/usr/share/zsh/vendor-completions/_zrelay",
    "/usr/share/fish/vendor_completions.d/zrelay.fish",
    "/usr/share/doc/zrelay/copyright",
    "/usr/share/doc/zrelay/README.md",
    "/usr/share/doc/zrelay/design.md",
    "/usr/share/doc/zrelay/examples/push.yml",
];

/// The repository root: the platform binary is `<repo>/target/<profile>/`.
fn repo_root() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("the platform binary is not under <repo>/target/<profile>/")
}

fn mtime(p: &Path) -> Result<SystemTime> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("stat {}", p.display()))?
        .modified()?)
}

/// The newest package in `target/debian`, checked not to predate the binary.
fn package() -> Result<PathBuf> {
    let dir = repo_root()?.join("target/debian");
    let mut debs: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "{} (build the package with scripts/deb --dev)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zrelay_") && n.ends_with(".deb"))
        })
        .filter_map(|p| mtime(&p).ok().map(|t| (t, p)))
        .collect();
    debs.sort();
    let Some((built, deb)) = debs.pop() else {
        bail!(
            "no zrelay_*.deb in {}: run scripts/deb --dev",
            dir.display()
        );
    };
    let bin = zrelay_bin()?;
    ensure!(
        built >= mtime(&bin)?,
        "{} is older than {}: run scripts/deb --dev",
        deb.display(),
        bin.display()
    );
    Ok(deb)
}

/// Install, check, run the quickstart from the installed files, purge.
pub async fn package_installs_and_runs_the_quickstart(ctx: &Ctx) -> Result<()> {
    let deb = package()?;
    let deb = deb.display();
    // The rig's image keeps dpkg from installing docs and man pages; install
    // as on any Debian system.
    ctx.sh(&format!(
        "[ ! -e {RIG_EXCLUDES} ] || mv {RIG_EXCLUDES} {RIG_EXCLUDES}.off"
    ))
    .await?;
    let r = run(ctx, &deb.to_string()).await;
    // Leave the guest as it was, whatever happened.
    let _ = ctx
        .sh(&format!(
            "dpkg --purge zrelay >/dev/null 2>&1 || true; [ ! -e {RIG_EXCLUDES}.off ] || mv {RIG_EXCLUDES}.off {RIG_EXCLUDES}"
        ))
        .await;
    r
}

/// The image's dpkg path excludes (`platformtest/vm/build-image`).
const RIG_EXCLUDES: &str = "/etc/dpkg/dpkg.cfg.d/zrelay-rig";

async fn run(ctx: &Ctx, deb: &str) -> Result<()> {
    ctx.sh(&format!("dpkg -i '{deb}' >/dev/null"))
        .await
        .context("dpkg -i")?;
    let listed = ctx.sh("dpkg -L zrelay").await?;
    let files: Vec<&str> = listed.lines().collect();
    for f in INSTALLED {
        ensure!(files.contains(f), "the package lacks {f}:\n{listed}");
        ensure!(Path::new(f).exists(), "{f} is listed but missing");
    }
    let man = files
        .iter()
        .find(|f| f.starts_with("/usr/share/man/man1/zrelay.1"))
        .context("the package lacks the man page")?;
    ensure!(Path::new(man).exists(), "{man} is listed but missing");
    let unit = files
        .iter()
        .find(|f| f.ends_with("/systemd/system/zrelay.service"))
        .with_context(|| format!("the package lacks the systemd unit:\n{listed}"))?;
    let unit_text = std::fs::read_to_string(unit)?;
    ensure!(
        unit_text.contains("ExecStart=/usr/bin/zrelay daemon"),
        "the unit does not start the packaged binary:\n{unit_text}"
    );
    // Installed, not enabled: there is no configuration yet.
    ensure!(
        !Path::new("/etc/systemd/system/multi-user.target.wants/zrelay.service").exists(),
        "the unit was enabled on install"
    );
    // `--man=no`: the guest has no man-db; the man page is checked above.
    let verify = ctx
        .sh(&format!(
            "rc=0; systemd-analyze verify --man=no '{unit}' 2>&1 || rc=$?; echo \"exit=$rc\""
        ))
        .await
        .context("systemd-analyze verify")?;
    ensure!(
        verify.trim_end().ends_with("exit=0") && !verify.contains("zrelay.service:"),
        "systemd-analyze verify complains about the unit:\n{verify}"
    );

    let version = ctx.sh("/usr/bin/zrelay version").await?;
    let pkg_version = ctx.sh("dpkg-query -W -f '${Version}' zrelay").await?;
    let upstream = pkg_version.split('-').next().unwrap_or_default();
    ensure!(
        !upstream.is_empty() && version.contains(upstream),
        "zrelay version {version:?} does not name the package's version {pkg_version:?}"
    );
    ctx.sh("/usr/bin/zrelay configcheck --skip-cert-check --config /etc/zrelay/zrelay.yml.example")
        .await
        .context("the example config must pass configcheck")?;

    let quickstart = repo_root()?.join("platformtest/quickstart.sh");
    let out = ctx
        .sh(&format!(
            "ZRELAY_QS_PORT={} bash '{}' /usr/bin 2>&1",
            free_port()?,
            quickstart.display()
        ))
        .await
        .context("the quickstart with the installed zrelay")?;
    ensure!(
        out.contains("GUIDs match and the data matches"),
        "the quickstart did not check out:\n{out}"
    );
    println!(
        "       installed {} files; man page {man}; unit {unit}; {}",
        files.len(),
        version.trim()
    );

    ctx.sh("dpkg --purge zrelay >/dev/null").await?;
    for f in ["/usr/bin/zrelay", "/etc/zrelay/zrelay.yml.example", unit] {
        ensure!(!Path::new(f).exists(), "{f} is left after dpkg --purge");
    }
    Ok(())
}

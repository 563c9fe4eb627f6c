//! `zrelay version`.

use anyhow::Result;
use clap::Args;
use zrelay_zfs::{RealZfs, Zfs};

/// Options of `zrelay version`.
#[derive(Args)]
pub struct VersionArgs {
    /// Print only zrelay's own version; do not look for OpenZFS.
    #[arg(long)]
    pub short: bool,
}

/// Print the versions; OpenZFS parts say "not found" when absent.
pub async fn run(args: VersionArgs) -> Result<()> {
    println!("zrelay {}", env!("CARGO_PKG_VERSION"));
    if args.short {
        return Ok(());
    }
    let (userland, mut kmod, detected) = match RealZfs::new().version().await {
        Ok(v) => (v.userland.clone(), v.kmod.clone(), Some(v)),
        Err(e) => (format!("not found ({e})"), None, None),
    };
    if kmod.is_none() {
        kmod = std::fs::read_to_string("/sys/module/zfs/version")
            .ok()
            .map(|s| s.trim().to_string());
    }
    println!("OpenZFS userland {userland}");
    println!(
        "OpenZFS kernel module {}",
        kmod.as_deref().unwrap_or("not loaded")
    );
    if let Some(v) = detected {
        let f = v.features();
        let missing: Vec<&str> = [
            (f.resumable_send_recv, "resumable send and receive (0.7)"),
            (f.bookmarks, "bookmarks (0.6.4)"),
            (f.encryption, "native encryption and raw sends (0.8)"),
            (f.bookmark_copy, "bookmark copies (2.0)"),
        ]
        .iter()
        .filter(|(has, _)| !has)
        .map(|(_, what)| *what)
        .collect();
        if missing.is_empty() {
            println!("OpenZFS features zrelay uses: all present");
        } else {
            println!(
                "OpenZFS features zrelay uses: missing {}",
                missing.join(", ")
            );
        }
        if v.mismatched() {
            println!(
                "warning: the userland ({}) and the loaded kernel module ({}) are different releases: a reboot or module reload is pending; zrelay relies only on what both have",
                v.short(),
                v.kmod.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

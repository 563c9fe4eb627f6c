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
    let (userland, mut kmod) = match RealZfs::new().version().await {
        Ok(v) => (v.userland, v.kmod),
        Err(e) => (format!("not found ({e})"), None),
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
    Ok(())
}

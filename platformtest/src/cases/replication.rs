//! The replication suite (`zrelay_replication::suite`) on real OpenZFS, and
//! the replication cases that need the real system: counting the zfs
//! commands of an incremental cycle over many filesystems.

use std::sync::Arc;

use async_trait::async_trait;
use zrelay_replication::suite::Fixture;
use zrelay_zfs::{DatasetPath, Zfs};

use crate::harness::{Case, Ctx};

#[async_trait]
impl Fixture for Ctx {
    fn zfs(&self) -> Arc<dyn Zfs> {
        // Clones share the invocation log.
        Arc::new(self.zfs.clone())
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        zrelay_zfs::conformance::Fixture::write(self, fs, bytes).await
    }

    async fn create_encrypted(&self, fs: &DatasetPath) -> Result<(), String> {
        let key = format!("/var/tmp/{}.key", self.pool);
        self.sh(&format!(
            "[ -f {key} ] || head -c 32 /dev/urandom > {key}; zfs create -o encryption=on -o keyformat=raw -o keylocation=file://{key} '{fs}'"
        ))
        .await
        .map(drop)
        .map_err(|e| format!("{e:#}"))
    }
}

/// Replication cases that only make sense on real ZFS.
pub fn real_only() -> Vec<Case> {
    Vec::new()
}

//! The replication suite (`zrelay_testing::replication`) against the in-memory
//! fake. The platform suite runs the very same cases against real OpenZFS.

use std::sync::Arc;

use async_trait::async_trait;
use zrelay_fake::FakeZfs;
use zrelay_testing::replication::{self, Fixture};
use zrelay_zfs::{DatasetPath, Zfs};

struct FakeFixture {
    zfs: Arc<FakeZfs>,
    root: DatasetPath,
}

#[async_trait]
impl Fixture for FakeFixture {
    fn zfs(&self) -> Arc<dyn Zfs> {
        self.zfs.clone()
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        self.zfs.write(fs, bytes as u64).map_err(|e| e.to_string())
    }

    async fn create_encrypted(&self, fs: &DatasetPath) -> Result<(), String> {
        self.zfs
            .create(
                fs,
                &[
                    ("encryption".into(), "on".into()),
                    ("keyformat".into(), "passphrase".into()),
                ],
            )
            .await
            .map_err(|e| e.to_string())
    }
}

async fn fixture() -> FakeFixture {
    let zfs = Arc::new(FakeZfs::new());
    let pool = zfs.add_pool("fakepool").unwrap();
    let root = pool.child("zrelay platformtest").unwrap();
    zfs.create(&root, &[]).await.unwrap();
    FakeFixture { zfs, root }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_suite_passes_against_the_fake() {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    let mut failures = Vec::new();
    let cases = replication::all();
    let mut ran = 0;
    for case in cases.iter().filter(|c| c.name.contains(&filter)) {
        ran += 1;
        let fx = fixture().await;
        if let Err(e) = (case.run)(&fx).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(ran > 0, "no case matched {filter:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

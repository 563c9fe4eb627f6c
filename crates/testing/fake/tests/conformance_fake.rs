//! The behavioural suite (`zrelay_testing::conformance`) against the in-memory
//! fake. The platform suite runs the very same cases against real OpenZFS.

use async_trait::async_trait;
use zrelay_fake::{FakeOp, FakeZfs};
use zrelay_testing::conformance::{self, Fixture};
use zrelay_zfs::{DatasetPath, Zfs};

struct FakeFixture {
    zfs: FakeZfs,
    root: DatasetPath,
}

#[async_trait]
impl Fixture for FakeFixture {
    fn zfs(&self) -> &dyn Zfs {
        &self.zfs
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        self.zfs.write(fs, bytes as u64).map_err(|e| e.to_string())
    }
}

async fn fixture() -> FakeFixture {
    let zfs = FakeZfs::new();
    let pool = zfs.add_pool("fakepool").unwrap();
    let root = pool.child("zrelay platformtest").unwrap();
    zfs.create(&root, &[]).await.unwrap();
    FakeFixture { zfs, root }
}

#[tokio::test]
async fn conformance_suite_passes_against_the_fake() {
    let mut failures = Vec::new();
    let cases = conformance::all();
    for case in &cases {
        let fx = fixture().await;
        if let Err(e) = (case.run)(&fx).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_broken_fake_fails_the_suite() {
    // the suite can fail: a fake whose holds silently fail must be caught
    let fx = fixture().await;
    fx.zfs.fail_always(FakeOp::Hold, "holds are broken");
    let holds_work = conformance::all()
        .into_iter()
        .find(|c| c.name == "HoldsWork")
        .unwrap();
    assert!((holds_work.run)(&fx).await.is_err());
}

#[tokio::test]
async fn listing_is_one_call_on_the_fake() {
    let fx = fixture().await;
    for i in 0..50 {
        let fs = fx.root.child(&format!("fs {i}")).unwrap();
        fx.zfs.create(&fs, &[]).await.unwrap();
    }
    fx.zfs.reset_calls();
    let listed = fx.zfs.list(&fx.root).await.unwrap();
    assert_eq!(listed.len(), 51);
    assert_eq!(fx.zfs.calls(FakeOp::List), 1);
}

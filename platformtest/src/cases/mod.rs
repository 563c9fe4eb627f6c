//! The platform cases, in the order they run.

use crate::harness::{Body, Case};

pub mod rig;

macro_rules! case {
    ($name:literal, $f:path) => {
        Case {
            name: $name,
            run: Body::Platform(|ctx| Box::pin($f(ctx))),
        }
    };
}

/// Every case: the rig's own, the behavioural suite shared with the fake,
/// then the cases that need the real system.
pub fn all() -> Vec<Case> {
    let rig = vec![
        case!("RigCreatePool", rig::rig_create_pool),
        case!("RigCreateFilesystem", rig::rig_create_filesystem),
        case!(
            "RigSnapshotBookmarkHoldRelease",
            rig::rig_snapshot_bookmark_hold_release
        ),
        case!(
            "RigSendRecvFullAndIncremental",
            rig::rig_send_recv_full_and_incremental
        ),
        case!(
            "RigInterruptedRecvResumesWithToken",
            rig::rig_interrupted_recv_resumes_with_token
        ),
    ];
    let shared = zrelay_zfs::conformance::all().into_iter().map(|c| Case {
        name: c.name,
        run: Body::Conformance(c.run),
    });
    rig.into_iter().chain(shared).collect()
}

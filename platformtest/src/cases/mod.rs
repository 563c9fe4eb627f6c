//! The platform cases, in the order they run.

use crate::harness::Case;

pub mod rig;

macro_rules! case {
    ($name:literal, $f:path) => {
        Case {
            name: $name,
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}

/// Every case.
pub fn all() -> Vec<Case> {
    vec![
        case!("RigCreatePool", rig::rig_create_pool),
        case!("RigCreateFilesystem", rig::rig_create_filesystem),
        case!("RigSnapshotBookmarkHoldRelease", rig::rig_snapshot_bookmark_hold_release),
        case!("RigSendRecvFullAndIncremental", rig::rig_send_recv_full_and_incremental),
        case!("RigInterruptedRecvResumesWithToken", rig::rig_interrupted_recv_resumes_with_token),
    ]
}

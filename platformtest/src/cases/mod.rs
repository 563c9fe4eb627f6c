//! The platform cases, in the order they run.

use crate::harness::{Body, Case};

pub mod batch;
pub mod cli_tools;
pub mod daemons;
pub mod daemons_more;
pub mod daemons_periods;
pub mod fanout;
pub mod fanout_crash;
pub mod fanout_grace;
pub mod features;
pub mod no_downgrade;
pub mod operator;
pub mod package;
pub mod pullers;
pub mod replicas;
pub mod replication;
pub mod rig;
pub mod security_peer;
pub mod security_recv;
pub mod security_tokens;
pub mod takeover;
pub mod zfs_layer;

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
        case!(
            "FeaturesVersionDetected",
            features::version_and_features_are_detected
        ),
        case!(
            "FeaturesPoolWithoutBookmarksRefusedByName",
            features::pool_without_bookmarks_is_refused_by_name
        ),
    ];
    let shared = zrelay_testing::conformance::all()
        .into_iter()
        .map(|c| Case {
            name: c.name,
            run: Body::Conformance(c.run),
        });
    let replication = zrelay_testing::replication::all()
        .into_iter()
        .map(|c| Case {
            name: c.name,
            run: Body::Replication(c.run),
        });
    let real_only = vec![
        case!(
            "ListFilesystemsNoFilter_WithVolumes_OneListCall",
            zfs_layer::list_filesystems_no_filter_with_volumes
        ),
        case!(
            "ReceiveForceIntoEncryptedErr",
            zfs_layer::receive_force_into_encrypted_err
        ),
        case!("ResumeTokenParsing", zfs_layer::resume_token_parsing),
        case!(
            "SendArgsValidationResumeTokenEncryptionMismatchForbidden",
            zfs_layer::resume_token_encryption_mismatch_forbidden
        ),
        case!(
            "SendArgsValidationEE_EncryptionAndRaw",
            zfs_layer::send_args_validation_ee_encryption_and_raw
        ),
        case!(
            "SendStreamNonEOFReadErrorHandling",
            zfs_layer::send_stream_non_eof_read_error_handling
        ),
        case!("BatchOpsOneCommandEach", batch::batch_ops_one_command_each),
        case!(
            "CliZfsAbstractionReleaseStale",
            cli_tools::zfs_abstraction_release_stale
        ),
        case!("CliTestPlaceholder", cli_tools::test_placeholder),
        case!(
            "CliTestDecodeResumeToken",
            cli_tools::test_decoderesumetoken
        ),
        case!("CliTestFilesystems", cli_tools::test_filesystems),
        case!(
            "CliCreateStepAndMigrateCursor",
            cli_tools::create_step_and_migrate_cursor
        ),
        case!("CliMonitorExitCodes", cli_tools::monitor_exit_codes),
        case!(
            "PackageInstallsAndRunsTheQuickstart",
            package::package_installs_and_runs_the_quickstart
        ),
        case!(
            "SecurityTokenForgedRawokRefused",
            security_tokens::forged_rawok_token_refused
        ),
        case!(
            "SecurityTokenRawResumeWithW",
            security_tokens::raw_resume_uses_w
        ),
        case!(
            "SecurityReceiveBeginMismatchRefused",
            security_tokens::receive_begin_mismatch_refused
        ),
        case!(
            "BatchFallbacksGiveTheSameResults",
            batch::batch_fallbacks_give_the_same_results
        ),
        case!(
            "SecurityRecvClientPropertiesDoNotApplyOnTheSink",
            security_recv::client_properties_do_not_apply_on_the_sink
        ),
        case!(
            "SecurityPeerDestroyWithPercentIsRefused",
            security_peer::peer_destroy_with_percent_is_refused
        ),
    ];
    rig.into_iter()
        .chain(shared)
        .chain(real_only)
        .chain(replication)
        .chain(replication::real_only())
        .chain(daemons::cases())
        .chain(crate::campaign::cases())
        .collect()
}

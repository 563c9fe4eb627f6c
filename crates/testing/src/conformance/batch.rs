//! Conformance cases for the batched operations: mixed batches (items already done,
//! missing, conflicting) give each item the result the single-item call gives, and
//! leave the state the single-item calls would leave. Also `SendArgs::validate`,
//! which reads everything it checks with one `get_many`.

use super::cases::{ds, fs_with_snaps, snap};
use super::{CaseResult, Fixture, Outcome};
use crate::ensure_case;
use zrelay_zfs::api::{VersionRef, Zfs};
use zrelay_zfs::error::ZfsError;
use zrelay_zfs::name::{BookmarkName, DatasetPath, SnapshotName, VersionKind};
use zrelay_zfs::send_args::{SendArgs, SendFlags};

fn missing(r: &zrelay_zfs::error::Result<()>, name: &str) -> bool {
    matches!(r, Err(ZfsError::DatasetDoesNotExist { path }) if path == name)
}

fn bm(fs: &DatasetPath, name: &str) -> BookmarkName {
    BookmarkName::new(fs, name).expect("valid test bookmark name")
}

/// The tags of each snapshot, sorted, via `holds_many`, in order.
async fn tags(z: &dyn Zfs, snaps: &[SnapshotName]) -> Result<Vec<Vec<String>>, String> {
    let got = z.holds_many(snaps).await.ctx("holds_many")?;
    ensure_case!(got.len() == snaps.len(), "holds_many returned {got:?}");
    let mut out = Vec::new();
    for ((s, mut t), want) in got.into_iter().zip(snaps) {
        ensure_case!(&s == want, "holds_many out of order: {s} for {want}");
        t.sort();
        out.push(t);
    }
    Ok(out)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub(super) async fn batch_hold_release_holds(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let a = fs_with_snaps(fx, "a", &["1", "2", "3"]).await?;
    let b = fs_with_snaps(fx, "b c", &["1", "2"]).await?;
    let gone_fs = ds(fx, "gone");
    let tag = "zrepl_STEP_J_batch job";
    z.hold(&snap(&a, "2"), tag).await.ctx("hold a@2")?;
    z.hold(&snap(&a, "1"), "other").await.ctx("hold a@1")?;
    for empty in [
        z.hold_many(&[], tag).await.ctx("empty hold")?.len(),
        z.release_many(&[], tag).await.ctx("empty release")?.len(),
        z.holds_many(&[]).await.ctx("empty holds")?.len(),
    ] {
        ensure_case!(empty == 0, "an empty batch returned {empty} results");
    }

    let batch = [
        snap(&a, "1"),
        snap(&a, "2"), // already held
        snap(&a, "missing"),
        snap(&b, "1"),
        snap(&gone_fs, "x"),
        snap(&b, "2"),
        snap(&a, "1"), // twice in one batch
    ];
    let r = z.hold_many(&batch, tag).await.ctx("hold_many")?;
    ensure_case!(
        r.len() == batch.len(),
        "{} results for {}",
        r.len(),
        batch.len()
    );
    for (i, (s, r)) in batch.iter().zip(&r).enumerate() {
        let ok = match i {
            2 | 4 => missing(r, &s.to_string()),
            _ => r.is_ok(),
        };
        ensure_case!(ok, "hold_many item {i} ({s}): {r:?}");
    }

    let look = [
        snap(&a, "1"),
        snap(&a, "2"),
        snap(&a, "3"),
        snap(&a, "missing"),
        snap(&b, "1"),
        snap(&b, "2"),
        snap(&gone_fs, "x"),
    ];
    let t = tags(z, &look).await?;
    let mut both = strs(&["other", tag]);
    both.sort();
    let want = vec![
        both,
        strs(&[tag]),
        vec![],
        vec![],
        strs(&[tag]),
        strs(&[tag]),
        vec![],
    ];
    ensure_case!(t == want, "holds after hold_many: {t:?}, expected {want:?}");

    let release = [
        snap(&a, "1"),
        snap(&a, "3"), // never held
        snap(&a, "missing"),
        snap(&gone_fs, "x"),
        snap(&b, "1"),
        snap(&b, "1"), // twice
    ];
    let r = z.release_many(&release, tag).await.ctx("release_many")?;
    ensure_case!(r.len() == release.len(), "{} results", r.len());
    for (s, r) in release.iter().zip(&r) {
        ensure_case!(r.is_ok(), "release_many of {s}: {r:?}");
    }
    let t = tags(z, &look).await?;
    let want = vec![
        strs(&["other"]),
        strs(&[tag]),
        vec![],
        vec![],
        vec![],
        strs(&[tag]),
        vec![],
    ];
    ensure_case!(
        t == want,
        "holds after release_many: {t:?}, expected {want:?}"
    );
    Ok(())
}

pub(super) async fn batch_get_many(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let fs = fs_with_snaps(fx, "get", &["s"]).await?;
    let s = snap(&fs, "s");
    let gs = z.guid(&s.to_string()).await.ctx("guid")?;
    let mark = bm(&fs, "m");
    z.bookmark(&VersionRef::Snapshot(s.clone()), gs, &mark)
        .await
        .ctx("bookmark")?;
    ensure_case!(
        z.get_many(&[], &["guid"]).await.ctx("empty")?.is_empty(),
        "empty get_many returned results"
    );
    let names = [
        fs.to_string(),
        s.to_string(),
        mark.to_string(),
        snap(&fs, "nope").to_string(),
        bm(&fs, "nope").to_string(),
        ds(fx, "no fs").to_string(),
        snap(&ds(fx, "no fs"), "x").to_string(),
        s.to_string(), // twice
        format!("{fs}@bad@name"),
    ];
    let got = z
        .get_many(&names, &["guid", "encryption"])
        .await
        .ctx("get_many")?;
    ensure_case!(got.len() == names.len(), "{} results", got.len());
    for (i, ((n, r), want)) in got.iter().zip(&names).enumerate() {
        ensure_case!(n == want, "result {i} is for {n:?}, not {want:?}");
        match i {
            0..=2 | 7 => {
                let p = r.as_ref().map_err(|e| format!("get_many of {n}: {e}"))?;
                let single = z.get(n, &["guid", "encryption"]).await.ctx("get")?;
                ensure_case!(*p == single, "{n}: batch {p:?} but single {single:?}");
                let guid = p.get("guid").map(|v| v.value.as_str());
                ensure_case!(
                    i == 0 || guid == Some(gs.to_string().as_str()),
                    "{n}: guid {guid:?}, expected {gs}"
                );
                let enc = p.get("encryption").map(|v| v.value.as_str());
                let want_enc = if i == 2 { "-" } else { "off" };
                ensure_case!(enc == Some(want_enc), "{n}: encryption {enc:?}");
            }
            8 => ensure_case!(matches!(r, Err(ZfsError::Name(_))), "invalid name: {r:?}"),
            _ => ensure_case!(
                matches!(r, Err(ZfsError::DatasetDoesNotExist { path }) if path == n),
                "{n}: expected DatasetDoesNotExist, got {r:?}"
            ),
        }
    }
    Ok(())
}

pub(super) async fn batch_bookmark_many(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let a = fs_with_snaps(fx, "a", &["1", "2", "3"]).await?;
    let b = fs_with_snaps(fx, "b c", &["1"]).await?;
    let g = |s: SnapshotName| async move { z.guid(&s.to_string()).await.ctx("guid") };
    let (g1, g2, g3) = (
        g(snap(&a, "1")).await?,
        g(snap(&a, "2")).await?,
        g(snap(&a, "3")).await?,
    );
    let gb = g(snap(&b, "1")).await?;
    let s = |fs: &DatasetPath, n: &str| VersionRef::Snapshot(snap(fs, n));
    z.bookmark(&s(&a, "1"), g1, &bm(&a, "same"))
        .await
        .ctx("bookmark same")?;
    z.bookmark(&s(&a, "2"), g2, &bm(&a, "other"))
        .await
        .ctx("bookmark other")?;
    ensure_case!(
        z.bookmark_many(&[]).await.ctx("empty")?.is_empty(),
        "empty bookmark_many returned results"
    );
    let reqs = vec![
        (s(&a, "3"), g3, bm(&a, "new 3")),
        (s(&a, "1"), g1, bm(&a, "same")), // exists with the same guid
        (s(&a, "3"), g3, bm(&a, "other")), // exists with another guid
        (s(&a, "missing"), g1, bm(&a, "x")),
        (s(&b, "1"), gb, bm(&b, "new")),
        (s(&a, "2"), g3, bm(&a, "wrong")), // the source has another guid
        (VersionRef::Bookmark(bm(&a, "same")), g1, bm(&a, "copy")),
        (VersionRef::Bookmark(bm(&a, "same")), g2, bm(&a, "copy 2")),
        (VersionRef::Bookmark(bm(&a, "gone")), g1, bm(&a, "y")),
        (s(&a, "3"), g3, bm(&a, "new 3")), // created earlier in this batch
    ];
    let r = z.bookmark_many(&reqs).await.ctx("bookmark_many")?;
    ensure_case!(r.len() == reqs.len(), "{} results", r.len());
    for (i, ((from, _, mark), r)) in reqs.iter().zip(&r).enumerate() {
        let ok = match i {
            2 => matches!(r, Err(ZfsError::BookmarkExists { bookmark, existing, expected })
                if *bookmark == mark.to_string() && *existing == g2 && *expected == g3),
            3 | 8 => missing(r, &from.to_string()),
            5 => matches!(r, Err(ZfsError::GuidMismatch { name, actual, expected })
                if *name == from.to_string() && *actual == g2 && *expected == g3),
            7 => matches!(r, Err(ZfsError::GuidMismatch { name, actual, expected })
                if *name == from.to_string() && *actual == g1 && *expected == g2),
            _ => r.is_ok(),
        };
        ensure_case!(ok, "bookmark_many item {i} ({from} -> {mark}): {r:?}");
    }
    for (fs, want) in [
        (
            &a,
            vec![("copy", g1), ("new 3", g3), ("other", g2), ("same", g1)],
        ),
        (&b, vec![("new", gb)]),
    ] {
        let mut got: Vec<(String, u64)> = z
            .list_versions(fs)
            .await
            .ctx("list")?
            .into_iter()
            .filter(|v| v.kind == VersionKind::Bookmark)
            .map(|v| (v.name, v.guid))
            .collect();
        got.sort();
        let want: Vec<(String, u64)> = want.into_iter().map(|(n, g)| (n.to_string(), g)).collect();
        ensure_case!(got == want, "bookmarks of {fs}: {got:?}, expected {want:?}");
    }
    Ok(())
}

pub(super) async fn batch_destroy_bookmarks(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let a = fs_with_snaps(fx, "a", &["1"]).await?;
    let b = fs_with_snaps(fx, "b c", &["1"]).await?;
    for (fs, names) in [(&a, &["x", "y", "keep"][..]), (&b, &["x"][..])] {
        let s = snap(fs, "1");
        let g = z.guid(&s.to_string()).await.ctx("guid")?;
        for n in names {
            z.bookmark(&VersionRef::Snapshot(s.clone()), g, &bm(fs, n))
                .await
                .ctx("bookmark")?;
        }
    }
    ensure_case!(
        z.destroy_bookmarks(&[]).await.ctx("empty")?.is_empty(),
        "empty destroy_bookmarks returned results"
    );
    let batch = [
        bm(&a, "x"),
        bm(&a, "missing"),
        bm(&b, "x"),
        bm(&ds(fx, "gone"), "z"),
        bm(&a, "y"),
        bm(&a, "x"), // twice
    ];
    let r = z.destroy_bookmarks(&batch).await.ctx("destroy_bookmarks")?;
    ensure_case!(r.len() == batch.len(), "{} results", r.len());
    for (m, r) in batch.iter().zip(&r) {
        ensure_case!(r.is_ok(), "destroy_bookmarks of {m}: {r:?}");
    }
    for (fs, want) in [(&a, vec!["1", "keep"]), (&b, vec!["1"])] {
        let mut got: Vec<String> = z
            .list_versions(fs)
            .await
            .ctx("list")?
            .into_iter()
            .map(|v| v.name)
            .collect();
        got.sort();
        ensure_case!(got == want, "versions of {fs} left: {got:?}");
    }
    Ok(())
}

/// Validation with everything in one `get_many`: each missing or mismatching part is
/// still named, in the order filesystem, `to`, `from`.
pub(super) async fn send_args_validation_missing_parts(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let fs = fs_with_snaps(fx, "src", &["1", "2"]).await?;
    let (s1, s2) = (snap(&fs, "1"), snap(&fs, "2"));
    let (g1, g2) = (
        z.guid(&s1.to_string()).await.ctx("guid")?,
        z.guid(&s2.to_string()).await.ctx("guid")?,
    );
    let mark = bm(&fs, "b1");
    z.bookmark(&VersionRef::Snapshot(s1.clone()), g1, &mark)
        .await
        .ctx("bookmark")?;
    let args = |from: Option<(VersionRef, u64)>, to: SnapshotName, guid: u64| SendArgs {
        fs: to.fs().clone(),
        from,
        to: (to, guid),
        encrypted: false,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates: false,
    };
    let from_bm = Some((VersionRef::Bookmark(mark.clone()), g1));
    let v = args(from_bm.clone(), s2.clone(), g2)
        .validate(z)
        .await
        .ctx("incremental from a bookmark")?;
    ensure_case!(!v.fs_encrypted(), "plain filesystem validated as encrypted");

    let gone_fs = ds(fx, "gone");
    let cases: Vec<(SendArgs, String)> = vec![
        (args(None, snap(&gone_fs, "1"), g1), gone_fs.to_string()),
        (
            args(from_bm.clone(), snap(&fs, "nope"), g2),
            snap(&fs, "nope").to_string(),
        ),
        (
            args(
                Some((VersionRef::Bookmark(bm(&fs, "nope")), g1)),
                s2.clone(),
                g2,
            ),
            bm(&fs, "nope").to_string(),
        ),
    ];
    for (a, name) in cases {
        match a.validate(z).await {
            Err(ZfsError::DatasetDoesNotExist { path }) if path == name => {}
            other => {
                return Err(format!(
                    "missing {name}: expected DatasetDoesNotExist, got {other:?}"
                ))
            }
        }
    }
    let mut enc = args(None, s2.clone(), g2);
    enc.encrypted = true;
    match enc.validate(z).await {
        Err(ZfsError::SendValidation(m)) if m.contains("not encrypted") => {}
        other => return Err(format!("encrypted policy on a plain fs: {other:?}")),
    }
    match args(from_bm, s2.clone(), g1).validate(z).await {
        Err(ZfsError::GuidMismatch {
            name,
            actual,
            expected,
        }) if name == s2.to_string() && actual == g2 && expected == g1 => {}
        other => return Err(format!("wrong `to` guid: {other:?}")),
    }
    match args(
        Some((VersionRef::Bookmark(mark.clone()), g2)),
        s2.clone(),
        g2,
    )
    .validate(z)
    .await
    {
        Err(ZfsError::GuidMismatch {
            name,
            actual,
            expected,
        }) if name == mark.to_string() && actual == g1 && expected == g2 => {}
        other => return Err(format!("wrong `from` guid: {other:?}")),
    }
    // validate_many gives, item by item, exactly what validate gives.
    let mut enc = args(None, s2.clone(), g2);
    enc.encrypted = true;
    let mixed = vec![
        args(
            Some((VersionRef::Bookmark(mark.clone()), g1)),
            s2.clone(),
            g2,
        ),
        args(None, snap(&gone_fs, "1"), g1),
        args(
            Some((VersionRef::Bookmark(mark.clone()), g1)),
            s2.clone(),
            g1,
        ),
        enc,
        args(None, s1.clone(), g1),
    ];
    let many = SendArgs::validate_many(z, mixed.clone())
        .await
        .ctx("validate_many")?;
    ensure_case!(
        many.len() == mixed.len(),
        "{} results for {} inputs",
        many.len(),
        mixed.len()
    );
    for (a, got) in mixed.into_iter().zip(many) {
        let one = a.clone().validate(z).await;
        let same = match (&one, &got) {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => x.to_string() == y.to_string(),
            _ => false,
        };
        ensure_case!(
            same,
            "validate_many disagrees for {a:?}: {got:?} vs {one:?}"
        );
    }
    Ok(())
}

//! Listing 1,000 filesystems × 20 snapshots issues exactly one `zfs list`.
//!
//! A stand-in `zfs` script prints a listing in the real `zfs list -Hp` format;
//! the invocation log of the real command wrapper counts what ran.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use zrelay_zfs::cmd::Runner;
use zrelay_zfs::parse::{parse_list, LIST_PROPS};
use zrelay_zfs::{DatasetPath, RealZfs, Zfs};

fn listing(filesystems: usize, snaps: usize) -> String {
    let mut out = String::new();
    let mut txg = 1u64;
    let row = |out: &mut String, name: &str, kind: &str, guid: u64, txg: u64, userrefs: &str| {
        // name,type,guid,createtxg,creation,userrefs,receive_resume_token,zrepl:placeholder,encryption,encryptionroot,keystatus
        writeln!(
            out,
            "{name}\t{kind}\t{guid}\t{txg}\t{}\t{userrefs}\t-\t-\toff\t-\t-",
            1_700_000_000 + txg
        )
        .unwrap();
    };
    row(&mut out, "pool", "filesystem", 1, 1, "-");
    for f in 0..filesystems {
        let fs = format!("pool/fs {f}");
        txg += 1;
        row(&mut out, &fs, "filesystem", 1000 + f as u64, txg, "-");
        for s in 0..snaps {
            txg += 1;
            row(
                &mut out,
                &format!("{fs}@zrelay_{s}"),
                "snapshot",
                txg * 7919,
                txg,
                "0",
            );
        }
    }
    out
}

#[tokio::test]
async fn thousand_filesystems_twenty_snapshots_one_list_call() {
    assert!(
        LIST_PROPS.len() == 11,
        "update the fixture for the new LIST_PROPS"
    );
    let dir = std::env::temp_dir().join(format!("zrelay-list-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("listing.tsv");
    std::fs::write(&data, listing(1000, 20)).unwrap();
    let shim = dir.join("zfs");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n[ \"$1\" = list ] || exit 2\ncat '{}'\n",
            data.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();

    let zfs = RealZfs::with_runner(Runner::new(shim.to_string_lossy(), "zpool"));
    let listed = zfs
        .list(&DatasetPath::parse("pool").unwrap())
        .await
        .unwrap();
    assert_eq!(zfs.log().total(), 1, "exactly one zfs invocation");
    assert_eq!(zfs.log().per_verb().get("list"), Some(&1));
    assert_eq!(listed.len(), 1001);
    assert!(listed
        .iter()
        .filter(|d| d.path.depth() == 2)
        .all(|d| d.versions.len() == 20));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Not a timing assertion: prints how long parsing the 21,001-line listing takes.
#[test]
fn parse_time_report() {
    let text = listing(1000, 20);
    let start = Instant::now();
    let parsed = parse_list(&text).unwrap();
    let took = start.elapsed();
    assert_eq!(parsed.len(), 1001);
    eprintln!(
        "parse_list: 1,000 filesystems x 20 snapshots ({} bytes) in {took:?}",
        text.len()
    );
}

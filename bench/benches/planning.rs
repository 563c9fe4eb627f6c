//! Planning at scale (issue #16, item 6): 10,000 filesystems × 100
//! snapshots, as `zfs list -Hp` prints them, parsed and planned.
//!
//! - `parse+plan`: both sides' listings parsed from text (the receiver one
//!   snapshot behind on every filesystem), turned into listings, planned.
//! - `plan`: the planner alone on the same listings.
//!
//! `cargo bench -p zrelay-bench --bench planning` prints criterion's times,
//! then the peak RSS of the process (VmHWM), which holds both listings.
//! `ZRELAY_BENCH_FS` / `ZRELAY_BENCH_SNAPS` change the shape.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::fmt::Write as _;
use std::hint::black_box;
use zrelay_endpoint::{FsListing, FsVersion};
use zrelay_planner::{plan, InitialPolicy};
use zrelay_zfs::parse::list::{parse_list, LIST_PROPS};

fn shape() -> (usize, usize) {
    let get = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (
        get("ZRELAY_BENCH_FS", 10_000),
        get("ZRELAY_BENCH_SNAPS", 100),
    )
}

/// `zfs list` text of `root` with `fs` children of `snaps` snapshots each
/// (`skip_last`: the receiver, which lacks each filesystem's newest).
fn list_text(root: &str, fs: usize, snaps: usize, skip_last: bool) -> String {
    let mut out = String::with_capacity(fs * snaps * 120);
    let row = |out: &mut String, name: &str, ty: &str, guid: u64, txg: u64| {
        let _ = writeln!(
            out,
            "{name}\t{ty}\t{guid}\t{txg}\t{}\t0\t-\t-\toff\t-\t-",
            1_700_000_000 + txg
        );
    };
    row(&mut out, root, "filesystem", 1, 1);
    for f in 0..fs {
        let path = format!("{root}/group{}/fs{f}", f % 100);
        if f < 100 {
            row(
                &mut out,
                &format!("{root}/group{f}"),
                "filesystem",
                2 + f as u64,
                1,
            );
        }
        row(&mut out, &path, "filesystem", 1_000_000 + f as u64, 2);
        let n = if skip_last { snaps - 1 } else { snaps };
        for s in 0..n {
            let guid = ((f as u64) << 20) | s as u64 | 1 << 60;
            let name = format!("{path}@zrepl_{s:06}");
            row(&mut out, &name, "snapshot", guid, 10 + s as u64);
        }
    }
    out
}

/// Listings in the sender's namespace (the receiver's root stripped).
fn listings(text: &str, root: &str) -> Vec<FsListing> {
    parse_list(text)
        .expect("generated zfs list output parses")
        .into_iter()
        .filter_map(|d| {
            let rel = d.path.as_str().strip_prefix(root)?.strip_prefix('/')?;
            let path = zrelay_zfs::DatasetPath::parse(&format!("src/{rel}")).ok()?;
            let mut l = FsListing::new(path);
            l.versions = d.versions.iter().map(FsVersion::from).collect();
            Some(l)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    assert_eq!(LIST_PROPS.len(), 11, "the generated rows follow LIST_PROPS");
    let (fs, snaps) = shape();
    let sender_text = list_text("src", fs, snaps, false);
    let receiver_text = list_text("dst/sink/src", fs, snaps, true);
    let sender = listings(&sender_text, "src");
    let receiver = listings(&receiver_text, "dst/sink/src");
    let plans = plan(&sender, &receiver, InitialPolicy::MostRecent);
    let steps: usize = plans.iter().map(|p| p.steps().len()).sum();
    assert_eq!(steps, fs, "one incremental step per filesystem");

    let mut g = c.benchmark_group(format!("planning {fs} fs x {snaps} snapshots"));
    g.sample_size(10);
    g.bench_function("plan", |b| {
        b.iter(|| black_box(plan(&sender, &receiver, InitialPolicy::MostRecent)))
    });
    g.bench_function("parse+plan", |b| {
        b.iter_batched(
            || (),
            |()| {
                let s = listings(&sender_text, "src");
                let r = listings(&receiver_text, "dst/sink/src");
                black_box(plan(&s, &r, InitialPolicy::MostRecent))
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    println!(
        "planning {fs} fs x {snaps} snapshots: peak RSS {:.1} MiB (both listings as text and parsed)",
        zrelay_bench::proc_status_kib("VmHWM:") as f64 / 1024.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

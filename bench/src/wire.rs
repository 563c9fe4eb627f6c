//! `wire`: zstd on the wire through a rate-limited link.
//!
//! `bench/wire` runs this inside a private network namespace whose loopback
//! it shapes with `tc` (100 Mbit/s by default; `netem` adds the delay where
//! the kernel has it). One producing process writes a stream of compressible
//! text or of incompressible noise; it goes through zrelay's real path — a
//! `Sender`'s stream, the protocol's data frames (`RemoteReceiver` →
//! `serve_conn`), the tcp transport over the shaped loopback — into a
//! consuming process that checks the count. Each kind of data is sent raw
//! and with zstd at each level asked for, in one run.
//!
//! Reported per run: the stream's speed (raw MiB/s), its ratio to the raw
//! stream of the same data, and the CPU seconds per GiB of raw data that
//! zrelay's process spent, user and system (both ends of the protocol run in
//! it, so user time holds compression and decompression, system time the
//! tcp stack; the producer and consumer processes are not counted).

mod ends;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use zrelay_rpc::{Compression, RpcConfig};

use ends::{consume, free_port, stream_through, tcp_opts};

const MIB: f64 = 1024.0 * 1024.0;

/// zstd on the wire through a shaped link.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// MiB of raw data per run.
    #[arg(long, default_value_t = 192)]
    mib: u64,
    /// zstd levels to compare with the raw stream.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    levels: Vec<i32>,
    /// What the link is (printed; set by bench/wire).
    #[arg(long, default_value = "loopback, unshaped")]
    link: String,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Kind {
    /// Words from a small vocabulary with numbers: logs, source, text.
    Text,
    /// xorshift noise: encrypted or already compressed data.
    Noise,
}

#[derive(Subcommand)]
enum Role {
    /// Write BYTES of KIND to stdout.
    Produce {
        /// What kind of data.
        kind: Kind,
        /// How many bytes.
        bytes: u64,
    },
    /// Read stdin to EOF; fail unless exactly BYTES arrived.
    Consume {
        /// How many bytes are expected.
        bytes: u64,
    },
}

/// 4 MiB of the kind, repeated by the producer (the repeat is far beyond
/// zstd's window at the levels used, so it does not help compression).
fn block(kind: Kind) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let n = 4 << 20;
    match kind {
        Kind::Noise => (0..n).map(|_| (next() >> 24) as u8).collect(),
        Kind::Text => {
            const WORDS: &[&str] = &[
                "the",
                "pool",
                "snapshot",
                "send",
                "receive",
                "error",
                "INFO",
                "WARN",
                "job",
                "filesystem",
                "bookmark",
                "step",
                "replication",
                "=",
                "{",
                "}",
                "\n",
                "fn",
                "let",
                "return",
                "value",
                "data",
                "guid",
                "txg",
                "hold",
                "release",
                "cursor",
                "2026-12-07T10:",
                "user",
                "path",
                "/var/log/",
                "ok",
                "failed",
                "retry",
            ];
            let mut v = Vec::with_capacity(n + 32);
            while v.len() < n {
                let r = next();
                v.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
                if r >> 60 == 0 {
                    v.extend_from_slice(format!("{}", (r >> 20) % 100_000).as_bytes());
                }
                v.push(b' ');
            }
            v.truncate(n);
            v
        }
    }
}

fn produce(kind: Kind, bytes: u64) -> Result<()> {
    let buf = block(kind);
    ends::write_repeated(&buf, bytes)
}

/// CPU seconds this process has used: user (compression runs here) and
/// system (the kernel's tcp stack, pipes).
fn cpu_seconds() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok((f[11].parse::<f64>()? / 100.0, f[12].parse::<f64>()? / 100.0))
}

struct Run {
    mib_s: f64,
    /// CPU seconds per GiB of raw data: user, system.
    user: f64,
    sys: f64,
}

/// One stream of `bytes` of `kind` through tcp with `compression`.
async fn run(
    exe: &std::path::Path,
    kind: Kind,
    bytes: u64,
    compression: Compression,
) -> Result<Run> {
    let (serve, connect) = tcp_opts(free_port()?);
    let produce = [format!("{kind:?}").to_lowercase(), bytes.to_string()];
    let cfg = RpcConfig {
        compression,
        ..RpcConfig::default()
    };
    let cpu0 = cpu_seconds()?;
    let secs = stream_through(exe, &produce, bytes, (&serve, &connect), cfg).await?;
    let cpu = cpu_seconds()?;
    let gib = bytes as f64 / MIB / 1024.0;
    Ok(Run {
        mib_s: bytes as f64 / MIB / secs,
        user: (cpu.0 - cpu0.0) / gib,
        sys: (cpu.1 - cpu0.1) / gib,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Produce { kind, bytes }) => return produce(kind, bytes),
        Some(Role::Consume { bytes }) => return consume(bytes),
        None => {}
    }
    if args.mib == 0 {
        bail!("--mib must be positive");
    }
    let exe = std::env::current_exe()?;
    let bytes = args.mib << 20;
    println!(
        "wire: {} MiB per run over tcp; link: {}; {} CPUs",
        args.mib,
        args.link,
        std::thread::available_parallelism()?.get()
    );
    println!("| data | compression | MiB/s (raw data) | × raw stream | zrelay CPU s per GiB: user + system |");
    println!("|---|---|---|---|---|");
    for kind in [Kind::Text, Kind::Noise] {
        let off = run(&exe, kind, bytes, Compression::Off).await?;
        let name = format!("{kind:?}").to_lowercase();
        println!(
            "| {name} | off | {:.1} | 1.00 | {:.2} + {:.2} |",
            off.mib_s, off.user, off.sys
        );
        for &level in &args.levels {
            let z = run(&exe, kind, bytes, Compression::Zstd { level }).await?;
            println!(
                "| {name} | zstd {level} | {:.1} | {:.2} | {:.2} + {:.2} |",
                z.mib_s,
                z.mib_s / off.mib_s,
                z.user,
                z.sys
            );
        }
    }
    Ok(())
}

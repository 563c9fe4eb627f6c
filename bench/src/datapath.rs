//! `datapath`: zrelay's data path against its ceilings, in one run.
//!
//! A producing process writes N GiB to its stdout; a consuming process reads
//! them from its stdin and checks the count. Measured, in one process tree on
//! loopback:
//! - (B) the producer piped straight into the consumer: the pipe ceiling;
//! - (A) iperf3 over loopback for the same number of bytes: the TCP ceiling;
//! - the producer's stream through zrelay's real path — a `Sender`'s stream,
//!   the protocol's data frames (`RemoteReceiver` → `serve_conn`), the tcp or
//!   tls transport, and the receiving side's pump into the consumer.
//!
//! It prints, for tcp and tls, the headline `stream tcp: R of iperf3 (lo–hi);
//! X MiB/s (lo–hi)`: the median over the rounds of each round's ratio to that
//! round's iperf3, with the spread, then the speed. The pipe is printed for
//! reference only: on a 2-core machine it swings with where its two
//! processes run. Build with `--release`.

mod ends;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use zrelay_rpc::RpcConfig;
use zrelay_transport::{ConnectOptions, ServeOptions};

use ends::{consume, free_port, stream_through, tcp_opts};

const MIB: f64 = 1024.0 * 1024.0;

/// zrelay's data-path benchmark.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// GiB streamed per measurement.
    #[arg(long, default_value_t = 2.0)]
    gib: f64,
    /// Measurements of each kind; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Subcommand)]
enum Role {
    /// Write BYTES of incompressible data to stdout.
    Produce {
        /// How many bytes.
        bytes: u64,
    },
    /// Read stdin to EOF; fail unless exactly BYTES arrived.
    Consume {
        /// How many bytes are expected.
        bytes: u64,
    },
}

fn produce(bytes: u64) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for c in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    ends::write_repeated(&buf, bytes)
}

/// (B): producer | consumer.
fn pipe_baseline(exe: &std::path::Path, bytes: u64) -> Result<f64> {
    let started = Instant::now();
    let mut p = std::process::Command::new(exe)
        .args(["produce", &bytes.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let out = p.stdout.take().expect("piped");
    let c = std::process::Command::new(exe)
        .args(["consume", &bytes.to_string()])
        .stdin(out)
        .status()?;
    let ps = p.wait()?;
    ensure!(c.success() && ps.success(), "pipe baseline failed");
    Ok(bytes as f64 / MIB / started.elapsed().as_secs_f64())
}

/// (A): iperf3 over loopback, `bytes` from client to server.
fn iperf3_baseline(bytes: u64) -> Result<f64> {
    let port = free_port()?;
    let mut server = std::process::Command::new("iperf3")
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("iperf3 is missing: apt-get install iperf3")?;
    std::thread::sleep(Duration::from_millis(500));
    let out = std::process::Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-n",
            &bytes.to_string(),
            "-J",
        ])
        .output()?;
    let _ = server.wait();
    ensure!(
        out.status.success(),
        "iperf3 client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON without end.sum_received.bits_per_second")?;
    Ok(bps / 8.0 / MIB)
}

/// Generate a CA, a server certificate (CN/SAN `bench-server`) and a client
/// certificate (CN `bench-client`) into `dir`.
fn write_pki(dir: &std::path::Path) -> Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    for name in ["bench-server", "bench-client"] {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![name.to_string()])?;
        p.distinguished_name.push(DnType::CommonName, name);
        std::fs::write(
            dir.join(format!("{name}.pem")),
            p.signed_by(&key, &issuer)?.pem(),
        )?;
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
    }
    Ok(())
}

/// zrelay's path over `serve`/`connect`: MiB/s.
async fn zrelay_path(
    exe: &std::path::Path,
    bytes: u64,
    serve: ServeOptions,
    connect: ConnectOptions,
) -> Result<f64> {
    let secs = stream_through(
        exe,
        &[bytes.to_string()],
        bytes,
        (&serve, &connect),
        RpcConfig::default(),
    )
    .await?;
    Ok(bytes as f64 / MIB / secs)
}

fn tls_opts(dir: &std::path::Path, port: u16) -> (ServeOptions, ConnectOptions) {
    (
        ServeOptions::Tls {
            listen: format!("127.0.0.1:{port}"),
            listen_freebind: false,
            ca: dir.join("ca.pem"),
            cert: dir.join("bench-server.pem"),
            key: dir.join("bench-server.key"),
            client_cns: vec!["bench-client".into()],
            handshake_timeout: Duration::from_secs(10),
        },
        ConnectOptions::Tls {
            address: format!("127.0.0.1:{port}"),
            ca: dir.join("ca.pem"),
            cert: dir.join("bench-client.pem"),
            key: dir.join("bench-client.key"),
            server_cn: "bench-server".into(),
            dial_timeout: Duration::from_secs(10),
        },
    )
}

/// The median of `v` with its spread (min, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// One path's line: its speed (median and spread) and, the headline, its
/// ratio to iperf3 in the same round (median and spread).
fn line(name: &str, x: &[f64], iperf3: &[f64]) -> String {
    let ratios: Vec<f64> = x.iter().zip(iperf3).map(|(x, a)| x / a).collect();
    let (m, lo, hi) = spread(x);
    let (r, rlo, rhi) = spread(&ratios);
    format!("stream {name}: {r:.2} of iperf3 ({rlo:.2}–{rhi:.2}); {m:.0} MiB/s ({lo:.0}–{hi:.0})")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Produce { bytes }) => return produce(bytes),
        Some(Role::Consume { bytes }) => return consume(bytes),
        None => {}
    }
    if args.gib <= 0.0 {
        bail!("--gib must be positive");
    }
    let exe = std::env::current_exe()?;
    let bytes = (args.gib * 1024.0 * MIB) as u64;
    println!(
        "datapath: {:.2} GiB per measurement, {} CPUs",
        args.gib,
        std::thread::available_parallelism()?.get()
    );
    let dir = std::env::temp_dir().join(format!("zrelay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    write_pki(&dir)?;
    let (mut a, mut b, mut tcp, mut tls) = (vec![], vec![], vec![], vec![]);
    for round in 1..=args.repeat.max(1) {
        b.push(pipe_baseline(&exe, bytes)?);
        a.push(iperf3_baseline(bytes)?);
        let (serve, connect) = tcp_opts(free_port()?);
        tcp.push(
            zrelay_path(&exe, bytes, serve, connect)
                .await
                .context("tcp path")?,
        );
        let (serve, connect) = tls_opts(&dir, free_port()?);
        tls.push(
            zrelay_path(&exe, bytes, serve, connect)
                .await
                .context("tls path")?,
        );
        println!(
            "round {round}: pipe {:.0}, iperf3 {:.0}, tcp {:.0}, tls {:.0} MiB/s",
            b[round - 1],
            a[round - 1],
            tcp[round - 1],
            tls[round - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ((am, alo, ahi), (bm, blo, bhi)) = (spread(&a), spread(&b));
    println!("(A) iperf3 over loopback: {am:.0} MiB/s ({alo:.0}–{ahi:.0})");
    println!(
        "(B) pipe, producer | consumer: {bm:.0} MiB/s ({blo:.0}–{bhi:.0}); \
         not a ceiling: it swings with where the two processes run"
    );
    println!("{}", line("tcp", &tcp, &a));
    println!("{}", line("tls", &tls, &a));
    Ok(())
}

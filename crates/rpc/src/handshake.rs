//! The hello exchange that opens every connection. Its layout never changes
//! across protocol versions, so that peers of different versions can always
//! tell each other which version they speak.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zrelay_transport::Conn;

use crate::error::{show_bytes, RpcError};
use crate::{RpcConfig, MAGIC, PROTOCOL_VERSION, SOFTWARE_VERSION};

/// Longest software version a hello may carry.
const MAX_SOFTWARE_VERSION: usize = 256;

/// What a peer's hello said.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub(crate) protocol_version: u32,
    /// As [`zrelay_zfs::peer_text`] shows it: escaped, at most 256 bytes of input.
    pub(crate) software_version: String,
}

/// Our hello.
fn encode() -> Vec<u8> {
    let sw = &SOFTWARE_VERSION.as_bytes()[..SOFTWARE_VERSION.len().min(MAX_SOFTWARE_VERSION)];
    let mut buf = Vec::with_capacity(MAGIC.len() + 6 + sw.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    buf.extend_from_slice(&(sw.len() as u16).to_be_bytes());
    buf.extend_from_slice(sw);
    buf
}

fn eof_or(e: std::io::Error, what: &str) -> RpcError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        RpcError::Closed(format!("during the handshake ({what})"))
    } else {
        RpcError::io(format!("handshake: {what}"), e)
    }
}

/// Read the peer's hello, checking its magic.
async fn read(conn: &mut Conn) -> Result<Hello, RpcError> {
    let mut magic = [0u8; MAGIC.len()];
    let mut got = 0;
    while got < magic.len() {
        let n = conn
            .read(&mut magic[got..])
            .await
            .map_err(|e| eof_or(e, "reading the hello"))?;
        if n == 0 {
            if got == 0 {
                return Err(RpcError::Closed(
                    "instead of sending the zrelay hello".into(),
                ));
            }
            return Err(RpcError::NotZrelay {
                received: show_bytes(&magic[..got], MAGIC.len()),
            });
        }
        if magic[got..got + n] != MAGIC[got..got + n] {
            return Err(RpcError::NotZrelay {
                received: show_bytes(&magic[..got + n], MAGIC.len()),
            });
        }
        got += n;
    }
    let mut fixed = [0u8; 6];
    conn.read_exact(&mut fixed)
        .await
        .map_err(|e| eof_or(e, "reading the hello"))?;
    let protocol_version = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    let len = u16::from_be_bytes([fixed[4], fixed[5]]) as usize;
    if len > MAX_SOFTWARE_VERSION {
        return Err(RpcError::TooLarge {
            what: "software version in the hello",
            size: len as u64,
            limit: MAX_SOFTWARE_VERSION as u64,
        });
    }
    let mut sw = vec![0u8; len];
    conn.read_exact(&mut sw)
        .await
        .map_err(|e| eof_or(e, "reading the hello"))?;
    Ok(Hello {
        protocol_version,
        // Peer text: kept only as shown (escaped onto one line), so that no log line,
        // error or status can carry the peer's raw bytes.
        software_version: zrelay_zfs::peer_text::show_bytes(&sw, MAX_SOFTWARE_VERSION),
    })
}

async fn write(conn: &mut Conn) -> Result<(), RpcError> {
    conn.write_all(&encode())
        .await
        .map_err(|e| eof_or(e, "sending the hello"))?;
    conn.flush()
        .await
        .map_err(|e| eof_or(e, "sending the hello"))
}

fn check(peer: &Hello) -> Result<(), RpcError> {
    if peer.protocol_version != PROTOCOL_VERSION {
        return Err(RpcError::VersionMismatch {
            peer: peer.protocol_version,
            ours: PROTOCOL_VERSION,
            peer_software: peer.software_version.clone(),
            ours_software: SOFTWARE_VERSION.to_string(),
        });
    }
    Ok(())
}

async fn timed<T>(
    cfg: &RpcConfig,
    what: &str,
    f: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    tokio::time::timeout(cfg.handshake_timeout, f)
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::Timeout {
                what: format!("handshake: waiting for the {what}'s hello"),
                after: cfg.handshake_timeout,
            })
        })
}

/// The client's side: send our hello, read and check the server's.
pub(crate) async fn client(conn: &mut Conn, cfg: &RpcConfig) -> Result<Hello, RpcError> {
    timed(cfg, "server", async {
        write(conn).await?;
        let hello = read(conn).await?;
        check(&hello)?;
        Ok(hello)
    })
    .await
}

/// The server's side: read the client's hello, answer with ours (even on a
/// version mismatch, so that the client can say what is wrong), check it.
pub(crate) async fn server(conn: &mut Conn, cfg: &RpcConfig) -> Result<Hello, RpcError> {
    timed(cfg, "client", async {
        let hello = read(conn).await?;
        write(conn).await?;
        check(&hello)?;
        Ok(hello)
    })
    .await
}

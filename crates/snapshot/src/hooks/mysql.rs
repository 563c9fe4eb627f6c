//! The `mysql-lock-tables` hook (zrepl's
//! `daemon/hooks/hook_type_mysql_lock_tables.go`): `FLUSH TABLES WITH READ
//! LOCK` before the snapshot on a session that stays open, `UNLOCK TABLES`
//! on it after (MySQL's "Making Backups Using a File System Snapshot").
//!
//! Client: `mysql_async` with `minimal-rust` features (pure-Rust zlib, no
//! TLS, no OpenSSL or cmake). The DSN is go-sql-driver/mysql's, which zrepl
//! passes to `mysql.ParseDSN`:
//! `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`, e.g.
//! `root@tcp(localhost)/`, `backup:secret@tcp(10.0.0.5:3307)/app`,
//! `root@unix(/run/mysqld/mysqld.sock)/`. Defaults as there: `tcp` on
//! `127.0.0.1:3306`, `unix` on `/tmp/mysql.sock`, port 3306 when the
//! address has none. Parameters are ignored except `tls`: any value other
//! than `false` or `preferred` is refused, since no TLS is built in. A
//! `mysql://` URL (`mysql_async`'s own syntax) is accepted too.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use tracing::{debug, info};

use super::{error_chain, DsnError, HookCtx, HookError};

/// A session holding `FLUSH TABLES WITH READ LOCK`.
pub struct Locked(Conn);

impl std::fmt::Debug for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Locked").field(&self.0.id()).finish()
    }
}

/// Where a parsed DSN connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlAddr {
    /// `tcp(host:port)`.
    Tcp {
        /// Host name or IP address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `unix(/path)`.
    Unix(String),
}

/// A go-sql-driver DSN, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlDsn {
    /// User (may be empty).
    pub user: String,
    /// Password, if given.
    pub password: Option<String>,
    /// Address.
    pub addr: MysqlAddr,
    /// Database (may be empty).
    pub db: String,
}

/// Parse a go-sql-driver DSN (see the module docs); `mysql://` URLs are
/// checked by `mysql_async`.
pub fn parse_dsn(dsn: &str) -> Result<Opts, HookError> {
    if dsn.starts_with("mysql://") {
        return Opts::from_url(dsn).map_err(HookError::MysqlUrl);
    }
    let d = parse_go_dsn(dsn)?;
    let b = OptsBuilder::default()
        .user((!d.user.is_empty()).then_some(d.user))
        .pass(d.password)
        .db_name((!d.db.is_empty()).then_some(d.db))
        .prefer_socket(false);
    Ok(match d.addr {
        MysqlAddr::Tcp { host, port } => b.ip_or_hostname(host).tcp_port(port),
        MysqlAddr::Unix(path) => b.socket(Some(path)),
    }
    .into())
}

/// go-sql-driver's `ParseDSN`, for the parts zrelay uses.
pub fn parse_go_dsn(dsn: &str) -> Result<MysqlDsn, DsnError> {
    // The last '/' separates the address part from the database.
    let slash = dsn.rfind('/').ok_or(DsnError::NoSlash)?;
    let (left, right) = (&dsn[..slash], &dsn[slash + 1..]);
    let (db, params) = right.split_once('?').unwrap_or((right, ""));
    let (cred, netaddr) = match left.rfind('@') {
        Some(at) => (Some(&left[..at]), &left[at + 1..]),
        None => (None, left),
    };
    let (user, password) = match cred {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (c.to_string(), None),
        },
        None => (String::new(), None),
    };
    let (net, addr) = match netaddr.find('(') {
        Some(open) => {
            let Some(inner) = netaddr[open + 1..].strip_suffix(')') else {
                return Err(DsnError::Unterminated);
            };
            (&netaddr[..open], inner)
        }
        None => (netaddr, ""),
    };
    let addr = match net {
        "" | "tcp" => tcp_addr(if addr.is_empty() {
            "127.0.0.1:3306"
        } else {
            addr
        })?,
        "unix" => MysqlAddr::Unix(
            if addr.is_empty() {
                "/tmp/mysql.sock"
            } else {
                addr
            }
            .into(),
        ),
        other => return Err(DsnError::Network(other.to_string())),
    };
    for kv in params.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| DsnError::Parameter(kv.to_string()))?;
        match (k, v) {
            ("tls", "false" | "preferred") => {}
            ("tls", v) => return Err(DsnError::Tls(v.to_string())),
            _ => debug!(param = k, "ignoring mysql DSN parameter"),
        }
    }
    Ok(MysqlDsn {
        user,
        password,
        addr,
        db: db.to_string(),
    })
}

fn tcp_addr(addr: &str) -> Result<MysqlAddr, DsnError> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or(DsnError::UnterminatedBracket)?;
        (h, tail.strip_prefix(':'))
    } else if addr.matches(':').count() > 1 {
        (addr, None) // a bare IPv6 address
    } else {
        match addr.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None => 3306,
        Some(p) => p.parse().map_err(|_| DsnError::Port(addr.to_string()))?,
    };
    Ok(MysqlAddr::Tcp {
        host: host.to_string(),
        port,
    })
}

async fn with_timeout<T>(
    what: &'static str,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, HookError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(HookError::Mysql {
            what,
            reason: error_chain(&e),
        }),
        Err(_) => Err(HookError::MysqlTimeout { what, timeout }),
    }
}

/// Connect and `FLUSH TABLES WITH READ LOCK` (a dry run only connects).
pub(super) async fn lock(
    dsn: &str,
    timeout: Duration,
    ctx: &HookCtx<'_>,
) -> Result<Locked, HookError> {
    let opts = parse_dsn(dsn)?;
    const WHAT: &str = "FLUSH TABLES WITH READ LOCK";
    let mut conn = with_timeout(WHAT, timeout, Conn::new(opts)).await?;
    if !ctx.dry_run {
        info!(job = ctx.job, fs = %ctx.fs, "do FLUSH TABLES WITH READ LOCK");
        if let Err(e) = with_timeout(WHAT, timeout, conn.query_drop(WHAT)).await {
            let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
            return Err(e);
        }
    }
    Ok(Locked(conn))
}

/// `UNLOCK TABLES` on the locking session, and close it.
pub(super) async fn unlock(
    l: Locked,
    timeout: Duration,
    ctx: &HookCtx<'_>,
) -> Result<(), HookError> {
    let mut conn = l.0;
    info!(job = ctx.job, fs = %ctx.fs, "do UNLOCK TABLES");
    let r = with_timeout("UNLOCK TABLES", timeout, conn.query_drop("UNLOCK TABLES")).await;
    // Closing the session releases the lock in any case.
    let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> MysqlAddr {
        MysqlAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn go_dsns() {
        let table = [
            (
                "root@tcp(localhost)/",
                "root",
                None,
                tcp("localhost", 3306),
                "",
            ),
            (
                "backup:se:cr@et@tcp(10.0.0.5:3307)/app?timeout=5s&tls=false",
                "backup",
                Some("se:cr@et"),
                tcp("10.0.0.5", 3307),
                "app",
            ),
            (
                "u@unix(/run/mysqld/mysqld.sock)/db",
                "u",
                None,
                MysqlAddr::Unix("/run/mysqld/mysqld.sock".into()),
                "db",
            ),
            ("/", "", None, tcp("127.0.0.1", 3306), ""),
            (
                "u@unix/",
                "u",
                None,
                MysqlAddr::Unix("/tmp/mysql.sock".into()),
                "",
            ),
            ("u@tcp([::1]:3310)/x", "u", None, tcp("::1", 3310), "x"),
            ("u:p/w@tcp(h)/d", "u", Some("p/w"), tcp("h", 3306), "d"),
        ];
        for (dsn, user, pass, addr, db) in table {
            let d = parse_go_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
            let want = MysqlDsn {
                user: user.into(),
                password: pass.map(Into::into),
                addr,
                db: db.into(),
            };
            assert_eq!(d, want, "{dsn}");
        }
    }

    #[test]
    fn bad_dsns() {
        for (dsn, why) in [
            ("root@localhost", "slash"),
            ("root@tcp(localhost/", "closing brace"),
            ("root@udp(x)/", "unsupported network"),
            ("root@tcp(h:port)/", "invalid port"),
            ("root@tcp(h)/?tls=true", "not supported"),
            ("root@tcp(h)/?novalue", "invalid DSN parameter"),
        ] {
            let e = parse_go_dsn(dsn).unwrap_err().to_string();
            assert!(e.contains(why), "{dsn}: {e}");
        }
        assert!(parse_dsn("mysql://root@localhost:3306/db").is_ok());
    }
}

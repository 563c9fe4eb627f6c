//! Throwaway database servers for the hook tests, each in its own temporary
//! directory and reachable only through a unix socket there:
//! - PostgreSQL (Debian package `postgresql`): `initdb` + `pg_ctl`, run as
//!   the `postgres` user through `runuser` when the tests run as root.
//! - MariaDB (Debian package `mariadb-server`): `mariadb-install-db` +
//!   `mariadbd --skip-grant-tables --skip-networking`.
//!
//! `start()` returns `Ok(None)` only when the binaries are not installed;
//! every other problem is an error, so a broken setup fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The first of `names` found in `PATH` or in `dirs`.
fn find(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all: Vec<PathBuf> = std::env::split_paths(&path).collect();
    all.extend(dirs.iter().cloned());
    for n in names {
        for d in &all {
            let p = d.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Run `cmd`, turning a failure into an error with its output.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn id_of(user: &str, flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("no user {user:?} (id {flag} {user})"))
}

/// A PostgreSQL cluster, stopped on drop.
pub struct Postgres {
    dir: TempDir,
    data: PathBuf,
    /// The socket directory (the DSN's `host`).
    pub sockdir: PathBuf,
    bindir: PathBuf,
    runas: Option<String>,
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        command_as(&self.runas, &self.bindir.join(program))
    }

    /// initdb and start a cluster, or `None` when PostgreSQL is not installed.
    pub fn start() -> Result<Option<Postgres>, String> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        dirs.sort_by_key(|d| {
            let v = d
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string());
            std::cmp::Reverse(v.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0))
        });
        let Some(pg_ctl) = find(&["pg_ctl"], &dirs) else {
            return Ok(None);
        };
        let pg_ctl = std::fs::canonicalize(&pg_ctl).map_err(|e| e.to_string())?;
        let bindir = pg_ctl.parent().unwrap().to_path_buf();
        if !bindir.join("initdb").is_file() {
            return Ok(None);
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let runas = is_root().then(|| "postgres".to_string());
        let sockdir = dir.path().join("sock");
        std::fs::create_dir(&sockdir).map_err(|e| e.to_string())?;
        if let Some(u) = &runas {
            let (uid, gid) = (id_of(u, "-u")?, id_of(u, "-g")?);
            for p in [dir.path(), sockdir.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
        }
        let pg = Postgres {
            data: dir.path().join("data"),
            sockdir,
            dir,
            bindir,
            runas,
        };
        run(pg.command("initdb").arg("-D").arg(&pg.data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        let opts = format!(
            "-k {} -c listen_addresses='' -p 5432 -c fsync=off",
            pg.sockdir.display()
        );
        run(pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .arg("-l")
            .arg(pg.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]))?;
        Ok(Some(pg))
    }

    /// A lib/pq DSN for `user` over the socket.
    pub fn dsn(&self, user: &str) -> String {
        format!(
            "host={} port=5432 user={user} dbname=postgres sslmode=disable",
            self.sockdir.display()
        )
    }

    /// The server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(self.command("pg_ctl").arg("-D").arg(&self.data).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }
}

fn command_as(runas: &Option<String>, program: &Path) -> Command {
    match runas {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A MariaDB server, stopped on drop.
pub struct Mariadb {
    dir: TempDir,
    child: Child,
    /// The server's socket.
    pub socket: PathBuf,
}

impl Mariadb {
    /// Install a data directory and start a server, or `None` when MariaDB
    /// (or MySQL) is not installed.
    pub async fn start() -> Result<Option<Mariadb>, String> {
        let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
        let (Some(install), Some(server)) = (
            find(&["mariadb-install-db", "mysql_install_db"], &sbin),
            find(&["mariadbd", "mysqld"], &sbin),
        ) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let user = if is_root() {
            "root".to_string()
        } else {
            let out = Command::new("id")
                .arg("-un")
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]))?;
        let socket = dir.path().join("mysqld.sock");
        let child = Command::new(&server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg(format!("--user={user}"))
            .args([
                "--skip-networking",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
        let db = Mariadb { dir, child, socket };
        let opts =
            zrelay_snapshot::hooks::mysql::parse_dsn(&db.dsn()).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if db.socket.exists() {
                if let Ok(c) = mysql_async::Conn::new(opts.clone()).await {
                    let _ = c.disconnect().await;
                    return Ok(Some(db));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("mariadbd did not come up:\n{}", db.log()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A go-sql-driver DSN for root over the socket.
    pub fn dsn(&self) -> String {
        format!("root@unix({})/", self.socket.display())
    }

    /// The error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Print a loud skip message.
pub fn skipped(what: &str, package: &str) {
    eprintln!(
        "\n!!!!!!!!!! SKIPPED: {what} is not installed; install the Debian package `{package}` to run this test !!!!!!!!!!\n"
    );
}

//! Command line parsing: zrepl's spellings (global `--config` in either
//! position, `configcheck --skip-cert-check`, `gencompletion SHELL [PATH]`,
//! `zfs-abstraction create step`, `migrate`), and the environment knobs
//! reaching the replication driver.

use std::path::Path;

use clap::Parser;

use crate::{Cli, Command};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("zrelay").chain(args.iter().copied()))
}

fn config_of(args: &[&str]) -> Option<std::path::PathBuf> {
    parse(args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .config
        .config
}

#[test]
fn config_is_global_before_or_after_the_subcommand() {
    let want = Some(Path::new("/x/zrepl.yml").to_path_buf());
    for args in [
        &["--config", "/x/zrepl.yml", "status"][..],
        &["status", "--config", "/x/zrepl.yml"],
        &["status", "--config=/x/zrepl.yml", "--mode", "raw"],
        &["--config", "/x/zrepl.yml", "daemon"],
        &["daemon", "--config", "/x/zrepl.yml"],
        &["--config", "/x/zrepl.yml", "signal", "wakeup", "j"],
        &["signal", "wakeup", "j", "--config", "/x/zrepl.yml"],
        &["--config", "/x/zrepl.yml", "configcheck"],
        &["configcheck", "--config", "/x/zrepl.yml"],
        &["prune", "j", "--config", "/x/zrepl.yml"],
        &["--config", "/x/zrepl.yml", "history"],
        &["stdinserver", "client1", "--config", "/x/zrepl.yml"],
        &[
            "--config",
            "/x/zrepl.yml",
            "migrate",
            "replication-cursor:v1-v2",
        ],
        // below a nested subcommand too
        &[
            "test",
            "filesystems",
            "--job",
            "j",
            "--all",
            "--config",
            "/x/zrepl.yml",
        ],
        &[
            "--config",
            "/x/zrepl.yml",
            "test",
            "filesystems",
            "--job",
            "j",
            "--all",
        ],
    ] {
        assert_eq!(config_of(args), want, "{args:?}");
    }
    assert_eq!(config_of(&["status"]), None);
    // Given twice: the last wins, as with zrepl's (cobra) flag.
    assert_eq!(
        config_of(&["--config", "/a", "status", "--config", "/b"]),
        Some(Path::new("/b").to_path_buf())
    );
}

#[test]
fn status_accepts_zrepls_delay_spelling() {
    for args in [
        &["status", "--delay", "3s"][..],
        &["status", "-d", "3s"],
        &["status", "--watch", "3"],
    ] {
        let Command::Status(a) = parse(args).unwrap().command else {
            panic!("not status")
        };
        assert_eq!(a.watch, Some(std::time::Duration::from_secs(3)), "{args:?}");
    }
}

#[test]
fn configcheck_accepts_skip_cert_check() {
    let cli = parse(&["configcheck", "--skip-cert-check", "--format", "yaml"]).unwrap();
    let Command::Configcheck(a) = cli.command else {
        panic!("not configcheck")
    };
    assert!(a.skip_cert_check);
    let Command::Configcheck(a) = parse(&["configcheck"]).unwrap().command else {
        panic!("not configcheck")
    };
    assert!(!a.skip_cert_check);
}

#[test]
fn gencompletion_takes_an_optional_path() {
    let Command::Gencompletion(a) = parse(&["gencompletion", "zsh", "/tmp/_zrelay"])
        .unwrap()
        .command
    else {
        panic!("not gencompletion")
    };
    assert_eq!(a.path.as_deref(), Some(Path::new("/tmp/_zrelay")));
    assert!(matches!(a.shell, crate::gen::Shell::Zsh));
    let Command::Gencompletion(a) = parse(&["gencompletion", "bash"]).unwrap().command else {
        panic!("not gencompletion")
    };
    assert_eq!(a.path, None);
    assert!(parse(&["gencompletion", "tcsh"]).is_err());
}

#[test]
fn zfs_abstraction_create_step_takes_zrepls_flags() {
    for args in [
        &[
            "zfs-abstraction",
            "create",
            "step",
            "-t",
            "p/a@s1",
            "-j",
            "job1",
        ][..],
        &[
            "zfs-abstraction",
            "create",
            "step",
            "--target",
            "p/a@s1",
            "--jobid",
            "job1",
        ],
    ] {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(matches!(cli.command, Command::ZfsAbstraction(_)));
    }
    // Both flags are required.
    assert!(parse(&["zfs-abstraction", "create", "step", "-t", "p/a@s1"]).is_err());
    assert!(parse(&["zfs-abstraction", "create", "step", "-j", "job1"]).is_err());
}

#[test]
fn migrate_spellings() {
    for args in [
        &["migrate", "replication-cursor:v1-v2"][..],
        &["migrate", "replication-cursor:v1-v2", "--dry-run"],
        &["migrate", "0.0.X:0.1:placeholder"],
        &["migrate", "0.0.X:0.1-placeholder", "--dry-run"],
    ] {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(matches!(cli.command, Command::Migrate(_)), "{args:?}");
    }
    assert!(parse(&["migrate", "replication-cursor:v2-v3"]).is_err());
    assert!(parse(&["migrate", "replication-cursor:v1-v2", "--force"]).is_err());
}

/// `ZREPL_REPLICATION_MAX_ATTEMPTS` reaches the driver of push and pull
/// jobs, through the configuration, as the daemon builds it.
#[test]
fn max_attempts_knob_reaches_the_driver_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    for sample in ["push.yml", "pull.yml"] {
        let mut config = zrelay_config::load(&dir.join(sample)).unwrap();
        let knobs = zrelay_config::Knobs::from_env(|k| {
            (k == "ZREPL_REPLICATION_MAX_ATTEMPTS").then(|| "7".to_string())
        })
        .unwrap();
        let repl = |c: &zrelay_config::Config| match &c.jobs[0].kind {
            zrelay_config::JobKind::Push(p) => p.replication.clone(),
            zrelay_config::JobKind::Pull(p) => p.replication.clone(),
            _ => panic!("{sample}: not push or pull"),
        };
        assert_eq!(zrelay_daemon::driver_config(&repl(&config)).max_attempts, 3);
        config.set_knobs(knobs);
        assert_eq!(config.global.knobs, knobs);
        assert_eq!(
            zrelay_daemon::driver_config(&repl(&config)).max_attempts,
            7,
            "{sample}"
        );
    }
}

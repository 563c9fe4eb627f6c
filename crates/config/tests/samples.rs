//! Every sample in `samples/` parses (with spot checks) and renders back to
//! the same configuration; every sample in `samples/invalid/` is rejected
//! with the message its `# expect:` line names, and the message names the
//! file and a line.

use std::path::Path;
use std::time::Duration;

use zrelay_config::*;
use zrelay_endpoint::{Guarantee, PlaceholderEncryption};
use zrelay_planner::InitialPolicy;
use zrelay_transport::{ConnectOptions, ServeOptions};

mod common;
use common::{samples_dir, yml_files};

fn load_sample(name: &str) -> Config {
    let p = samples_dir().join(name);
    load(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn every_sample_parses_and_round_trips() {
    let files = yml_files(&samples_dir());
    assert!(files.len() >= 15, "{files:?}");
    for f in files {
        let c = load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let yaml = c.render(RenderFormat::Yaml, RenderWhat::All);
        let back = parse_str(&yaml, &f).unwrap_or_else(|e| {
            panic!("{}: rendered YAML does not parse: {e}\n{yaml}", f.display())
        });
        assert_eq!(back, c, "{}: round trip differs\n{yaml}", f.display());
        let json = c.render(RenderFormat::Json, RenderWhat::Config);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["jobs"].as_array().unwrap().len(), c.jobs.len());
        let jobs = c.render(RenderFormat::Yaml, RenderWhat::Jobs);
        assert_eq!(
            parse_str(&jobs, &f).unwrap().jobs,
            c.jobs,
            "{}",
            f.display()
        );
        assert!(c
            .render(RenderFormat::Pretty, RenderWhat::Logging)
            .contains("LogOutlet"));
    }
}

#[test]
fn every_invalid_sample_fails_as_expected() {
    let dir = samples_dir().join("invalid");
    let files = yml_files(&dir);
    assert!(files.len() >= 30, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", f.display()));
        let named = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# file: "))
            .map(|n| dir.join(n))
            .unwrap_or_else(|| f.clone());
        let err = match load(&f) {
            Ok(_) => panic!("{}: accepted, expected: {expect}", f.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(expect),
            "{}:\n  got: {err}\n  expected: {expect}",
            f.display()
        );
        let prefix = format!("{}:", named.display());
        let rest = err.strip_prefix(&prefix).unwrap_or_else(|| {
            panic!(
                "{}: the message does not start with the file: {err}",
                f.display()
            )
        });
        let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
        assert!(
            !line.is_empty() && line != "0",
            "{}: no line number: {err}",
            f.display()
        );
    }
}

#[test]
fn push_sample() {
    let c = load_sample("push.yml");
    assert_eq!(c.global.logging, default_logging());
    assert_eq!(
        c.global.control_sockpath,
        Path::new("/var/run/zrelay/control")
    );
    let JobKind::Push(p) = &c.job("prod_to_backups").unwrap().kind else {
        panic!()
    };
    assert!(
        matches!(p.to.single().unwrap(), ConnectOptions::Tcp { dial_timeout, .. } if *dial_timeout == secs(30))
    );
    let bw = p.send.bandwidth_limit.unwrap();
    assert_eq!(bw.max_bytes_per_sec, 24_641_536);
    assert_eq!(bw.bucket_capacity, 1 << 20);
    assert!(p.send.options.flags.compressed && p.send.options.flags.large_blocks);
    let Snapshotting::Periodic {
        prefix,
        interval,
        timestamp_format,
        timestamp_location,
        ..
    } = &*p.snapshotting
    else {
        panic!()
    };
    assert_eq!((prefix.as_str(), *interval), ("zrepl_", secs(600)));
    assert_eq!(*timestamp_format, TimestampFormat::Dense);
    assert_eq!(timestamp_location, "UTC");
    let KeepRule::Grid { intervals, regex } = &p.pruning.keep_receiver[0] else {
        panic!()
    };
    assert_eq!(regex, "^zrepl_");
    assert_eq!(intervals.len(), 4);
    assert_eq!(intervals[0].keep, None);
    assert_eq!(
        (intervals[3].count, intervals[3].length),
        (6, secs(30 * 86400))
    );
    assert_eq!(
        (p.replication.steps, p.replication.size_estimates),
        (2, Some(8))
    );
    assert_eq!(
        p.replication.protection.incremental,
        Guarantee::GuaranteeIncremental
    );
    assert_eq!(p.replication.initial, InitialPolicy::All);
}

#[test]
fn sink_pull_source_snap_samples() {
    let c = load_sample("sink.yml");
    let JobKind::Sink(s) = &c.jobs[0].kind else {
        panic!()
    };
    let ServeOptions::Tcp {
        clients,
        listen_freebind,
        ..
    } = &s.serve
    else {
        panic!()
    };
    assert!(*listen_freebind);
    assert_eq!(clients.len(), 3);
    assert_eq!(clients[1].identity, "lab-*");
    assert!(s
        .recv
        .options
        .override_props
        .contains(&("canmount".into(), "off".into())));
    assert_eq!(s.recv.options.inherit_props, vec!["mountpoint".to_string()]);
    assert_eq!(
        s.recv.options.placeholder_encryption,
        PlaceholderEncryption::Inherit
    );
    let bw = s.recv.bandwidth_limit.unwrap();
    assert_eq!(
        (bw.max_bytes_per_sec, bw.bucket_capacity),
        (12_500_000, 131_072)
    );

    let c = load_sample("pull.yml");
    let JobKind::Pull(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert_eq!(p.interval, PullInterval::Every(secs(600)));
    assert_eq!(
        p.recv.options.placeholder_encryption,
        PlaceholderEncryption::Off
    );
    assert_eq!(
        p.replication.protection.incremental,
        Guarantee::GuaranteeNothing
    );
    let JobKind::Pull(p) = &c.jobs[1].kind else {
        panic!()
    };
    assert_eq!(p.interval, PullInterval::Manual);

    let c = load_sample("source.yml");
    let JobKind::Source(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(s.send.options.encrypted && s.send.options.flags.raw);
    assert!(
        matches!(&*s.snapshotting, Snapshotting::Cron { timestamp_format: TimestampFormat::Iso8601, timestamp_location, .. } if timestamp_location == "Europe/Berlin")
    );
    assert!(!s.per_client_cursors, "zrepl's shared names by default");
    let c = load_sample("source_pullers.yml");
    let JobKind::Source(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(s.per_client_cursors);

    let c = load_sample("fan_out.yml");
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    let PushTargets::Many { targets, fan_out } = &p.to else {
        panic!("{:?}", p.to)
    };
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["east", "west", "offsite"]);
    assert!(targets[0].bandwidth_limit.is_none() && targets[0].protection.is_none());
    assert_eq!(
        targets[2].bandwidth_limit.map(|b| b.max_bytes_per_sec),
        Some(2 << 20)
    );
    assert_eq!(
        targets[2].protection.map(|p| p.incremental),
        Some(Guarantee::GuaranteeIncremental)
    );
    assert_eq!(fan_out.concurrency, 2);
    assert_eq!(fan_out.health_check_timeout, secs(5));
    assert_eq!(fan_out.backoff_max, secs(600));
    assert_eq!(fan_out.protection_grace, Some(secs(72 * 3600)));
    assert_eq!(p.to.connects().len(), 3);
    assert!(p.replicas.follow_renames);
    assert_eq!(p.replicas.delete_after, Some(secs(168 * 3600)));

    let c = load_sample("snap.yml");
    let JobKind::Snap(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(matches!(s.keep[1], KeepRule::Regex { negate: true, .. }));
}

#[test]
fn transport_pair_samples() {
    let c = load_sample("tls_push.yml");
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(p.to.single().unwrap(), ConnectOptions::Tls { server_cn, dial_timeout, .. } if server_cn == "backups" && *dial_timeout == secs(90))
    );
    let c = load_sample("tls_sink.yml");
    let JobKind::Sink(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(&s.serve, ServeOptions::Tls { client_cns, handshake_timeout, .. } if client_cns.len() == 2 && *handshake_timeout == secs(20))
    );

    let c = load_sample("ssh_pull.yml");
    let JobKind::Pull(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(&p.connect, ConnectOptions::Ssh { port: 22, options, dial_timeout, .. } if options.len() == 2 && *dial_timeout == secs(10))
    );
    let c = load_sample("ssh_source.yml");
    let JobKind::Source(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(&s.serve, ServeOptions::Stdinserver { sockdir, .. } if sockdir == Path::new("/var/run/zrelay/stdinserver"))
    );

    let c = load_sample("local.yml");
    let JobKind::Push(p) = &c.job("backup_to_disk").unwrap().kind else {
        panic!()
    };
    assert!(
        matches!(p.to.single().unwrap(), ConnectOptions::Local { dial_timeout, .. } if *dial_timeout == secs(2))
    );
    assert_eq!(*p.snapshotting, Snapshotting::Manual);
}

#[test]
fn hooks_grids_logging_monitoring_samples() {
    let c = load_sample("hooks.yml");
    let JobKind::Snap(s) = &c.jobs[0].kind else {
        panic!()
    };
    let Snapshotting::Periodic { hooks, .. } = &*s.snapshotting else {
        panic!()
    };
    assert_eq!(hooks.len(), 4);
    assert_eq!(
        hooks[0].filesystems, s.filesystems,
        "default: the job's filesystems"
    );
    assert!(hooks[1].err_is_fatal);
    assert_eq!(hooks[2].timeout, secs(120));
    assert_eq!(hooks[3].timeout, secs(30));
    assert!(matches!(hooks[3].kind, HookKind::MysqlLockTables { .. }));

    let c = load_sample("pruning_grids.yml");
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert_eq!(
        p.pruning.keep_sender[0],
        KeepRule::NotReplicated {
            keep_snapshot_at_cursor: false
        }
    );
    let KeepRule::Grid { intervals, .. } = &p.pruning.keep_receiver[0] else {
        panic!()
    };
    assert_eq!(
        intervals[2],
        GridInterval {
            count: 14,
            length: secs(86400),
            keep: Some(3)
        }
    );
    assert_eq!(intervals[3].length, secs(7 * 86400));

    let c = load_sample("logging.yml");
    let l = &c.global.logging;
    assert_eq!(l.len(), 4);
    assert_eq!(
        l[0].kind,
        OutletKind::Stdout {
            time: false,
            color: false
        }
    );
    assert_eq!(
        l[1].kind,
        OutletKind::Syslog {
            facility: "daemon".into(),
            retry_interval: secs(30)
        }
    );
    assert!(matches!(&l[2].kind, OutletKind::Tcp { tls: Some(_), .. }));
    assert!(matches!(&l[3].kind, OutletKind::Tcp { net, tls: None, .. } if net == "tcp"));

    let c = load_sample("monitoring.yml");
    assert_eq!(
        c.global.monitoring,
        vec![Monitoring::Prometheus {
            listen: ":9811".into(),
            listen_freebind: true,
            zrepl_names: true,
        }]
    );
    assert_eq!(c.global.control_sockpath, Path::new("/run/zrelay/control"));
}

#[test]
fn include_and_extension_samples() {
    let c = load_sample("include.yml");
    let names: Vec<&str> = c.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        ["main_snap", "home_snap", "lab_sink", "offsite_push"]
    );
    assert_eq!(c.global.logging[0].level, LogLevel::Info);

    let c = load_sample("extensions.yml");
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert_eq!(p.replication.schedule, Some(Schedule::Interval(secs(3600))));
    let n = c.global.notify.as_ref().expect("notify");
    assert_eq!((n.timeout, n.min_interval), (secs(20), secs(1800)));
    assert_eq!(p.hooks.len(), 2);
    assert!(p.hooks[0].err_is_fatal && p.hooks[0].timeout == secs(10));
    assert_eq!(
        p.hooks[1].on,
        [
            zrelay_config::HookEvent::PostReplication,
            zrelay_config::HookEvent::PostPruning
        ]
    );
    assert_eq!(
        p.replication.snapshot_filter,
        Some(SnapshotFilter::Prefix("zrepl_".into()))
    );
    let JobKind::Push(p) = &c.jobs[1].kind else {
        panic!()
    };
    assert_eq!(
        p.replication.schedule,
        Some(Schedule::Cron(
            zrelay_config::cron::CronSchedule::parse("0 30 2 * * *").unwrap()
        ))
    );
    assert!(matches!(
        p.replication.snapshot_filter,
        Some(SnapshotFilter::Regex(_))
    ));
    let JobKind::Sink(s) = &c.jobs[2].kind else {
        panic!()
    };
    assert!(s.recv.options.force_overwrite);
    assert!(s.recv.options.replicas.rename && s.recv.options.replicas.destroy);
    assert_eq!(s.recv.options.allow_from_sender, ["setuid", "exec"]);
    let (_, x) = s.recv.options.recv_props(true);
    assert_eq!(x, ["mountpoint", "devices", "sharenfs", "sharesmb"]);
}

//! Defaults, error positions and the strictness of phase 1.

use std::path::Path;
use std::time::Duration;

use zrelay_endpoint::{Guarantee, PlaceholderEncryption};
use zrelay_planner::InitialPolicy;
use zrelay_transport::{ConnectOptions, ServeOptions};
use zrelay_zfs::Classify;

use crate::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new("/etc/zrepl/zrepl.yml"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

const PUSH: &str = r#"
jobs:
- name: backup
  type: push
  connect:
    type: tcp
    address: "backups.example.com:8888"
  filesystems: {
    "zroot<": true
  }
  snapshotting:
    type: periodic
    prefix: zrepl_
    interval: 10m
  pruning:
    keep_sender:
    - type: not_replicated
    keep_receiver:
    - type: last_n
      count: 10
"#;

#[test]
fn empty_documents_are_valid_with_defaults() {
    for text in ["", "# nothing\n", "{}", "jobs: []\n", "global: {}\n"] {
        let c = parse(text).unwrap();
        assert!(c.jobs.is_empty());
        assert_eq!(c.origin, Path::new("/etc/zrepl/zrepl.yml"));
        assert_eq!(c.global.logging, default_logging());
        assert!(c.global.monitoring.is_empty());
        assert_eq!(
            c.global.control_sockpath,
            Path::new(DEFAULT_CONTROL_SOCKPATH)
        );
        assert_eq!(
            c.global.stdinserver_sockdir,
            Path::new(DEFAULT_STDINSERVER_SOCKDIR)
        );
    }
    assert_eq!(DEFAULT_CONTROL_SOCKPATH, "/var/run/zrelay/control");
    assert_eq!(DEFAULT_STDINSERVER_SOCKDIR, "/var/run/zrelay/stdinserver");
    assert_eq!(
        default_logging(),
        vec![LogOutlet {
            level: LogLevel::Warn,
            format: LogFormat::Human,
            kind: OutletKind::Stdout {
                time: true,
                color: true
            },
        }]
    );
}

#[test]
fn job_defaults_are_zrepls() {
    let c = parse(PUSH).unwrap();
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(p.to.single().unwrap(), ConnectOptions::Tcp { dial_timeout, .. } if *dial_timeout == Duration::from_secs(10))
    );
    assert_eq!(p.send, SendConfig::default());
    assert!(!p.send.options.encrypted);
    let r = &p.replication;
    assert_eq!(r.protection.initial, Guarantee::GuaranteeResumability);
    assert_eq!(r.protection.incremental, Guarantee::GuaranteeResumability);
    assert_eq!(r.initial, InitialPolicy::MostRecent);
    assert_eq!(
        (r.steps, r.size_estimates),
        (zrelay_replication::DEFAULT_STEPS, None)
    );
    assert_eq!((&r.snapshot_filter, &r.schedule), (&None, &None));
    assert_eq!(r.wire_compression, WireCompression::Auto);
    assert_eq!(
        *p.pruning.keep_sender,
        [KeepRule::NotReplicated {
            keep_snapshot_at_cursor: true
        }]
    );
    assert!(matches!(
        &*p.snapshotting,
        Snapshotting::Periodic { timestamp_format: TimestampFormat::Dense, timestamp_location, hooks, .. }
            if timestamp_location == "UTC" && hooks.is_empty()
    ));

    let sink = r#"
jobs:
- name: sink
  type: sink
  serve: {type: tls, listen: ":8888", ca: /c, cert: /d, key: /k, client_cns: [prod]}
  root_fs: pool/sink
  recv: {}
"#;
    let c = parse(sink).unwrap();
    let JobKind::Sink(s) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(
        matches!(&s.serve, ServeOptions::Tls { handshake_timeout, listen_freebind: false, .. } if *handshake_timeout == Duration::from_secs(10))
    );
    assert_eq!(s.recv, RecvConfig::default());
    assert_eq!(
        s.recv.options.placeholder_encryption,
        PlaceholderEncryption::Unspecified
    );
    assert!(!s.recv.options.force_overwrite);
}

#[test]
fn bandwidth_limit_defaults_and_off() {
    let with = |bw: &str| {
        PUSH.replace(
            "  snapshotting:",
            &format!("  send:\n    bandwidth_limit: {bw}\n  snapshotting:"),
        )
    };
    let get = |bw: &str| {
        let c = parse(&with(bw)).unwrap();
        let JobKind::Push(p) = &c.jobs[0].kind else {
            panic!()
        };
        p.send.bandwidth_limit
    };
    assert_eq!(get("{}"), None);
    assert_eq!(get("{max: -1 B}"), None);
    assert_eq!(get("{max: -1}"), None);
    let b = get("{max: 1 MiB}").unwrap();
    assert_eq!(
        (b.max_bytes_per_sec, b.bucket_capacity),
        (1 << 20, 128 << 10)
    );
    let b = get("{max: 8 Mb, bucket_capacity: 4 KiB}").unwrap();
    assert_eq!((b.max_bytes_per_sec, b.bucket_capacity), (1_000_000, 4096));
    // zrepl accepts 0 (and then fails every transfer): no limit, a warning.
    assert_eq!(get("{max: 0 B}"), None);
    let e = err(&with("{max: 4 bit}"));
    assert!(e.contains("less than 1 byte"), "{e}");
    let e = err(&with("{max: 1 MiB, bucket_capacity: 0 B}"));
    assert!(e.contains("bucket_capacity must be greater than 0"), "{e}");
}

#[test]
fn error_positions_point_at_the_key() {
    // phase 1, inside a type-tagged enum
    let e = err(&PUSH.replace("type: tcp", "type: tcpp"));
    assert_eq!(
        e,
        "/etc/zrepl/zrepl.yml:6:5: jobs[0] (name \"backup\").connect.type: unknown variant \"tcpp\", \
         expected one of tcp, tls, ssh+stdinserver, local"
    );
    // phase 1, unknown key in a tagged variant
    let e = err(&PUSH.replace("    interval: 10m", "    interval: 10m\n    jitter: 1m"));
    assert!(e.starts_with("/etc/zrepl/zrepl.yml:15:5: jobs[0] (name \"backup\").snapshotting.jitter: unknown key \"jitter\""), "{e}");
    // phase 1, wrong type deep inside
    let e = err(&PUSH.replace("count: 10", "count: [10]"));
    assert!(e.starts_with("/etc/zrepl/zrepl.yml:20:7: jobs[0] (name \"backup\").pruning.keep_receiver[0].count: expected an integer, found a sequence"), "{e}");
    // phase 2
    let e = err(&PUSH.replace("interval: 10m", "interval: 10x"));
    assert!(e.starts_with("/etc/zrepl/zrepl.yml:14:5: jobs[0] (name \"backup\").snapshotting.interval: \"10x\" is not a duration"), "{e}");
    let e = err(&PUSH.replace("\"zroot<\"", "\"zroot/a@b\""));
    assert!(e.starts_with("/etc/zrepl/zrepl.yml:9:5: jobs[0] (name \"backup\").filesystems.\"zroot/a@b\": invalid filesystems pattern"), "{e}");
    // top level
    let e = err("jobz: []\n");
    assert_eq!(e, "/etc/zrepl/zrepl.yml:1:1: jobz: unknown key \"jobz\", expected one of global, jobs, include");
    let e = err("jobs: {}\n");
    assert_eq!(
        e,
        "/etc/zrepl/zrepl.yml:1:1: jobs: expected a sequence, found a mapping"
    );
    let e = err("jobs:\n- 42\n");
    assert_eq!(e, "/etc/zrepl/zrepl.yml:2:3: jobs[0]: expected a mapping with a `type` key, found string \"42\"");
}

#[test]
fn error_accessors() {
    let e = parse(&PUSH.replace("count: 10", "count: -3")).unwrap_err();
    assert!(e.is_permanent());
    assert_eq!(e.file(), Some(Path::new("/etc/zrepl/zrepl.yml")));
    assert_eq!(e.line(), Some(20));
    let ConfigError::Invalid {
        key,
        message,
        column,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        key,
        "jobs[0] (name \"backup\").pruning.keep_receiver[0].count"
    );
    assert_eq!(message, "must be a positive number, got -3");
    assert_eq!(*column, 7);
}

#[test]
fn scalars_are_typed_by_the_target() {
    // YAML 1.1 booleans where a bool is expected, any scalar where a string is.
    let c = parse(&PUSH.replace(
        "- type: not_replicated",
        "- type: not_replicated\n      keep_snapshot_at_cursor: no",
    ))
    .unwrap();
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert_eq!(
        p.pruning.keep_sender[0],
        KeepRule::NotReplicated {
            keep_snapshot_at_cursor: false
        }
    );
    let c = parse(&PUSH.replace("prefix: zrepl_", "prefix: 2024")).unwrap();
    let JobKind::Push(p) = &c.jobs[0].kind else {
        panic!()
    };
    assert!(matches!(&*p.snapshotting, Snapshotting::Periodic { prefix, .. } if prefix == "2024"));
    // a quoted boolean is a string
    let e = err(&PUSH.replace("\"zroot<\": true", "\"zroot<\": \"true\""));
    assert!(
        e.contains("expected a boolean (true or false), found string \"true\""),
        "{e}"
    );
    // null is not a string
    let e = err(&PUSH.replace("prefix: zrepl_", "prefix:"));
    assert!(
        e.contains("snapshotting.prefix: expected a string, found null"),
        "{e}"
    );
}

#[test]
fn tagged_enums_reject_unknown_keys_in_every_variant() {
    let cases = [
        (
            "    type: tcp\n",
            "    type: tcp\n    port: 1\n",
            "connect.port: unknown key \"port\"",
        ),
        (
            "- type: not_replicated\n",
            "- type: not_replicated\n      count: 1\n",
            "keep_sender[0].count: unknown key \"count\"",
        ),
        (
            "    type: periodic\n",
            "    type: periodic\n    cron: \"* * * * *\"\n",
            "snapshotting.cron: unknown key \"cron\"",
        ),
        (
            "  type: push\n",
            "  type: push\n  root_fs: pool/x\n",
            "root_fs: unknown key \"root_fs\"",
        ),
        (
            "  type: push\n",
            "  type: push\n  type: pull\n",
            "duplicate key \"type\"",
        ),
    ];
    for (from, to, expect) in cases {
        let e = err(&PUSH.replacen(from, to, 1));
        assert!(e.contains(expect), "{expect}: {e}");
    }
    let e = err(&PUSH.replace(
        "    type: periodic\n    prefix: zrepl_\n    interval: 10m\n",
        "    manual\n",
    ));
    assert!(
        e.contains("snapshotting: expected a mapping with a `type` key, found string \"manual\""),
        "{e}"
    );
    let e = err("jobs:\n- name: s\n  type: sink\n  serve: {type: local, listener_name: l}\n  root_fs: p/s\n  recv: {placeholder: {encryption: {type: \"off\"}}}\n");
    assert!(
        e.contains("encryption: expected one of unspecified, off, inherit, found a mapping"),
        "{e}"
    );
    let e =
        err("global:\n  logging:\n  - {type: stdout, level: warn, format: human, colour: true}\n");
    assert!(e.contains("global.logging[0].colour: unknown key \"colour\", expected one of level, format, time, color"), "{e}");
}

#[test]
fn yaml_features_zrepl_configs_use() {
    let text = r#"
x-keep: &keep
  keep_sender:
  - type: not_replicated
  keep_receiver:
  - type: last_n
    count: 10
jobs: []
"#;
    let e = err(text);
    assert!(e.contains("unknown key \"x-keep\""), "{e}");
    let text = PUSH.replace(
        "  pruning:\n    keep_sender:",
        "  pruning: &p\n    keep_sender:",
    ) + "- name: backup2\n  type: push\n  connect: {type: tcp, address: \"b:1\"}\n  filesystems: {\"zroot/b<\": true}\n  snapshotting: {type: manual}\n  pruning: *p\n";
    let c = parse(&text).unwrap();
    assert_eq!(c.jobs.len(), 2);
    let (JobKind::Push(a), JobKind::Push(b)) = (&c.jobs[0].kind, &c.jobs[1].kind) else {
        panic!()
    };
    assert_eq!(a.pruning, b.pruning);
}

#[test]
fn find_config_lists_what_it_tried() {
    let dir = std::env::temp_dir().join(format!("zrelay-config-find-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("zrelay.yml");
    std::fs::write(&f, "jobs: []\n").unwrap();
    assert_eq!(find_config(Some(&f)).unwrap(), f);
    let missing = dir.join("missing.yml");
    let e = find_config(Some(&missing)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no configuration file found; tried {}", missing.display())
    );
    if !DEFAULT_CONFIG_PATHS.iter().any(|p| Path::new(p).exists()) {
        let e = find_config(None).unwrap_err().to_string();
        assert_eq!(
            e,
            "no configuration file found; tried /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, \
             /usr/local/etc/zrepl/zrepl.yml"
        );
    }
    let e = load(&missing).unwrap_err();
    assert!(
        matches!(e, ConfigError::Io { .. }) && e.to_string().contains("missing.yml: cannot read"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without `--config`: zrelay's path first, then zrepl's Linux path, then
/// zrepl's FreeBSD path; the first that exists wins.
#[test]
fn find_config_searches_zrelay_then_zrepl_paths_in_order() {
    let root = std::env::temp_dir().join(format!("zrelay-config-order-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let paths = [
        root.join("etc/zrelay/zrelay.yml"),
        root.join("etc/zrepl/zrepl.yml"),
        root.join("usr/local/etc/zrepl/zrepl.yml"),
    ];
    let e = find_config_under(None, &root).unwrap_err();
    assert!(
        matches!(&e, ConfigError::NotFound { tried } if tried[..] == paths[..]),
        "{e}"
    );
    for p in &paths {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "jobs: []\n").unwrap();
    }
    for p in &paths {
        assert_eq!(&find_config_under(None, &root).unwrap(), p);
        std::fs::remove_file(p).unwrap();
    }
    // An explicit path is the only one tried, even when defaults exist.
    std::fs::write(&paths[2], "jobs: []\n").unwrap();
    let explicit = root.join("other.yml");
    assert!(find_config_under(Some(&explicit), &root).is_err());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn render_selectors_parse() {
    assert_eq!("yaml".parse::<RenderFormat>(), Ok(RenderFormat::Yaml));
    assert_eq!("pretty".parse::<RenderFormat>(), Ok(RenderFormat::Pretty));
    assert_eq!("json".parse::<RenderFormat>(), Ok(RenderFormat::Json));
    assert!("toml".parse::<RenderFormat>().is_err());
    for (s, w) in [
        ("all", RenderWhat::All),
        ("config", RenderWhat::Config),
        ("jobs", RenderWhat::Jobs),
        ("logging", RenderWhat::Logging),
    ] {
        assert_eq!(s.parse::<RenderWhat>(), Ok(w));
    }
    let c = parse(PUSH).unwrap();
    let y = c.render(RenderFormat::Yaml, RenderWhat::Logging);
    assert!(
        y.starts_with("logging:\n- type: stdout\n  level: warn\n"),
        "{y}"
    );
    let j = c.render(RenderFormat::Json, RenderWhat::Jobs);
    assert!(j.contains("\"dial_timeout\": \"10s\""), "{j}");
}

#[test]
fn wire_compression_defaults_by_transport_and_is_checked() {
    let with = |w: &str| {
        PUSH.replace(
            "  pruning:\n",
            &format!("  replication:\n    wire_compression: {w}\n  pruning:\n"),
        )
    };
    let repl = |c: Config| match &c.jobs[0].kind {
        JobKind::Push(p) => (
            p.replication.wire_compression,
            p.to.single().unwrap().clone(),
        ),
        _ => panic!(),
    };
    let (w, tcp) = repl(parse(PUSH).unwrap());
    assert_eq!(w.level_for(&tcp), Some(1), "auto: zstd 1 over tcp");
    let local = ConnectOptions::Local {
        listener_name: "l".into(),
        client_identity: "c".into(),
        dial_timeout: Duration::from_secs(1),
    };
    assert_eq!(w.level_for(&local), None, "auto: off for local");
    let (w, _) = repl(parse(&with("{type: zstd, level: 6}")).unwrap());
    assert_eq!(w, WireCompression::Zstd { level: 6 });
    assert_eq!(
        w.level_for(&local),
        Some(6),
        "asked for explicitly, even locally"
    );
    let (w, _) = repl(parse(&with("{type: zstd}")).unwrap());
    assert_eq!(w, WireCompression::Zstd { level: 1 });
    let (w, _) = repl(parse(&with("{type: off}")).unwrap());
    assert_eq!(w.level_for(&tcp), None);
    for (bad, says) in [
        (
            "{type: zstd, level: 10}",
            "must be a zstd level from 1 to 9, got 10",
        ),
        ("{type: zstd, level: 0}", "got 0"),
        ("{type: off, level: 3}", "only `type: zstd` takes a level"),
        ("{type: lz4}", "must be auto, off or zstd, got lz4"),
        ("{typ: zstd}", "typ"),
    ] {
        let e = err(&with(bad));
        assert!(
            e.contains(says) && e.contains("wire_compression"),
            "{bad}: {e}"
        );
    }
    // Rendered explicitly, and parsed back to the same.
    let c = parse(&with("{type: zstd, level: 4}")).unwrap();
    let y = c.render(RenderFormat::Yaml, RenderWhat::Config);
    assert!(y.contains("wire_compression"), "{y}");
    assert_eq!(
        repl(parse(&y).unwrap()).0,
        WireCompression::Zstd { level: 4 }
    );
}

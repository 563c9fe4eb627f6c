//! Jobs in zrepl's syntax, defaults explicit.

use zrelay_endpoint::{PlaceholderEncryption, RecvOptions};

use super::{filter, go_duration, zrepl_duration, ConnectOptions, Out, ServeOptions};
use crate::model::*;

pub(super) fn job(j: &Job) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("name".into(), Out::s(j.name.as_str())),
        ("type".into(), Out::s(j.kind.type_name())),
    ];
    let mut put = |k: &str, v: Out| m.push((k.to_string(), v));
    match &j.kind {
        JobKind::Push(p) => {
            match &p.to {
                PushTargets::One(c) => put("connect", connect(c)),
                PushTargets::Many { targets, fan_out } => {
                    put("targets", Out::L(targets.iter().map(target).collect()));
                    put("fan_out", fan_out_out(fan_out));
                }
            }
            put("filesystems", filter(&p.filesystems));
            put("send", send(&p.send));
            put("snapshotting", snapshotting(&p.snapshotting));
            put("pruning", pruning(&p.pruning));
            put("replication", replication(&p.replication));
            put("conflict_resolution", conflict(&p.replication));
            if p.replicas != Replicas::default() {
                let mut r = vec![(
                    "follow_renames".to_string(),
                    Out::B(p.replicas.follow_renames),
                )];
                if let Some(d) = p.replicas.delete_after {
                    r.push(("delete_after".into(), Out::s(go_duration(d))));
                }
                put("replicas", Out::M(r));
            }
            if !p.hooks.is_empty() {
                put("hooks", job_hooks(&p.hooks));
            }
        }
        JobKind::Sink(s) => {
            put("serve", serve(&s.serve));
            put("root_fs", Out::s(s.root_fs.as_str()));
            put("recv", recv(&s.recv));
            put("limits", limits(&s.limits));
        }
        JobKind::Pull(p) => {
            put("connect", connect(&p.connect));
            put("root_fs", Out::s(p.root_fs.as_str()));
            put(
                "interval",
                match p.interval {
                    PullInterval::Manual => Out::s("manual"),
                    PullInterval::Every(d) => Out::S(zrepl_duration(d)),
                },
            );
            put("recv", recv(&p.recv));
            put("pruning", pruning(&p.pruning));
            put("replication", replication(&p.replication));
            put("conflict_resolution", conflict(&p.replication));
            if !p.hooks.is_empty() {
                put("hooks", job_hooks(&p.hooks));
            }
        }
        JobKind::Source(s) => {
            put("serve", serve(&s.serve));
            put("filesystems", filter(&s.filesystems));
            put("send", send(&s.send));
            put("snapshotting", snapshotting(&s.snapshotting));
            put("limits", limits(&s.limits));
            put("per_client_cursors", Out::B(s.per_client_cursors));
        }
        JobKind::Snap(s) => {
            put("filesystems", filter(&s.filesystems));
            put("snapshotting", snapshotting(&s.snapshotting));
            put("pruning", Out::map([("keep", keep_rules(&s.keep))]));
        }
    }
    Out::M(m)
}

/// `limits` (zrelay extension), every key explicit.
fn limits(l: &Limits) -> Out {
    Out::map([
        ("max_connections", Out::N(l.max_connections as u64)),
        (
            "max_connections_per_client",
            Out::N(l.max_connections_per_client as u64),
        ),
        (
            "handshake_timeout",
            Out::S(go_duration(l.handshake_timeout)),
        ),
        ("idle_timeout", Out::S(go_duration(l.idle_timeout))),
        ("frame_timeout", Out::S(go_duration(l.frame_timeout))),
        (
            "max_request_size",
            Out::S(format!("{} B", l.max_request_size)),
        ),
        (
            "max_request_memory",
            Out::S(format!("{} B", l.max_request_memory)),
        ),
        (
            "max_estimate_concurrency",
            Out::N(l.max_estimate_concurrency as u64),
        ),
        (
            "max_steps_per_request",
            Out::N(l.max_steps_per_request as u64),
        ),
    ])
}

fn target(t: &PushTarget) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("name".into(), Out::s(&t.name)),
        ("connect".into(), connect(&t.connect)),
    ];
    bandwidth(&mut m, &t.bandwidth_limit);
    if let Some(p) = &t.protection {
        m.push(("protection".into(), protection(p)));
    }
    Out::M(m)
}

fn protection(p: &zrelay_endpoint::Protection) -> Out {
    Out::map([
        ("initial", Out::s(p.initial.as_str())),
        ("incremental", Out::s(p.incremental.as_str())),
    ])
}

fn fan_out_out(f: &FanOut) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("concurrency".into(), Out::N(f.concurrency as u64)),
        (
            "health_check_interval".into(),
            Out::S(go_duration(f.health_check_interval)),
        ),
        (
            "health_check_timeout".into(),
            Out::S(go_duration(f.health_check_timeout)),
        ),
        ("backoff_start".into(), Out::S(go_duration(f.backoff_start))),
        ("backoff_max".into(), Out::S(go_duration(f.backoff_max))),
    ];
    if let Some(g) = f.protection_grace {
        m.push(("protection_grace".into(), Out::S(go_duration(g))));
    }
    Out::M(m)
}

fn connect(c: &ConnectOptions) -> Out {
    match c {
        ConnectOptions::Tcp {
            address,
            dial_timeout,
        } => Out::map([
            ("type", Out::s("tcp")),
            ("address", Out::s(address)),
            ("dial_timeout", Out::S(go_duration(*dial_timeout))),
        ]),
        ConnectOptions::Tls {
            address,
            ca,
            cert,
            key,
            server_cn,
            dial_timeout,
        } => Out::map([
            ("type", Out::s("tls")),
            ("address", Out::s(address)),
            ("ca", Out::s(ca.display())),
            ("cert", Out::s(cert.display())),
            ("key", Out::s(key.display())),
            ("server_cn", Out::s(server_cn)),
            ("dial_timeout", Out::S(go_duration(*dial_timeout))),
        ]),
        ConnectOptions::Ssh {
            host,
            user,
            port,
            identity_file,
            options,
            dial_timeout,
        } => Out::map([
            ("type", Out::s("ssh+stdinserver")),
            ("host", Out::s(host)),
            ("user", Out::s(user)),
            ("port", Out::N(u64::from(*port))),
            ("identity_file", Out::s(identity_file.display())),
            ("options", Out::L(options.iter().map(Out::s).collect())),
            ("dial_timeout", Out::S(go_duration(*dial_timeout))),
        ]),
        ConnectOptions::Local {
            listener_name,
            client_identity,
            dial_timeout,
        } => Out::map([
            ("type", Out::s("local")),
            ("listener_name", Out::s(listener_name)),
            ("client_identity", Out::s(client_identity)),
            ("dial_timeout", Out::S(go_duration(*dial_timeout))),
        ]),
    }
}

fn serve(s: &ServeOptions) -> Out {
    match s {
        ServeOptions::Tcp {
            listen,
            listen_freebind,
            clients,
        } => Out::map([
            ("type", Out::s("tcp")),
            ("listen", Out::s(listen)),
            ("listen_freebind", Out::B(*listen_freebind)),
            (
                "clients",
                Out::M(
                    clients
                        .iter()
                        .map(|c| (c.pattern.clone(), Out::s(&c.identity)))
                        .collect(),
                ),
            ),
        ]),
        ServeOptions::Tls {
            listen,
            listen_freebind,
            ca,
            cert,
            key,
            client_cns,
            handshake_timeout,
        } => Out::map([
            ("type", Out::s("tls")),
            ("listen", Out::s(listen)),
            ("listen_freebind", Out::B(*listen_freebind)),
            ("ca", Out::s(ca.display())),
            ("cert", Out::s(cert.display())),
            ("key", Out::s(key.display())),
            (
                "client_cns",
                Out::L(client_cns.iter().map(Out::s).collect()),
            ),
            ("handshake_timeout", Out::S(go_duration(*handshake_timeout))),
        ]),
        ServeOptions::Stdinserver {
            client_identities, ..
        } => Out::map([
            ("type", Out::s("stdinserver")),
            (
                "client_identities",
                Out::L(client_identities.iter().map(Out::s).collect()),
            ),
        ]),
        ServeOptions::Local { listener_name } => Out::map([
            ("type", Out::s("local")),
            ("listener_name", Out::s(listener_name)),
        ]),
    }
}

fn bandwidth(m: &mut Vec<(String, Out)>, b: &Option<BandwidthLimit>) {
    if let Some(b) = b {
        m.push((
            "bandwidth_limit".into(),
            Out::map([
                ("max", Out::S(format!("{} B", b.max_bytes_per_sec))),
                (
                    "bucket_capacity",
                    Out::S(format!("{} B", b.bucket_capacity)),
                ),
            ]),
        ));
    }
}

fn send(s: &SendConfig) -> Out {
    let f = &s.options.flags;
    let mut m: Vec<(String, Out)> = [
        ("encrypted", s.options.encrypted),
        ("raw", f.raw),
        ("send_properties", f.send_properties),
        ("backup_properties", f.backup_properties),
        ("large_blocks", f.large_blocks),
        ("compressed", f.compressed),
        ("embedded_data", f.embedded_data),
        ("saved", f.saved),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Out::B(v)))
    .collect();
    bandwidth(&mut m, &s.bandwidth_limit);
    Out::M(m)
}

fn recv(r: &RecvConfig) -> Out {
    let o: &RecvOptions = &r.options;
    let enc = match o.placeholder_encryption {
        PlaceholderEncryption::Unspecified => "unspecified",
        PlaceholderEncryption::Off => "off",
        PlaceholderEncryption::Inherit => "inherit",
    };
    let mut props = vec![
        (
            "inherit".to_string(),
            Out::L(o.inherit_props.iter().map(Out::s).collect()),
        ),
        (
            "override".to_string(),
            Out::M(
                o.override_props
                    .iter()
                    .map(|(k, v)| (k.clone(), Out::s(v)))
                    .collect(),
            ),
        ),
    ];
    if !o.allow_from_sender.is_empty() {
        props.push((
            "allow_from_sender".into(),
            Out::L(o.allow_from_sender.iter().map(Out::s).collect()),
        ));
    }
    let mut m = vec![
        ("properties".to_string(), Out::M(props)),
        (
            "placeholder".into(),
            Out::map([("encryption", Out::s(enc))]),
        ),
    ];
    bandwidth(&mut m, &r.bandwidth_limit);
    if o.force_overwrite {
        m.push(("force_overwrite".into(), Out::B(true)));
    }
    if o.replicas != Default::default() {
        m.push((
            "replicas".into(),
            Out::map([
                ("rename", Out::B(o.replicas.rename)),
                ("destroy", Out::B(o.replicas.destroy)),
            ]),
        ));
    }
    Out::M(m)
}

fn snapshotting(s: &Snapshotting) -> Out {
    let (ty, prefix, when, hooks, format, location) = match s {
        Snapshotting::Manual => return Out::map([("type", Out::s("manual"))]),
        Snapshotting::Periodic {
            prefix,
            interval,
            hooks,
            timestamp_format,
            timestamp_location,
        } => (
            "periodic",
            prefix,
            ("interval", Out::S(zrepl_duration(*interval))),
            hooks,
            timestamp_format,
            timestamp_location,
        ),
        Snapshotting::Cron {
            prefix,
            cron,
            hooks,
            timestamp_format,
            timestamp_location,
        } => (
            "cron",
            prefix,
            ("cron", Out::s(cron)),
            hooks,
            timestamp_format,
            timestamp_location,
        ),
    };
    Out::map([
        ("type", Out::s(ty)),
        ("prefix", Out::s(prefix)),
        when,
        ("hooks", Out::L(hooks.iter().map(hook).collect())),
        ("timestamp_format", Out::s(format.as_config_str())),
        ("timestamp_location", Out::s(location)),
    ])
}

fn hook(h: &Hook) -> Out {
    let (ty, key, value) = match &h.kind {
        HookKind::Command { path } => ("command", "path", path.display().to_string()),
        HookKind::PostgresCheckpoint { dsn } => ("postgres-checkpoint", "dsn", dsn.clone()),
        HookKind::MysqlLockTables { dsn } => ("mysql-lock-tables", "dsn", dsn.clone()),
    };
    Out::map([
        ("type", Out::s(ty)),
        (key, Out::S(value)),
        ("timeout", Out::S(go_duration(h.timeout))),
        ("filesystems", filter(&h.filesystems)),
        ("err_is_fatal", Out::B(h.err_is_fatal)),
    ])
}

fn pruning(p: &PruningConfig) -> Out {
    Out::map([
        ("keep_sender", keep_rules(&p.keep_sender)),
        ("keep_receiver", keep_rules(&p.keep_receiver)),
    ])
}

fn keep_rules(rules: &[KeepRule]) -> Out {
    Out::L(rules.iter().map(keep).collect())
}

fn keep(k: &KeepRule) -> Out {
    match k {
        KeepRule::NotReplicated {
            keep_snapshot_at_cursor,
        } => Out::map([
            ("type", Out::s("not_replicated")),
            ("keep_snapshot_at_cursor", Out::B(*keep_snapshot_at_cursor)),
        ]),
        KeepRule::LastN { count, regex } => {
            let mut m = vec![
                ("type".to_string(), Out::s("last_n")),
                ("count".into(), Out::N(*count as u64)),
            ];
            if let Some(r) = regex {
                m.push(("regex".into(), Out::s(r)));
            }
            Out::M(m)
        }
        KeepRule::Grid { intervals, regex } => {
            let grid: Vec<String> = intervals
                .iter()
                .map(|g| {
                    let keep = match g.keep {
                        None => "(keep=all)".to_string(),
                        Some(1) => String::new(),
                        Some(k) => format!("(keep={k})"),
                    };
                    format!("{}x{}{keep}", g.count, zrepl_duration(g.length))
                })
                .collect();
            Out::map([
                ("type", Out::s("grid")),
                ("grid", Out::S(grid.join(" | "))),
                ("regex", Out::s(regex)),
            ])
        }
        KeepRule::Regex { regex, negate } => Out::map([
            ("type", Out::s("regex")),
            ("regex", Out::s(regex)),
            ("negate", Out::B(*negate)),
        ]),
    }
}

fn replication(r: &ReplicationConfig) -> Out {
    let mut m = vec![
        ("protection".to_string(), protection(&r.protection)),
        (
            "concurrency".into(),
            Out::M(
                std::iter::once(("steps".to_string(), Out::N(r.steps as u64)))
                    .chain(
                        r.size_estimates
                            .map(|n| ("size_estimates".to_string(), Out::N(n as u64))),
                    )
                    .collect(),
            ),
        ),
    ];
    match &r.snapshot_filter {
        Some(SnapshotFilter::Prefix(p)) => {
            m.push(("snapshot_filter".into(), Out::map([("prefix", Out::s(p))])))
        }
        Some(SnapshotFilter::Regex(p)) => m.push((
            "snapshot_filter".into(),
            Out::map([("regex", Out::s(p.as_str()))]),
        )),
        None => {}
    }
    m.push((
        "wire_compression".into(),
        match r.wire_compression {
            WireCompression::Auto => Out::map([("type", Out::s("auto"))]),
            WireCompression::Off => Out::map([("type", Out::s("off"))]),
            WireCompression::Zstd { level } => {
                Out::map([("type", Out::s("zstd")), ("level", Out::N(level as u64))])
            }
        },
    ));
    match &r.schedule {
        Some(Schedule::Interval(d)) => m.push((
            "schedule".into(),
            Out::map([("interval", Out::S(zrepl_duration(*d)))]),
        )),
        Some(Schedule::Cron(c)) => {
            m.push(("schedule".into(), Out::map([("cron", Out::s(c.as_str()))])))
        }
        None => {}
    }
    Out::M(m)
}

fn conflict(r: &ReplicationConfig) -> Out {
    Out::map([("initial_replication", Out::s(r.initial.as_str()))])
}

fn job_hooks(hooks: &[crate::JobHook]) -> Out {
    Out::L(
        hooks
            .iter()
            .map(|h| {
                Out::map([
                    ("path", Out::s(h.path.display().to_string())),
                    (
                        "on",
                        Out::L(h.on.iter().map(|e| Out::s(e.as_str())).collect()),
                    ),
                    ("timeout", Out::s(go_duration(h.timeout))),
                    ("err_is_fatal", Out::B(h.err_is_fatal)),
                ])
            })
            .collect(),
    )
}

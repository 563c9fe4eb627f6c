//! Jobs and their transports (`connect`, `serve`).

use std::collections::HashSet;
use std::time::Duration;

use zrelay_endpoint::{ClientIdentity, JobId};
use zrelay_transport::options::ClientMapping;
use zrelay_transport::{ConnectOptions, ServeOptions};
use zrelay_zfs::peer_text::peer;
use zrelay_zfs::DatasetPath;

use super::parts;
use super::{Cx, Site, R};
use crate::error::KeyPath;
use crate::model::{
    Global, Job, JobKind, PullInterval, PullJob, PushJob, SinkJob, SnapJob, SourceJob,
};
use crate::raw::{Ordered, RawConnect, RawJob, RawServe};

/// Default dial timeout of tcp, tls and ssh connects.
const DIAL: Duration = Duration::from_secs(10);
/// Default dial timeout of local connects.
const LOCAL_DIAL: Duration = Duration::from_secs(2);
/// Default tls handshake timeout.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// What a `dial_timeout` of 0 (zrepl: no timeout) becomes: a day.
const NO_DIAL_LIMIT: Duration = Duration::from_secs(24 * 3600);

pub(super) fn job(cx: Cx<'_>, path: &KeyPath, raw: &RawJob, global: &Global) -> R<Job> {
    let name = JobId::new(raw.name()).map_err(|e| cx.err(&path.k("name"), e))?;
    let kind = match raw {
        RawJob::Push(j) => {
            let filesystems = cx.filter(&path.k("filesystems"), &j.filesystems)?;
            JobKind::Push(PushJob {
                to: super::targets::push_targets(
                    cx,
                    path,
                    &name,
                    j.connect.as_ref(),
                    j.targets.as_ref(),
                    j.fan_out.as_ref(),
                )?,
                send: parts::send(cx, &path.k("send"), j.send.as_ref())?,
                snapshotting: parts::snapshotting(
                    cx,
                    &path.k("snapshotting"),
                    &j.snapshotting,
                    &filesystems,
                )?,
                filesystems,
                pruning: parts::pruning(cx, &path.k("pruning"), &j.pruning)?,
                replication: parts::replication(
                    cx,
                    path,
                    j.replication.as_ref(),
                    j.conflict_resolution.as_ref(),
                    true,
                )?,
                replicas: super::targets::replicas(cx, &path.k("replicas"), j.replicas.as_ref())?,
                hooks: crate::job_hooks::job_hooks(cx, &path.k("hooks"), &j.hooks)?,
            })
        }
        RawJob::Sink(j) => JobKind::Sink(SinkJob {
            serve: serve(cx, &path.k("serve"), &j.serve, global)?,
            root_fs: root_fs(cx, &path.k("root_fs"), &j.root_fs)?,
            recv: parts::recv(cx, &path.k("recv"), j.recv.as_ref())?,
            limits: super::limits::limits(cx, &path.k("limits"), j.limits.as_ref())?,
        }),
        RawJob::Pull(j) if j.recv.as_ref().is_some_and(|r| r.replicas.is_some()) => {
            return Err(cx.err(
                &path.k("recv").k("replicas"),
                "applies to sink jobs only: a pull job's sender does not rename or destroy its replicas",
            ))
        }
        RawJob::Pull(j) => JobKind::Pull(PullJob {
            connect: connect(cx, &path.k("connect"), &j.connect)?,
            root_fs: root_fs(cx, &path.k("root_fs"), &j.root_fs)?,
            interval: pull_interval(cx, &path.k("interval"), &j.interval)?,
            recv: parts::recv(cx, &path.k("recv"), j.recv.as_ref())?,
            pruning: parts::pruning(cx, &path.k("pruning"), &j.pruning)?,
            replication: parts::replication(
                cx,
                path,
                j.replication.as_ref(),
                j.conflict_resolution.as_ref(),
                false,
            )?,
            hooks: crate::job_hooks::job_hooks(cx, &path.k("hooks"), &j.hooks)?,
        }),
        RawJob::Source(j) => {
            let filesystems = cx.filter(&path.k("filesystems"), &j.filesystems)?;
            JobKind::Source(SourceJob {
                serve: serve(cx, &path.k("serve"), &j.serve, global)?,
                send: parts::send(cx, &path.k("send"), j.send.as_ref())?,
                snapshotting: parts::snapshotting(
                    cx,
                    &path.k("snapshotting"),
                    &j.snapshotting,
                    &filesystems,
                )?,
                filesystems,
                limits: super::limits::limits(cx, &path.k("limits"), j.limits.as_ref())?,
                per_client_cursors: j.per_client_cursors.unwrap_or(false),
            })
        }
        RawJob::Snap(j) => {
            let filesystems = cx.filter(&path.k("filesystems"), &j.filesystems)?;
            JobKind::Snap(SnapJob {
                snapshotting: parts::snapshotting(
                    cx,
                    &path.k("snapshotting"),
                    &j.snapshotting,
                    &filesystems,
                )?,
                filesystems,
                keep: parts::keep_rules(cx, &path.k("pruning").k("keep"), &j.pruning.keep, false)?,
            })
        }
    };
    Ok(Job { name, kind })
}

fn root_fs(cx: Cx<'_>, path: &KeyPath, s: &str) -> R<DatasetPath> {
    DatasetPath::parse(s).map_err(|e| cx.err(path, e))
}

/// `interval` of a pull job: a positive duration or `manual`.
fn pull_interval(cx: Cx<'_>, path: &KeyPath, s: &str) -> R<PullInterval> {
    match s {
        "manual" => Ok(PullInterval::Manual),
        "" => Err(cx.err(
            path,
            "value must not be empty (a duration like 10m, or manual)",
        )),
        _ => Ok(PullInterval::Every(cx.interval(path, s)?)),
    }
}

/// A client identity (a single dataset name component).
fn identity(cx: Cx<'_>, path: &KeyPath, s: &str) -> R<String> {
    ClientIdentity::parse(s).map_err(|e| cx.err(path, e))?;
    Ok(s.to_string())
}

pub(super) fn connect(cx: Cx<'_>, path: &KeyPath, raw: &RawConnect) -> R<ConnectOptions> {
    let at = path.k("dial_timeout");
    // zrepl's tcp, tls and local connects read 0 as "no timeout" (Go's
    // net.Dialer, `if dialTimeout > 0`): zrelay waits NO_DIAL_LIMIT.
    let dial = |v: &Option<String>, d| {
        let t = cx.go_duration(&at, v, d, false)?;
        if v.is_some() && t.is_zero() {
            cx.warn(
                &at,
                format!(
                    "0 means no dial timeout in zrepl: a connect that never completes blocks \
                     the job; zrelay gives up after {}",
                    crate::render::go_duration(NO_DIAL_LIMIT)
                ),
            );
            return Ok(NO_DIAL_LIMIT);
        }
        Ok(t)
    };
    Ok(match raw {
        RawConnect::Tcp(c) => ConnectOptions::Tcp {
            address: cx.host_port(&path.k("address"), &c.address)?,
            dial_timeout: dial(&c.dial_timeout, DIAL)?,
        },
        RawConnect::Tls(c) => ConnectOptions::Tls {
            address: cx.host_port(&path.k("address"), &c.address)?,
            ca: cx.file_path(&path.k("ca"), &c.ca)?,
            cert: cx.file_path(&path.k("cert"), &c.cert)?,
            key: cx.file_path(&path.k("key"), &c.key)?,
            server_cn: cx
                .non_empty(&path.k("server_cn"), &c.server_cn)?
                .to_string(),
            dial_timeout: dial(&c.dial_timeout, DIAL)?,
        },
        RawConnect::Ssh(c) => {
            if c.port == 0 {
                return Err(cx.err(&path.k("port"), "port must be between 1 and 65535"));
            }
            for (i, o) in c.options.iter().enumerate() {
                cx.non_empty(&path.k("options").i(i), o)?;
            }
            ConnectOptions::Ssh {
                host: cx.non_empty(&path.k("host"), &c.host)?.to_string(),
                user: cx.non_empty(&path.k("user"), &c.user)?.to_string(),
                port: c.port,
                identity_file: cx.file_path(&path.k("identity_file"), &c.identity_file)?,
                options: c.options.clone(),
                dial_timeout: {
                    let t = cx.go_duration(&at, &c.dial_timeout, DIAL, false)?;
                    if t.is_zero() {
                        cx.warn(&at, "0: every ssh connect times out at once (as in zrepl)");
                    }
                    t
                },
            }
        }
        RawConnect::Local(c) => ConnectOptions::Local {
            listener_name: cx
                .non_empty(&path.k("listener_name"), &c.listener_name)?
                .to_string(),
            client_identity: identity(cx, &path.k("client_identity"), &c.client_identity)?,
            dial_timeout: dial(&c.dial_timeout, LOCAL_DIAL)?,
        },
    })
}

fn serve(cx: Cx<'_>, path: &KeyPath, raw: &RawServe, global: &Global) -> R<ServeOptions> {
    Ok(match raw {
        RawServe::Tcp(s) => ServeOptions::Tcp {
            listen: cx.host_port(&path.k("listen"), &s.listen)?,
            listen_freebind: s.listen_freebind.unwrap_or(false),
            clients: clients(cx, &path.k("clients"), &s.clients)?,
        },
        RawServe::Tls(s) => {
            if s.client_cns.is_empty() {
                return Err(cx.err(
                    &path.k("client_cns"),
                    "must list at least one client certificate CN",
                ));
            }
            ServeOptions::Tls {
                listen: cx.host_port(&path.k("listen"), &s.listen)?,
                listen_freebind: s.listen_freebind.unwrap_or(false),
                ca: cx.file_path(&path.k("ca"), &s.ca)?,
                cert: cx.file_path(&path.k("cert"), &s.cert)?,
                key: cx.file_path(&path.k("key"), &s.key)?,
                client_cns: identities(cx, &path.k("client_cns"), &s.client_cns)?,
                handshake_timeout: {
                    let at = path.k("handshake_timeout");
                    let t = cx.go_duration(&at, &s.handshake_timeout, HANDSHAKE, false)?;
                    if t.is_zero() {
                        cx.warn(
                            &at,
                            "0: every TLS handshake times out at once (as in zrepl)",
                        );
                    }
                    t
                },
            }
        }
        RawServe::Stdinserver(s) => ServeOptions::Stdinserver {
            client_identities: identities(cx, &path.k("client_identities"), &s.client_identities)?,
            sockdir: global.stdinserver_sockdir.clone(),
        },
        RawServe::Local(s) => ServeOptions::Local {
            listener_name: cx
                .non_empty(&path.k("listener_name"), &s.listener_name)?
                .to_string(),
        },
    })
}

/// A list of valid identities, each once (zrepl accepts one listed twice:
/// a warning, and it is kept once).
fn identities(cx: Cx<'_>, path: &KeyPath, list: &[String]) -> R<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, id) in list.iter().enumerate() {
        identity(cx, &path.i(i), id)?;
        if seen.insert(id.as_str()) {
            out.push(id.clone());
        } else {
            cx.warn(
                &path.i(i),
                format!("identity {:?} is listed twice; it counts once", peer(id)),
            );
        }
    }
    Ok(out)
}

/// tcp `clients`: an IP or CIDR → identity; a CIDR's identity must contain
/// exactly one `*`, which is replaced by the client's IP; an IP's must not.
fn clients(cx: Cx<'_>, path: &KeyPath, raw: &Ordered<String>) -> R<Vec<ClientMapping>> {
    // The transport owns the rules (IP or CIDR, `*` only for a CIDR,
    // identities valid after expansion); check each entry at its own key,
    // then the whole map (duplicates).
    let mut out = Vec::new();
    for (pattern, ident) in &raw.0 {
        let m = ClientMapping {
            pattern: pattern.clone(),
            identity: ident.clone(),
        };
        zrelay_transport::validate_clients(std::slice::from_ref(&m))
            .map_err(|e| cx.err(&path.k(pattern), e))?;
        out.push(m);
    }
    zrelay_transport::validate_clients(&out).map_err(|e| cx.err(path, e))?;
    Ok(out)
}

/// Every `connect: {type: local}` should name a `serve: {type: local}`
/// listener of this configuration (they live in the same daemon). zrepl
/// accepts a name nobody serves (every connect then fails), so this is a
/// warning.
pub(super) fn check_local_connects(jobs: &[Job], sites: &[Site<'_>]) {
    let listeners: Vec<&str> = jobs
        .iter()
        .filter_map(|j| match &j.kind {
            JobKind::Sink(SinkJob {
                serve: ServeOptions::Local { listener_name },
                ..
            })
            | JobKind::Source(SourceJob {
                serve: ServeOptions::Local { listener_name },
                ..
            }) => Some(listener_name.as_str()),
            _ => None,
        })
        .collect();
    for (j, site) in jobs.iter().zip(sites) {
        let connects = match &j.kind {
            JobKind::Push(p) => p.to.connects(),
            JobKind::Pull(p) => vec![&p.connect],
            _ => continue,
        };
        for connect in connects {
            if let ConnectOptions::Local { listener_name, .. } = connect {
                if !listeners.contains(&listener_name.as_str()) {
                    let known = if listeners.is_empty() {
                        "there is none".to_string()
                    } else {
                        let v: Vec<String> =
                            listeners.iter().map(|l| format!("{:?}", peer(l))).collect();
                        format!("known: {}", v.join(", "))
                    };
                    site.cx.warn(
                        &site.path.k("connect").k("listener_name"),
                        format!(
                            "no job serves the local listener {:?} ({known}): every connect of \
                             this job fails; a local connect needs a sink or source with serve \
                             type local in this configuration",
                            peer(listener_name)
                        ),
                    );
                }
            }
        }
    }
}

//! zrelay extension: `limits` of sink and source jobs, validated. Every value must be
//! positive: a zero timeout or cap would refuse every client.

use super::{Cx, R};
use crate::error::KeyPath;
use crate::model::Limits;
use crate::raw::RawLimits;
use crate::units;

/// `limits`, defaults filled in ([`Limits::default`]).
pub(super) fn limits(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawLimits>) -> R<Limits> {
    let d = Limits::default();
    let Some(r) = raw else { return Ok(d) };
    let count = |key: &str, v: Option<i64>, default: usize| -> R<usize> {
        match v {
            None => Ok(default),
            Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => Err(cx.err(&path.k(key), format!("must be at least 1, got {n}"))),
        }
    };
    let dur =
        |key: &str, v: &Option<String>, default| cx.go_duration(&path.k(key), v, default, true);
    let size = |key: &str, v: &Option<String>, default: usize| -> R<usize> {
        let Some(s) = v else { return Ok(default) };
        let n = units::parse_bytes(s).map_err(|e| cx.err(&path.k(key), e))?;
        if n < 4096 {
            return Err(cx.err(&path.k(key), format!("{s:?}: must be at least 4 KiB")));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    };
    let max_request_size = size("max_request_size", &r.max_request_size, d.max_request_size)?;
    let max_request_memory = size(
        "max_request_memory",
        &r.max_request_memory,
        d.max_request_memory,
    )?;
    if max_request_memory < max_request_size {
        return Err(cx.err(
            &path.k("max_request_memory"),
            format!(
                "must be at least max_request_size ({max_request_size} bytes), got {max_request_memory} bytes"
            ),
        ));
    }
    Ok(Limits {
        max_connections: count("max_connections", r.max_connections, d.max_connections)?,
        max_connections_per_client: count(
            "max_connections_per_client",
            r.max_connections_per_client,
            d.max_connections_per_client,
        )?,
        handshake_timeout: dur(
            "handshake_timeout",
            &r.handshake_timeout,
            d.handshake_timeout,
        )?,
        idle_timeout: dur("idle_timeout", &r.idle_timeout, d.idle_timeout)?,
        frame_timeout: dur("frame_timeout", &r.frame_timeout, d.frame_timeout)?,
        max_request_size,
        max_request_memory,
        max_estimate_concurrency: count(
            "max_estimate_concurrency",
            r.max_estimate_concurrency,
            d.max_estimate_concurrency,
        )?,
        max_steps_per_request: count(
            "max_steps_per_request",
            r.max_steps_per_request,
            d.max_steps_per_request,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::model::{JobKind, Limits};

    const SINK: &str = "jobs:\n- name: s\n  type: sink\n  serve: {type: local, listener_name: l}\n  root_fs: p/s\n";

    fn limits_of(extra: &str) -> Result<Limits, String> {
        let text = format!("{SINK}{extra}");
        let c = crate::parse_str(&text, Path::new("/etc/zrelay/zrelay.yml"))
            .map_err(|e| e.to_string())?;
        match &c.jobs[0].kind {
            JobKind::Sink(s) => Ok(s.limits.clone()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn absent_limits_are_the_defaults() {
        assert_eq!(limits_of("").unwrap(), Limits::default());
        assert_eq!(limits_of("  limits: {}\n").unwrap(), Limits::default());
    }

    #[test]
    fn each_key_is_read() {
        let l = limits_of(
            "  limits:\n    max_connections: 3\n    max_connections_per_client: 2\n    handshake_timeout: 1s\n    idle_timeout: 500ms\n    frame_timeout: 2s\n    max_request_size: 1 MiB\n    max_request_memory: 2 MiB\n    max_estimate_concurrency: 1\n    max_steps_per_request: 7\n",
        )
        .unwrap();
        assert_eq!(
            l,
            Limits {
                max_connections: 3,
                max_connections_per_client: 2,
                handshake_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_millis(500),
                frame_timeout: Duration::from_secs(2),
                max_request_size: 1 << 20,
                max_request_memory: 2 << 20,
                max_estimate_concurrency: 1,
                max_steps_per_request: 7,
            }
        );
    }

    #[test]
    fn bad_values_are_refused_at_their_key() {
        for (extra, want) in [
            (
                "  limits: {max_connections: 0}\n",
                "limits.max_connections: must be at least 1",
            ),
            ("  limits: {idle_timeout: 0s}\n", "limits.idle_timeout"),
            ("  limits: {max_request_size: 10 B}\n", "at least 4 KiB"),
            ("  limits: {frame_timeout: soon}\n", "limits.frame_timeout"),
            ("  limits: {max_conns: 1}\n", "max_conns"),
            (
                "  limits: {max_request_size: 2 MiB, max_request_memory: 1 MiB}\n",
                "must be at least max_request_size",
            ),
        ] {
            let e = limits_of(extra).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
    }
}

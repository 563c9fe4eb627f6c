//! zrelay extension: `targets` and `fan_out` of push jobs, validated.
//!
//! A push job names either zrepl's one `connect` or a list of `targets`,
//! never both. Target names are short identifiers, unique in the job, and
//! `<job>:<target>` must be a valid job name: it names the target's
//! replication cursor, step holds and last-received hold.

use std::collections::HashSet;

use zrelay_endpoint::JobId;

use super::jobs::connect;
use super::parts::{bandwidth, protection};
use super::{Cx, R};
use crate::error::KeyPath;
use crate::model::{FanOut, PushTarget, PushTargets, Replicas};
use crate::raw::{RawConnect, RawFanOut, RawReplicas, RawTarget};

/// The longest target name.
pub const MAX_TARGET_NAME: usize = 64;

/// Checks a target name: 1 to 64 bytes of `[A-Za-z0-9_.-]`.
///
/// # Errors
/// What is wrong with it, the name escaped.
pub fn check_target_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_TARGET_NAME {
        return Err(format!(
            "{:?}…: longer than {MAX_TARGET_NAME} bytes",
            name.chars().take(32).collect::<String>()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{name:?}: {c:?} is not allowed (letters, digits, '_', '.', '-')"
        ));
    }
    Ok(())
}

/// `connect` or `targets` (with `fan_out`) of the push job `job`.
pub(super) fn push_targets(
    cx: Cx<'_>,
    path: &KeyPath,
    job: &JobId,
    connect_raw: Option<&RawConnect>,
    targets: Option<&Vec<RawTarget>>,
    fan_out: Option<&RawFanOut>,
) -> R<PushTargets> {
    let (list, c) = match (targets, connect_raw) {
        (Some(_), Some(_)) => {
            return Err(cx.err(
                &path.k("targets"),
                "a push job has either `connect` (one target) or `targets`, not both",
            ))
        }
        (None, None) => {
            return Err(cx.err(
                path,
                "missing required key \"connect\" (or the zrelay extension \"targets\")",
            ))
        }
        (None, Some(c)) => {
            if fan_out.is_some() {
                return Err(cx.err(
                    &path.k("fan_out"),
                    "only a job with `targets` has `fan_out`",
                ));
            }
            return Ok(PushTargets::One(connect(cx, &path.k("connect"), c)?));
        }
        (Some(list), None) => (list, ()),
    };
    let () = c;
    if list.is_empty() {
        return Err(cx.err(&path.k("targets"), "must list at least one target"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let tp = path.k("targets").i(i);
        check_target_name(&t.name).map_err(|e| cx.err(&tp.k("name"), e))?;
        if !seen.insert(t.name.as_str()) {
            return Err(cx.err(
                &tp.k("name"),
                format!("{:?}: another target of this job has this name", t.name),
            ));
        }
        JobId::new(&format!("{job}:{}", t.name)).map_err(|e| {
            cx.err(
                &tp.k("name"),
                format!("names the target's cursor `{job}:{}`: {e}", t.name),
            )
        })?;
        out.push(PushTarget {
            name: t.name.clone(),
            connect: connect(cx, &tp.k("connect"), &t.connect)?,
            bandwidth_limit: bandwidth(cx, &tp.k("bandwidth_limit"), t.bandwidth_limit.as_ref())?,
            protection: t.protection.as_ref().map(protection),
        });
    }
    let fan_out = fan_out_config(cx, &path.k("fan_out"), fan_out, out.len())?;
    Ok(PushTargets::Many {
        targets: out,
        fan_out,
    })
}

fn fan_out_config(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawFanOut>, n: usize) -> R<FanOut> {
    let d = FanOut::defaults(n);
    let Some(r) = raw else { return Ok(d) };
    let dur =
        |key: &str, v: &Option<String>, default| cx.go_duration(&path.k(key), v, default, true);
    let concurrency = match r.concurrency {
        None => d.concurrency,
        Some(c) if c >= 1 => usize::try_from(c).unwrap_or(usize::MAX).min(n.max(1)),
        Some(c) => {
            return Err(cx.err(
                &path.k("concurrency"),
                format!("must be at least 1, got {c}"),
            ))
        }
    };
    let backoff_start = dur("backoff_start", &r.backoff_start, d.backoff_start)?;
    let backoff_max = dur("backoff_max", &r.backoff_max, d.backoff_max)?;
    if backoff_start > backoff_max {
        return Err(cx.err(
            &path.k("backoff_max"),
            format!("must be at least backoff_start ({backoff_start:?}), got {backoff_max:?}"),
        ));
    }
    let protection_grace = match &r.protection_grace {
        None => None,
        Some(_) => Some(dur(
            "protection_grace",
            &r.protection_grace,
            std::time::Duration::ZERO,
        )?),
    };
    Ok(FanOut {
        concurrency,
        health_check_interval: dur(
            "health_check_interval",
            &r.health_check_interval,
            d.health_check_interval,
        )?,
        health_check_timeout: dur(
            "health_check_timeout",
            &r.health_check_timeout,
            d.health_check_timeout,
        )?,
        backoff_start,
        backoff_max,
        protection_grace,
    })
}

/// `replicas` of a push job.
pub(super) fn replicas(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawReplicas>) -> R<Replicas> {
    let Some(r) = raw else {
        return Ok(Replicas::default());
    };
    let delete_after = match &r.delete_after {
        None => None,
        Some(_) => Some(cx.go_duration(
            &path.k("delete_after"),
            &r.delete_after,
            std::time::Duration::ZERO,
            true,
        )?),
    };
    Ok(Replicas {
        follow_renames: r.follow_renames.unwrap_or(false),
        delete_after,
    })
}

#[cfg(test)]
mod tests {
    use super::check_target_name;

    #[test]
    fn target_names_are_short_identifiers() {
        for ok in ["east", "dr-site.2", "A_b"] {
            assert_eq!(check_target_name(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("a:b", "':'"),
            ("a b", "' '"),
            ("a\nb", "'\\n'"),
            ("%", "'%'"),
        ] {
            let e = check_target_name(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let long = "x".repeat(65);
        assert!(check_target_name(&long)
            .unwrap_err()
            .contains("longer than 64"));
    }
}

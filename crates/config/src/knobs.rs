//! zrepl's environment knobs, read once at startup into the configuration
//! ([`Knobs::from_env`], installed by [`Config::set_knobs`](crate::Config::set_knobs));
//! nothing reads the environment afterwards.
//!
//! Read (their meaning exists in zrelay):
//! - `ZREPL_DESTROY_MAX_BATCH_SIZE`: at most this many snapshots per
//!   `zfs destroy` when pruning (0, the default: one destroy per filesystem).
//! - `ZREPL_MAX_HOOK_LOG_SIZE`: bytes of a hook's output kept for the log
//!   (default 1 MiB).
//! - `ZREPL_REPLICATION_MAX_ATTEMPTS`: attempts (plan + steps) of one
//!   replication invocation before it gives up on temporary errors
//!   (default 3; at least 1).
//!
//! Every other knob of zrepl 0.7 is listed in [`IGNORED_KNOBS`] with the
//! reason it is not read; `docs/zrepl-compat.md` documents both lists.
//!
//! A value that does not parse is refused, naming the variable.

/// zrepl's default of `ZREPL_REPLICATION_MAX_ATTEMPTS`.
pub const REPLICATION_MAX_ATTEMPTS_DEFAULT: u32 = 3;

/// The environment knobs, with zrepl's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// `ZREPL_DESTROY_MAX_BATCH_SIZE`.
    pub destroy_max_batch: usize,
    /// `ZREPL_MAX_HOOK_LOG_SIZE`.
    pub max_hook_log_size: usize,
    /// `ZREPL_REPLICATION_MAX_ATTEMPTS` (at least 1).
    pub replication_max_attempts: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            destroy_max_batch: 0,
            max_hook_log_size: zrelay_snapshot::hooks::MAX_HOOK_LOG_SIZE_DEFAULT,
            replication_max_attempts: REPLICATION_MAX_ATTEMPTS_DEFAULT,
        }
    }
}

/// zrepl 0.7's knobs that zrelay does not read, with the reason. The
/// binary warns about any of them that is set.
pub const IGNORED_KNOBS: &[(&str, &str)] = &[
    ("ZREPL_REPLICATION_RECONNECT_HARD_FAIL_TIMEOUT", "no separate reconnect phase: a lost connection fails the attempt as a temporary error, retried within ZREPL_REPLICATION_MAX_ATTEMPTS"),
    ("ZREPL_PRUNER_RETRY_INTERVAL", "not wired: zrelay's pruner has no configurable retry interval"),
    ("ZREPL_ZFS_MAX_HOLD_TAG_LEN", "fixed at OpenZFS's limit of 255 bytes (zrelay_endpoint::abstractions::MAX_HOLD_TAG_LEN)"),
    ("ZREPL_ZFS_SEND_STDERR_MAX_CAPTURE_SIZE", "zrelay keeps a fixed-size tail of zfs's stderr"),
    ("ZREPL_ZFS_SEND_SIZE_ESTIMATE_INCORRECT_THRESHOLD", "zrelay does not second-guess zfs's size estimates"),
    ("ZREPL_ENDPOINT_RECV_PEEK_SIZE", "zrelay does not peek into the send stream"),
    ("ZREPL_ENDPOINT_DISABLE_PLACEHOLDER_RESTORATION", "not supported: placeholders are always restored as in zrepl's default"),
    ("ZREPL_ENDPOINT_LIST_ABSTRACTIONS_QUERY_CREATETXG_RANGE_BOUND_ALLOW_0", "a debugging switch of zrepl's listing code"),
    ("ZREPL_EXPERIMENTAL_ZFS_SEND_RESUME_SUPPORTED", "zrelay requires OpenZFS 2.x, which always supports resumable send"),
    ("ZREPL_EXPERIMENTAL_ZFS_ENCRYPTION_CLI_SUPPORTED", "zrelay requires OpenZFS 2.x, which always has encryption"),
    ("ZREPL_EXPERIMENTAL_ZFS_COMMA_SYNTAX_SUPPORTED", "zrelay requires OpenZFS 2.x, which always has the comma syntax"),
    ("ZREPL_ZFS_RESUME_RECV_POOL_SUPPORT_RECHECK_TIMEOUT", "not wired"),
    ("ZREPL_RPC_CLIENT_VERSIONHANDSHAKE_TIMEOUT", "not wired; a serving job's handshake timeout is the zrelay extension `limits.handshake_timeout`"),
    ("ZREPL_RPC_SERVER_VERSIONHANDSHAKE_TIMEOUT", "not wired; a serving job's handshake timeout is the zrelay extension `limits.handshake_timeout`"),
    ("ZREPL_RPC_DATACONN_PING_SLEEP", "zrelay's protocol has no separate data connection"),
    ("ZREPL_TRANSPORT_MUX_TIMEOUT", "zrelay's protocol has no connection multiplexer"),
    ("ZREPL_TRANSPORT_DEMUX_TIMEOUT", "zrelay's protocol has no connection multiplexer"),
    ("ZREPL_DAEMON_CONTROL_SERVER_READ_TIMEOUT", "not wired: the control socket's timeouts are fixed"),
    ("ZREPL_DAEMON_CONTROL_SERVER_WRITE_TIMEOUT", "not wired: the control socket's timeouts are fixed"),
    ("ZREPL_SNAPPER_SYNCUP_WARN_MIN_DURATION", "not wired: a logging threshold of zrepl's snapshotter"),
    ("ZREPL_WALLCLOCKTIMER_MAX_DELAY", "not wired"),
    ("ZREPL_TRACE_ID_NUM_BYTES", "not wired: zrelay's logs have no trace ids"),
    ("ZREPL_TRACE_DEBUG_ENABLED", "a debugging switch of zrepl's tracing"),
    ("ZREPL_ACTIVITY_TRACE", "use ZRELAY_CHROME_TRACE=FILE"),
    ("ZREPL_DAEMON_AUTOSTART_PPROF_SERVER", "zrelay has no pprof server"),
];

/// A knob whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value}: {reason}")]
pub struct KnobError {
    /// The variable.
    pub name: &'static str,
    /// Its value, escaped and truncated.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl Knobs {
    /// The knobs from `lookup` (the binary passes the process environment,
    /// tests a map); unset variables keep their defaults.
    ///
    /// # Errors
    /// A set variable whose value is not a non-negative integer, or
    /// `ZREPL_REPLICATION_MAX_ATTEMPTS` of 0.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Knobs, KnobError> {
        let mut k = Knobs::default();
        let refuse = |name: &'static str, v: &str, reason: String| KnobError {
            name,
            value: zrelay_zfs::peer_text::show(v, zrelay_zfs::peer_text::PEER_TEXT_MAX),
            reason,
        };
        let int = |name: &'static str, default: usize, min: usize| -> Result<usize, KnobError> {
            let Some(v) = lookup(name) else {
                return Ok(default);
            };
            let n: usize = v
                .trim()
                .parse()
                .map_err(|e| refuse(name, &v, format!("not a non-negative integer ({e})")))?;
            if n < min {
                return Err(refuse(name, &v, format!("must be at least {min}")));
            }
            Ok(n)
        };
        k.destroy_max_batch = int("ZREPL_DESTROY_MAX_BATCH_SIZE", k.destroy_max_batch, 0)?;
        k.max_hook_log_size = int("ZREPL_MAX_HOOK_LOG_SIZE", k.max_hook_log_size, 0)?;
        let attempts = int(
            "ZREPL_REPLICATION_MAX_ATTEMPTS",
            k.replication_max_attempts as usize,
            1,
        )?;
        k.replication_max_attempts = u32::try_from(attempts).map_err(|_| {
            refuse(
                "ZREPL_REPLICATION_MAX_ATTEMPTS",
                &attempts.to_string(),
                format!("must be at most {}", u32::MAX),
            )
        })?;
        Ok(k)
    }

    /// The knobs of [`IGNORED_KNOBS`] that `lookup` finds set, with why
    /// zrelay ignores them (the binary logs a warning for each).
    pub fn ignored_set(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Vec<(&'static str, &'static str)> {
        IGNORED_KNOBS
            .iter()
            .copied()
            .filter(|(name, _)| lookup(name).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |n| (n == name).then(|| value.to_string())
    }

    #[test]
    fn knobs_default_parse_and_refuse_naming_the_variable() {
        assert_eq!(Knobs::from_env(|_| None).unwrap(), Knobs::default());
        let k = Knobs::from_env(one("ZREPL_DESTROY_MAX_BATCH_SIZE", " 50 ")).unwrap();
        assert_eq!(k.destroy_max_batch, 50);
        assert_eq!(k.max_hook_log_size, 1 << 20);
        let e = Knobs::from_env(one("ZREPL_MAX_HOOK_LOG_SIZE", "1M\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ZREPL_MAX_HOOK_LOG_SIZE") && e.contains("1M\\n"),
            "{e}"
        );
    }

    #[test]
    fn replication_max_attempts_defaults_to_3_parses_and_refuses_0_and_junk() {
        assert_eq!(Knobs::default().replication_max_attempts, 3);
        let k = Knobs::from_env(one("ZREPL_REPLICATION_MAX_ATTEMPTS", "7")).unwrap();
        assert_eq!(k.replication_max_attempts, 7);
        assert_eq!(k.destroy_max_batch, 0);
        for bad in ["0", "-1", "three", "99999999999"] {
            let e = Knobs::from_env(one("ZREPL_REPLICATION_MAX_ATTEMPTS", bad))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("environment variable ZREPL_REPLICATION_MAX_ATTEMPTS="),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn ignored_knobs_are_reported_when_set_and_never_overlap_the_read_ones() {
        assert!(Knobs::ignored_set(|_| None).is_empty());
        let set = Knobs::ignored_set(one("ZREPL_PRUNER_RETRY_INTERVAL", "5s"));
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].0, "ZREPL_PRUNER_RETRY_INTERVAL");
        for (name, why) in IGNORED_KNOBS {
            assert!(name.starts_with("ZREPL_") && !why.is_empty());
            // A read knob must not be listed as ignored.
            assert_eq!(
                Knobs::from_env(one(name, "junk")),
                Ok(Knobs::default()),
                "{name}"
            );
        }
    }
}

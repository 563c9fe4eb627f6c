//! zrepl's environment knobs, read once at startup into the configuration
//! ([`Knobs::from_env`]); nothing reads the environment afterwards.
//!
//! - `ZREPL_DESTROY_MAX_BATCH_SIZE`: at most this many snapshots per
//!   `zfs destroy` when pruning (0, the default: one destroy per filesystem).
//! - `ZREPL_MAX_HOOK_LOG_SIZE`: bytes of a hook's output kept for the log
//!   (default 1 MiB).
//!
//! A value that does not parse is refused, naming the variable.

/// The environment knobs, with zrepl's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// `ZREPL_DESTROY_MAX_BATCH_SIZE`.
    pub destroy_max_batch: usize,
    /// `ZREPL_MAX_HOOK_LOG_SIZE`.
    pub max_hook_log_size: usize,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            destroy_max_batch: 0,
            max_hook_log_size: zrelay_snapshot::hooks::MAX_HOOK_LOG_SIZE_DEFAULT,
        }
    }
}

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
    /// A set variable whose value is not a non-negative integer.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Knobs, KnobError> {
        let mut k = Knobs::default();
        let int = |name: &'static str, default: usize| -> Result<usize, KnobError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|e| KnobError {
                    name,
                    value: zrelay_zfs::peer_text::show(&v, zrelay_zfs::peer_text::PEER_TEXT_MAX),
                    reason: format!("not a non-negative integer ({e})"),
                }),
            }
        };
        k.destroy_max_batch = int("ZREPL_DESTROY_MAX_BATCH_SIZE", k.destroy_max_batch)?;
        k.max_hook_log_size = int("ZREPL_MAX_HOOK_LOG_SIZE", k.max_hook_log_size)?;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_default_parse_and_refuse_naming_the_variable() {
        assert_eq!(Knobs::from_env(|_| None).unwrap(), Knobs::default());
        let k = Knobs::from_env(|n| (n == "ZREPL_DESTROY_MAX_BATCH_SIZE").then(|| " 50 ".into()))
            .unwrap();
        assert_eq!(k.destroy_max_batch, 50);
        assert_eq!(k.max_hook_log_size, 1 << 20);
        let e = Knobs::from_env(|n| (n == "ZREPL_MAX_HOOK_LOG_SIZE").then(|| "1M\n".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ZREPL_MAX_HOOK_LOG_SIZE") && e.contains("1M\\n"),
            "{e}"
        );
    }
}

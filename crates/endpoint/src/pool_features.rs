//! The pool feature flags an endpoint needs, checked once per pool.
//!
//! Invariants:
//! - A pool that passed is not checked again for the endpoint's lifetime; a
//!   pool that failed is checked again next time (the operator may have
//!   enabled the feature meanwhile).
//! - A ZFS that cannot read feature flags ([`ZfsError::Unsupported`]), or a
//!   failed read, does not block replication: the command that needs the
//!   feature then fails with OpenZFS's own error. Only a feature reported
//!   `disabled` is refused, by name, with the command that enables it.

use std::collections::HashSet;
use std::sync::Mutex;

use tracing::warn;
use zrelay_zfs::parse::FeatureState;
use zrelay_zfs::Zfs;

use crate::error::{EndpointError, Result};

/// `(feature, what needs it)` of a sending pool.
pub const SENDER_NEEDS: &[(&str, &str)] = &[(
    "bookmarks",
    "zrelay's replication cursor (zrepl's) is a bookmark",
)];

/// The pools that passed.
#[derive(Debug, Default)]
pub struct PoolChecks {
    passed: Mutex<HashSet<String>>,
}

impl PoolChecks {
    /// Check `pool` for `needs` unless it passed before.
    pub async fn check(
        &self,
        zfs: &dyn Zfs,
        pool: &str,
        needs: &'static [(&'static str, &'static str)],
    ) -> Result<()> {
        if self.passed.lock().unwrap().contains(pool) {
            return Ok(());
        }
        let features = match zfs.pool_features(pool).await {
            Ok(f) => f,
            Err(zrelay_zfs::ZfsError::Unsupported(_)) => return Ok(()),
            Err(e) => {
                warn!(pool, error = %e, "cannot read the pool's feature flags; going on without the check");
                return Ok(());
            }
        };
        for (feature, needed_for) in needs {
            if features.get(*feature) == Some(&FeatureState::Disabled) {
                return Err(EndpointError::PoolFeature {
                    pool: pool.to_string(),
                    feature,
                    needed_for,
                });
            }
        }
        self.passed.lock().unwrap().insert(pool.to_string());
        Ok(())
    }
}

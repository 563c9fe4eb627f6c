//! Cron expressions as zrepl accepts them (robfig/cron v3, optional seconds
//! field, no descriptors), implemented by the snapshotter
//! ([`zrelay_snapshot::cron`], which also computes fire times) and
//! re-exported here for validation.

pub use zrelay_snapshot::cron::*;

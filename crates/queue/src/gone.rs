//! Sources gone: for replica deletion, when each receiver-only filesystem of
//! a job's target was first seen with its source destroyed. The grace period
//! counts from then, across restarts.
//!
//! Invariant: after [`Queue::observe_gone`] the table holds exactly the
//! filesystems of that call for its (job, target), each with the time it was
//! first observed in an unbroken run of observations. A filesystem that
//! comes back (or whose replica went) loses its row, so a later loss starts
//! a new grace period.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::params;
use zrelay_zfs::DatasetPath;

use crate::error::Result;
use crate::model::{JobId, TargetName};
use crate::{sql, Queue};

impl Queue {
    /// Records that `gone` is the whole set of (job, target)'s receiver-only
    /// filesystems whose source is gone at `now` (the caller's clock, the
    /// one its grace period is measured on), and returns when each was
    /// first seen so.
    pub async fn observe_gone(
        &self,
        job: &JobId,
        target: &TargetName,
        gone: &[DatasetPath],
        now: SystemTime,
    ) -> Result<BTreeMap<DatasetPath, SystemTime>> {
        let (job, target, gone) = (
            job.as_str().to_string(),
            target.as_str().to_string(),
            gone.to_vec(),
        );
        self.tx("observe gone sources", move |tx, ctx| {
            let fail = ctx.sql("observe gone sources");
            let mut out = BTreeMap::new();
            let mut stmt = tx
                .prepare(
                    "SELECT filesystem, since FROM gone_sources WHERE job = ?1 AND target = ?2",
                )
                .map_err(&fail)?;
            let rows = stmt
                .query_map(params![job, target], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(&fail)?;
            let mut known = BTreeMap::new();
            for row in rows {
                let (fs, since) = row.map_err(&fail)?;
                known.insert(fs, since);
            }
            drop(stmt);
            for fs in &gone {
                let since = match known.remove(fs.as_str()) {
                    Some(ms) => ms,
                    None => {
                        let ms = sql::to_ms(now);
                        tx.execute(
                            "INSERT INTO gone_sources (job, target, filesystem, since) VALUES (?1, ?2, ?3, ?4)",
                            params![job, target, fs.as_str(), ms],
                        )
                        .map_err(&fail)?;
                        ms
                    }
                };
                out.insert(fs.clone(), sql::from_ms(since));
            }
            for fs in known.keys() {
                tx.execute(
                    "DELETE FROM gone_sources WHERE job = ?1 AND target = ?2 AND filesystem = ?3",
                    params![job, target, fs],
                )
                .map_err(&fail)?;
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::{ManualClock, Policy};

    fn p(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    #[tokio::test]
    async fn first_sighting_is_kept_until_the_source_is_back() {
        let dir = tempfile::tempdir().unwrap();
        // The queue's own clock stands elsewhere: first sightings are the
        // caller's times.
        let clock = Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(9_999_999),
        ));
        let q = Queue::open(
            dir.path().join("q.sqlite"),
            Policy::default(),
            clock.clone(),
        )
        .await
        .unwrap();
        let (job, t) = (JobId::new("j").unwrap(), TargetName::new("east").unwrap());
        let other = TargetName::new("west").unwrap();
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let got = q
            .observe_gone(&job, &t, &[p("a/x")], at(1_000))
            .await
            .unwrap();
        assert_eq!(got[&p("a/x")], at(1_000));
        let got = q
            .observe_gone(&job, &t, &[p("a/x"), p("a/y")], at(1_060))
            .await
            .unwrap();
        assert_eq!(got[&p("a/x")], at(1_000), "the first sighting counts");
        assert_eq!(got[&p("a/y")], at(1_060));
        assert!(q
            .observe_gone(&job, &other, &[], at(1_060))
            .await
            .unwrap()
            .is_empty());
        // a/x is back: its grace starts over when it goes again
        let got = q
            .observe_gone(&job, &t, &[p("a/y")], at(1_120))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        let got = q
            .observe_gone(&job, &t, &[p("a/x"), p("a/y")], at(1_120))
            .await
            .unwrap();
        assert_eq!(got[&p("a/x")], at(1_120));
        assert_eq!(got[&p("a/y")], at(1_060));
        drop(q);
        // durable
        let q = Queue::open(dir.path().join("q.sqlite"), Policy::default(), clock)
            .await
            .unwrap();
        let got = q
            .observe_gone(&job, &t, &[p("a/y")], at(1_180))
            .await
            .unwrap();
        assert_eq!(got[&p("a/y")], at(1_060));
    }
}

//! The sender's cache of send arguments validated for size estimates, reused by the
//! send of the identical step.
//!
//! Invariants:
//! - It holds at most its capacity of entries: inserting into a full cache evicts the
//!   oldest entry first (insertion order), so a client that estimates many steps and
//!   never sends them costs a bounded amount of memory.
//! - An entry older than the time to live is never returned, and expired entries are
//!   dropped on every insert as well as on every take.
//! - Re-inserting a key replaces its entry and makes it the newest.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A bounded, expiring map from step keys to validated values.
#[derive(Debug)]
pub(crate) struct ValidationCache<V> {
    cap: usize,
    ttl: Duration,
    /// Key → (insertion sequence, when, value).
    map: HashMap<String, (u64, Instant, V)>,
    /// Insertion order: (sequence, key); stale pairs (re-inserted or taken keys) are
    /// skipped when found.
    order: VecDeque<(u64, String)>,
    seq: u64,
}

impl<V> ValidationCache<V> {
    pub(crate) fn new(cap: usize, ttl: Duration) -> Self {
        ValidationCache {
            cap: cap.max(1),
            ttl,
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Drop the oldest entries while they are expired, or while `room_for` more would
    /// not fit.
    fn trim(&mut self, now: Instant, room_for: usize) {
        while let Some((seq, key)) = self.order.front() {
            let live = self.map.get(key).is_some_and(|(s, _, _)| s == seq);
            if !live {
                self.order.pop_front();
                continue;
            }
            let expired = self
                .map
                .get(key)
                .is_some_and(|(_, t, _)| now.duration_since(*t) >= self.ttl);
            if expired || self.map.len() + room_for > self.cap {
                let (_, key) = self.order.pop_front().expect("front exists");
                self.map.remove(&key);
                continue;
            }
            break;
        }
    }

    pub(crate) fn insert_at(&mut self, key: String, v: V, now: Instant) {
        if self.map.contains_key(&key) {
            self.map.remove(&key);
        }
        self.trim(now, 1);
        self.seq += 1;
        self.order.push_back((self.seq, key.clone()));
        self.map.insert(key, (self.seq, now, v));
    }

    pub(crate) fn insert(&mut self, key: String, v: V) {
        self.insert_at(key, v, Instant::now());
    }

    /// Remove and return the entry of `key` if it has not expired.
    pub(crate) fn take_at(&mut self, key: &str, now: Instant) -> Option<V> {
        self.trim(now, 0);
        let (_, t, v) = self.map.remove(key)?;
        (now.duration_since(t) < self.ttl).then_some(v)
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<V> {
        self.take_at(key, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_cache_evicts_the_oldest() {
        let mut c = ValidationCache::new(3, Duration::from_secs(600));
        let t = Instant::now();
        for i in 0..10 {
            c.insert_at(format!("k{i}"), i, t);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.take_at("k6", t), None);
        assert_eq!(c.take_at("k7", t), Some(7));
        assert_eq!(c.take_at("k9", t), Some(9));
        // Re-inserting makes a key the newest.
        c.insert_at("a".into(), 1, t);
        c.insert_at("b".into(), 2, t);
        c.insert_at("a".into(), 3, t);
        c.insert_at("c".into(), 4, t);
        c.insert_at("d".into(), 5, t);
        assert_eq!(c.len(), 3);
        assert_eq!(c.take_at("b", t), None, "b was the oldest");
        assert_eq!(c.take_at("a", t), Some(3));
    }

    #[test]
    fn expired_entries_are_dropped_and_never_returned() {
        let mut c = ValidationCache::new(100, Duration::from_secs(10));
        let t = Instant::now();
        c.insert_at("old".into(), 1, t);
        c.insert_at("new".into(), 2, t + Duration::from_secs(5));
        assert_eq!(c.take_at("old", t + Duration::from_secs(11)), None);
        assert_eq!(c.len(), 1);
        c.insert_at("x".into(), 3, t + Duration::from_secs(16));
        assert_eq!(c.len(), 1, "new expired on insert");
    }
}

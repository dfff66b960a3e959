//! This process's counters: the `memory` backend, and the fallback when Redis is down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Count;

/// Entries kept at most; expired ones are swept first, then all (fail open).
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub struct Local {
    entries: Mutex<HashMap<String, (i64, Instant)>>,
}

impl Local {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (i64, Instant)>, Instant) -> T) -> T {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        f(&mut entries, now)
    }

    pub fn hit(&self, key: &str, window: Duration) -> Count {
        self.with(|entries, now| {
            let entry = entries.entry(key.to_string()).or_insert((0, now + window));
            if entry.1 <= now {
                *entry = (0, now + window);
            }
            entry.0 += 1;
            Count {
                value: entry.0.max(0) as u64,
                reset_in: entry.1 - now,
            }
        })
    }

    pub fn peek(&self, key: &str) -> Count {
        self.with(|entries, now| match entries.get(key) {
            Some((value, until)) if *until > now => Count {
                value: (*value).max(0) as u64,
                reset_in: *until - now,
            },
            _ => Count {
                value: 0,
                reset_in: Duration::ZERO,
            },
        })
    }

    pub fn add(&self, key: &str, delta: i64, ttl: Duration) -> i64 {
        self.with(|entries, now| {
            let entry = entries.entry(key.to_string()).or_insert((0, now + ttl));
            if entry.1 <= now {
                entry.0 = 0;
            }
            entry.0 = (entry.0 + delta).max(0);
            entry.1 = now + ttl;
            entry.0
        })
    }

    pub fn set(&self, key: &str, value: i64, ttl: Duration) {
        self.with(|entries, now| entries.insert(key.to_string(), (value, now + ttl)));
    }

    pub fn get(&self, key: &str) -> Option<i64> {
        self.with(|entries, now| {
            entries
                .get(key)
                .filter(|(_, until)| *until > now)
                .map(|(v, _)| *v)
        })
    }
}

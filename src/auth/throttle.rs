//! Brute-force throttling: after `max_failures` failed logins from one client address
//! within `window`, that address gets 429 until the window ends, without any bcrypt work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; past that, expired entries are dropped, then all.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
}

/// Failure counts per client address.
pub struct Throttle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    /// `max_failures` 0 disables throttling.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `ip` is blocked now.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        if self.max_failures == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&ip)?;
        let ends = entry.window_start + self.window;
        let now = Instant::now();
        (entry.failures >= self.max_failures && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    /// Counts a failed login from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&ip) {
            let window = self.window;
            entries.retain(|_, e| now < e.window_start + window);
            if entries.len() >= MAX_TRACKED {
                entries.clear();
            }
        }
        let entry = entries.entry(ip).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        if now >= entry.window_start + self.window {
            *entry = Entry {
                failures: 0,
                window_start: now,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// A successful login from `ip` clears its count.
    pub fn record_success(&self, ip: IpAddr) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "192.0.2.1";

    #[test]
    fn blocks_after_max_failures_within_the_window() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let ip = IP.parse().unwrap();
        for _ in 0..2 {
            t.record_failure(ip);
        }
        assert_eq!(t.blocked_for(ip), None);
        t.record_failure(ip);
        let wait = t.blocked_for(ip).expect("blocked");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            t.blocked_for("192.0.2.2".parse().unwrap()),
            None,
            "other addresses are not affected"
        );
    }

    #[test]
    fn window_expiry_and_success_reset() {
        let t = Throttle::new(2, Duration::from_millis(30));
        let ip = IP.parse().unwrap();
        t.record_failure(ip);
        t.record_failure(ip);
        assert!(t.blocked_for(ip).is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(t.blocked_for(ip), None);
        t.record_failure(ip);
        t.record_success(ip);
        t.record_failure(ip);
        assert_eq!(t.blocked_for(ip), None);
    }

    #[test]
    fn zero_disables() {
        let t = Throttle::new(0, Duration::from_secs(60));
        let ip = IP.parse().unwrap();
        for _ in 0..100 {
            t.record_failure(ip);
        }
        assert_eq!(t.blocked_for(ip), None);
    }
}

//! Brute-force throttling: after `max_failures` failed logins from one client address
//! within `window`, that address gets 429 until the window ends, without any bcrypt work.
//!
//! A password check takes a [`Reservation`] *before* bcrypt runs, so at most
//! `max_failures` checks are in progress or done for one address per window: the 41st of
//! 40 parallel wrong passwords never reaches bcrypt. A check that finds every slot taken by
//! checks still running waits for one of them to end (a client opening several connections
//! with a correct password is not refused; the others then hit the credential cache).
//!
//! A wrong password sent again is not another guess: clients repeat their credentials on
//! every request and retry refusals (containerd tries each request up to five times), so
//! one mistyped password would otherwise use up the address's allowance at once and lock
//! out the right password that follows. Each address keeps the fingerprints of the
//! credentials that failed in its window ([`Guess`], a keyed hash made by the password
//! checker); a repeat is refused without a check and without counting.
//!
//! IPv6 clients are counted by their /64, as one host usually owns a whole /64. The table is
//! bounded: when full, expired entries go first, then the oldest addresses that are not
//! blocked. A blocked address is never forgotten before its window ends; when the table is
//! full of blocked addresses, new addresses share one overflow counter (fail closed).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Addresses tracked at most.
const MAX_TRACKED: usize = 100_000;
/// A full table is swept down to this many entries, so sweeps are rare.
const SWEEP_TO: usize = MAX_TRACKED * 9 / 10;
/// A sweep that freed nothing is not repeated sooner than this.
const SWEEP_PAUSE: Duration = Duration::from_secs(1);

/// What failures are counted against: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    /// Shared by new addresses while the table is full of blocked ones.
    Overflow,
}

impl Key {
    fn of(ip: IpAddr) -> Key {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        };
        Key::Address(ip)
    }
}

/// A keyed fingerprint of the credentials a check is for (and of the password file they
/// were checked against), never the credentials themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guess(pub u64);

#[derive(Debug)]
struct Entry {
    /// Failed checks in this window.
    failures: u32,
    /// The guesses that failed in this window (at most `max_failures` of them: one more
    /// blocks the address).
    refused: Vec<Guess>,
    /// Checks holding a reservation now.
    pending: u32,
    window_start: Instant,
    last_seen: Instant,
    /// Woken when a pending check ends.
    ended: Arc<Notify>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            refused: Vec::new(),
            pending: 0,
            window_start: now,
            last_seen: now,
            ended: Arc::new(Notify::new()),
        }
    }
}

#[derive(Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// No sweep before this instant (the last one freed nothing).
    next_sweep: Option<Instant>,
}

/// Failure counts per client address.
pub struct Throttle {
    max_failures: u32,
    window: Duration,
    table: Mutex<Table>,
}

/// A password check allowed to run; tell it how it ended. Dropped without an answer (the
/// check was busy or the request went away), it frees its slot without counting.
#[must_use]
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    key: Option<Key>,
}

impl Reservation<'_> {
    /// The password was right: the address's failures are forgiven.
    pub fn succeeded(mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.end(key, |e| {
                e.failures = 0;
                e.refused.clear();
            });
        }
    }

    /// The password was wrong: one more failure, unless `guess` already failed in this
    /// window (the same credentials checked twice at once).
    pub fn failed(mut self, guess: Guess) {
        if let Some(key) = self.key.take() {
            self.throttle.end(key, |e| {
                if !e.refused.contains(&guess) {
                    e.refused.push(guess);
                    e.failures = e.failures.saturating_add(1);
                }
            });
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.end(key, |_| {});
        }
    }
}

impl Throttle {
    /// Failures allowed per window (0: throttling off), and the window.
    pub fn limits(&self) -> (u32, Duration) {
        (self.max_failures, self.window)
    }

    /// `max_failures` 0 disables throttling.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one password check from `ip` (none needed when `ip` is unknown), or
    /// `Err(seconds to wait)` when the address is blocked. Waits while every remaining slot
    /// is held by a check still running.
    pub async fn reserve(&self, ip: Option<IpAddr>) -> Result<Reservation<'_>, u64> {
        let Some(ip) = ip.filter(|_| self.max_failures > 0) else {
            return Ok(Reservation {
                throttle: self,
                key: None,
            });
        };
        loop {
            let ended;
            let notified = {
                let mut table = self.lock();
                let now = Instant::now();
                let key = self.track(&mut table, Key::of(ip), now);
                let entry = self.current(&mut table, key, now);
                if entry.failures >= self.max_failures {
                    return Err(self.wait_of(entry, now));
                }
                if entry.failures + entry.pending < self.max_failures {
                    entry.pending += 1;
                    return Ok(Reservation {
                        throttle: self,
                        key: Some(key),
                    });
                }
                ended = Arc::clone(&entry.ended);
                ended.notified()
            };
            notified.await;
        }
    }

    /// Whether `guess` failed from `ip` in the current window: refuse it again without a
    /// check, and without counting it.
    pub fn already_refused(&self, ip: Option<IpAddr>, guess: Guess) -> bool {
        let Some(ip) = ip.filter(|_| self.max_failures > 0) else {
            return false;
        };
        let table = self.lock();
        table.entries.get(&Key::of(ip)).is_some_and(|entry| {
            Instant::now() < entry.window_start + self.window && entry.refused.contains(&guess)
        })
    }

    /// Counts a failure that needed no check (a malformed `Authorization` header).
    pub fn record_failure(&self, ip: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let mut table = self.lock();
        let now = Instant::now();
        let key = self.track(&mut table, Key::of(ip), now);
        let entry = self.current(&mut table, key, now);
        entry.failures = entry.failures.saturating_add(1);
    }

    /// `Some(seconds to wait)` when `ip` is blocked now.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        if self.max_failures == 0 {
            return None;
        }
        let table = self.lock();
        let now = Instant::now();
        let entry = table.entries.get(&Key::of(ip))?;
        self.is_blocked(entry, now)
            .then(|| self.wait_of(entry, now))
    }

    /// Addresses (or /64s) tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().entries.len()
    }

    fn is_blocked(&self, entry: &Entry, now: Instant) -> bool {
        entry.failures >= self.max_failures && now < entry.window_start + self.window
    }

    fn wait_of(&self, entry: &Entry, now: Instant) -> u64 {
        (entry.window_start + self.window)
            .saturating_duration_since(now)
            .as_secs()
            .max(1)
    }

    /// The entry for `key`, its window restarted when the last one is over.
    fn current<'t>(&self, table: &'t mut Table, key: Key, now: Instant) -> &'t mut Entry {
        let entry = table.entries.entry(key).or_insert_with(|| Entry::new(now));
        if now >= entry.window_start + self.window {
            entry.failures = 0;
            entry.refused.clear();
            entry.window_start = now;
        }
        entry.last_seen = now;
        entry
    }

    /// The key to count `key` under: itself when it has room in the table (sweeping a full
    /// table first), the shared overflow counter otherwise.
    fn track(&self, table: &mut Table, key: Key, now: Instant) -> Key {
        if table.entries.contains_key(&key) || table.entries.len() < MAX_TRACKED {
            return key;
        }
        if table.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(table, now);
        }
        if table.entries.len() < MAX_TRACKED {
            key
        } else {
            Key::Overflow
        }
    }

    /// Drops expired entries, then the least recently seen unblocked ones, down to
    /// [`SWEEP_TO`]. Entries with checks running and blocked ones stay.
    fn sweep(&self, table: &mut Table, now: Instant) {
        let window = self.window;
        table
            .entries
            .retain(|_, e| e.pending > 0 || now < e.window_start + window);
        let excess = table.entries.len().saturating_sub(SWEEP_TO);
        if excess > 0 {
            let mut evictable: Vec<(Instant, Key)> = table
                .entries
                .iter()
                .filter(|(_, e)| e.pending == 0 && !self.is_blocked(e, now))
                .map(|(k, e)| (e.last_seen, *k))
                .collect();
            let take = excess.min(evictable.len());
            if take > 0 && take < evictable.len() {
                evictable.select_nth_unstable_by_key(take, |(seen, _)| *seen);
            }
            for (_, key) in evictable.into_iter().take(take) {
                table.entries.remove(&key);
            }
        }
        table.next_sweep = (table.entries.len() >= MAX_TRACKED).then(|| now + SWEEP_PAUSE);
    }

    /// A reserved check ended: apply `outcome`, free the slot, wake the waiters.
    fn end(&self, key: Key, outcome: impl FnOnce(&mut Entry)) {
        let mut table = self.lock();
        let Some(entry) = table.entries.get_mut(&key) else {
            return;
        };
        entry.pending = entry.pending.saturating_sub(1);
        outcome(entry);
        entry.ended.notify_waiters();
        if entry.pending == 0 && entry.failures == 0 {
            table.entries.remove(&key);
        }
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;

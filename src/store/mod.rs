//! Counters every replica shares: failed logins, pull limits, uploads in progress, and
//! revoked refresh tokens (`[state]`).
//!
//! With `backend = "memory"` they live in this process. With `"redis"` they live in Redis
//! (or Valkey), each change one atomic script call ([`redis`]), so replicas never
//! double-count or lose counts. When Redis cannot be reached, every operation falls back
//! to this process's own counters at once (requests keep being served; a limit then counts
//! per replica), the failure is logged and counted, and Redis is tried again a second
//! later; when it answers, the replicas share again.

mod local;
mod redis;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::stats::render_counter;
pub use local::Local;

/// How long Redis is left alone after it failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// `[state]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateSettings {
    Memory,
    Redis(RedisSettings),
}

/// `[state] backend = "redis"`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL, the password put in.
    pub url: String,
    pub prefix: String,
    pub timeout: Duration,
    /// PEM roots for `rediss://`, when not the system's.
    pub ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.url.split_once('@') {
            Some((scheme_user, rest)) => format!(
                "{}:<redacted>@{rest}",
                scheme_user.split(':').take(2).collect::<Vec<_>>().join(":")
            ),
            None => self.url.clone(),
        };
        write!(
            f,
            "redis {shown} prefix={} timeout={:?}",
            self.prefix, self.timeout
        )
    }
}

/// A counter's value and when its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub value: u64,
    /// Until the window ends (zero: no window running).
    pub reset_in: Duration,
}

/// The shared state, and this process's fallback.
pub struct Store {
    redis: Option<redis::Redis>,
    local: Local,
    /// Redis failed at this time; operations stay local until [`RETRY_AFTER`] has passed.
    failed_at: Mutex<Option<Instant>>,
    up: AtomicBool,
    errors: AtomicU64,
    calls: AtomicU64,
}

impl Store {
    pub fn new(settings: &StateSettings) -> Store {
        let redis = match settings {
            StateSettings::Memory => None,
            StateSettings::Redis(r) => Some(redis::Redis::start(r.clone())),
        };
        Store {
            up: AtomicBool::new(redis.is_some()),
            redis,
            local: Local::default(),
            failed_at: Mutex::new(None),
            errors: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// This process's counters only.
    pub fn memory() -> Store {
        Store::new(&StateSettings::Memory)
    }

    /// Whether counters are shared with other replicas (Redis configured).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one more in `key`'s window (a new window of `window` starts when none runs).
    pub async fn hit(&self, key: &str, window: Duration) -> Count {
        if let Some(redis) = self.usable() {
            if let Some(count) = self.shared(redis.hit(key, window)).await {
                return count;
            }
        }
        self.local.hit(key, window)
    }

    /// `key`'s count without counting.
    pub async fn peek(&self, key: &str) -> Count {
        if let Some(redis) = self.usable() {
            if let Some(count) = self.shared(redis.peek(key)).await {
                return count;
            }
        }
        self.local.peek(key)
    }

    /// Adds `delta` to gauge `key` (kept `ttl` after its last change); its new value.
    pub async fn add(&self, key: &str, delta: i64, ttl: Duration) -> i64 {
        if let Some(redis) = self.usable() {
            if let Some(value) = self.shared(redis.add(key, delta, ttl)).await {
                return value;
            }
        }
        self.local.add(key, delta, ttl)
    }

    /// Sets `key` to `value` for `ttl`, here and (when reachable) in Redis.
    pub async fn set(&self, key: &str, value: i64, ttl: Duration) {
        self.local.set(key, value, ttl);
        if let Some(redis) = self.usable() {
            self.shared(redis.set(key, value, ttl)).await;
        }
    }

    /// Like [`Store::set`], without waiting for Redis (from code that cannot wait: a file
    /// re-read on the request path or by the reload thread).
    pub fn set_detached(&self, key: &str, value: i64, ttl: Duration) {
        self.local.set(key, value, ttl);
        if let Some(redis) = &self.redis {
            redis.set_detached(key, value, ttl);
        }
    }

    /// `key`'s value, from Redis when reachable, else as this process set it.
    pub async fn get(&self, key: &str) -> Option<i64> {
        if let Some(redis) = self.usable() {
            if let Some(value) = self.shared(redis.get(key)).await {
                return value;
            }
        }
        self.local.get(key)
    }

    /// Redis, unless it failed less than [`RETRY_AFTER`] ago.
    fn usable(&self) -> Option<&redis::Redis> {
        let redis = self.redis.as_ref()?;
        let failed = *self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        match failed {
            Some(at) if at.elapsed() < RETRY_AFTER => None,
            _ => Some(redis),
        }
    }

    /// Runs a Redis call; a failure switches to local counting for a while.
    async fn shared<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, String>>,
    ) -> Option<T> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match call.await {
            Ok(value) => {
                *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("shared state: Redis answers again; limits and the login throttle are shared again");
                }
                Some(value)
            }
            Err(why) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!("shared state unavailable: {why}; limits and the login throttle count in this replica until Redis answers");
                }
                None
            }
        }
    }

    /// `portcullis_state_*` metrics.
    pub fn render_metrics(&self, out: &mut String) {
        let Some(_) = &self.redis else { return };
        let up = u64::from(self.up.load(Ordering::Relaxed));
        let _ = std::fmt::Write::write_fmt(out, format_args!("# HELP portcullis_state_redis_up Whether the last call to Redis succeeded.\n# TYPE portcullis_state_redis_up gauge\nportcullis_state_redis_up {up}\n"));
        render_counter(
            out,
            "portcullis_state_redis_calls_total",
            "Calls made to Redis.",
            &[(String::new(), self.calls.load(Ordering::Relaxed))],
        );
        render_counter(
            out,
            "portcullis_state_redis_errors_total",
            "Redis calls that failed (the replica counted locally instead).",
            &[(String::new(), self.errors.load(Ordering::Relaxed))],
        );
    }
}

#[cfg(test)]
mod tests;

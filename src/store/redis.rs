//! The Redis backend: one connection manager (reconnecting by itself) on a thread of its
//! own, and each operation one atomic Lua script call, bounded by `timeout`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{Count, RedisSettings};

/// INCR, starting the window on the first count: `{count, ms left}`.
const HIT: &str = "local n = redis.call('INCR', KEYS[1]) \
    local ttl = redis.call('PTTL', KEYS[1]) \
    if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end \
    return {n, ttl}";
/// `{count, ms left}` without counting.
const PEEK: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
    local ttl = redis.call('PTTL', KEYS[1]) \
    if ttl < 0 then ttl = 0 end \
    return {n, ttl}";
/// INCRBY, never below zero, kept ARGV[2] ms after the change.
const ADD: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) \
    if n < 0 then redis.call('SET', KEYS[1], 0) n = 0 end \
    redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
    return n";

/// SET with an expiry of ARGV[2] ms.
const SET: &str = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

struct Shared {
    settings: RedisSettings,
    client: Result<redis::Client, String>,
    manager: OnceCell<ConnectionManager>,
}

/// The Redis client.
pub struct Redis {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Handle>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Redis {
    /// No connection is made until the first call.
    pub fn start(settings: RedisSettings) -> Redis {
        let client = match &settings.ca {
            Some(pem) => redis::Client::build_with_tls(
                settings.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(settings.url.as_str()),
        }
        .map_err(|e| format!("state.url: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = crate::background::runtime_thread("redis", stopped)
            .map_err(|e| {
                tracing::error!("shared state will stay local: cannot start the Redis client: {e}")
            })
            .ok();
        Redis {
            shared: Arc::new(Shared {
                settings,
                client,
                manager: OnceCell::new(),
            }),
            runtime,
            _stop: stop,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.shared.settings.prefix)
    }

    /// Runs `script` with one key and `args` on the client's thread, within `timeout`.
    async fn eval<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &'static str,
        key: &str,
        args: Vec<i64>,
    ) -> Result<T, String> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the Redis client is not running")?;
        let shared = Arc::clone(&self.shared);
        let key = self.key(key);
        let timeout = shared.settings.timeout;
        let task = runtime.spawn(async move {
            let call = async {
                let mut manager = shared.manager().await?;
                let script = redis::Script::new(script);
                let mut invocation = script.key(key);
                for arg in args {
                    invocation.arg(arg);
                }
                invocation
                    .invoke_async::<T>(&mut manager)
                    .await
                    .map_err(|e| e.to_string())
            };
            tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
        });
        task.await.map_err(|e| e.to_string())?
    }

    pub async fn hit(&self, key: &str, window: Duration) -> Result<Count, String> {
        let (value, ms): (i64, i64) = self
            .eval(HIT, key, vec![window.as_millis().max(1) as i64])
            .await?;
        Ok(count(value, ms))
    }

    pub async fn peek(&self, key: &str) -> Result<Count, String> {
        let (value, ms): (i64, i64) = self.eval(PEEK, key, vec![]).await?;
        Ok(count(value, ms))
    }

    pub async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, String> {
        self.eval(ADD, key, vec![delta, ttl.as_millis().max(1) as i64])
            .await
    }

    pub async fn set(&self, key: &str, value: i64, ttl: Duration) -> Result<(), String> {
        self.eval::<i64>(SET, key, vec![value, ttl.as_millis().max(1) as i64])
            .await
            .map(|_| ())
    }

    /// Sets `key` on the client's thread, not waiting for the answer (failures are logged).
    pub fn set_detached(&self, key: &str, value: i64, ttl: Duration) {
        let Some(runtime) = &self.runtime else { return };
        let (shared, key) = (Arc::clone(&self.shared), self.key(key));
        runtime.spawn(async move {
            let call = async {
                let mut manager = shared.manager().await?;
                redis::Script::new(SET)
                    .key(key)
                    .arg(value)
                    .arg(ttl.as_millis().max(1) as i64)
                    .invoke_async::<i64>(&mut manager)
                    .await
                    .map_err(|e| e.to_string())
            };
            if let Err(e) = call.await {
                tracing::warn!("shared state: a revocation did not reach Redis: {e}");
            }
        });
    }

    pub async fn get(&self, key: &str) -> Result<Option<i64>, String> {
        self.eval("return redis.call('GET', KEYS[1])", key, vec![])
            .await
    }
}

impl Shared {
    async fn manager(&self) -> Result<ConnectionManager, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let timeout = self.settings.timeout;
        self.manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                client
                    .get_connection_manager_lazy(config)
                    .map_err(|e| e.to_string())
            })
            .await
            .cloned()
    }
}

fn count(value: i64, ms: i64) -> Count {
    Count {
        value: value.max(0) as u64,
        reset_in: Duration::from_millis(ms.max(0) as u64),
    }
}

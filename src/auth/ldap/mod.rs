//! People from an LDAP directory (OpenLDAP, Active Directory): their passwords and groups.
//!
//! A login searches the user with the service account (`user_filter`, the name escaped, see
//! [`filter`]), looks up their groups, then binds as the DN found with the given password.
//! An empty password never reaches the directory: servers treat a simple bind with a DN and
//! no password as an anonymous bind that "succeeds" (RFC 4513 §5.1.2).
//!
//! The client runs on a thread of its own with its own small runtime, so the directory's
//! connections do not depend on the proxy's threads, and `portcullis explain` can use the
//! same code. The user is then known by their entry's `user_attribute` (`uid`), not by the
//! name typed: directories match names case- and space-insensitively, and `ALICE` must not
//! dodge a rule written for `alice`. Verified credentials are cached with their groups for
//! `[auth.cache] ttl`, so a
//! push of many layers costs one bind; a directory that cannot be reached gives
//! [`LdapFailure::Unavailable`] (503), never a refusal that looks like a wrong password.

pub mod filter;
pub mod pool;
mod session;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::cache::CredentialCache;
use crate::stats::{render_counter, Histogram};
use filter::Template;
use pool::{Pool, PoolError};

/// Logins checked at once per stripe of credentials: the same credentials arriving on
/// several connections together wait for the first check and then find it cached.
const STRIPES: usize = 64;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a user's groups are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupLookup {
    /// No groups: only `users` rules apply to directory users.
    None,
    /// Entries under `base_dn` matching `filter` (`{dn}` and `{user}`), named by their
    /// `group_attribute`.
    Search { base_dn: String, filter: Template },
    /// The user entry's `attribute` (`memberOf`): group DNs, named by their first RDN.
    MemberOf { attribute: String },
}

/// `[auth.ldap]`, checked.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub url: String,
    pub start_tls: bool,
    /// `None` only for a plain `ldap://` URL with `allow_insecure`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub base_dn: String,
    pub user_filter: Template,
    /// The attribute whose value is the user's name from then on (`uid`, `sAMAccountName`).
    pub user_attribute: String,
    pub groups: GroupLookup,
    pub group_attribute: String,
    pub timeout: Duration,
    pub pool_size: usize,
}

impl LdapSettings {
    /// What a reload compares (everything but the secrets and TLS objects).
    pub fn fingerprint(&self) -> String {
        format!(
            "{} {} {} {} {} {} {:?} {} {:?} {}",
            self.url,
            self.start_tls,
            self.bind_dn,
            self.base_dn,
            self.user_filter.as_str(),
            self.user_attribute,
            self.groups,
            self.group_attribute,
            self.timeout,
            self.pool_size
        )
    }
}

/// A directory user as the directory spells them, and their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    /// The value of `user_attribute` in their entry.
    pub name: String,
    pub groups: Vec<String>,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapFailure {
    /// Unknown user, wrong or empty password, or an account the directory refuses.
    Refused(String),
    /// The directory could not answer (down, slow, pool exhausted, service account refused).
    Unavailable(String),
}

/// Counters of the directory client, for `/metrics`.
#[derive(Debug, Default)]
pub struct LdapStats {
    /// Each round trip: connect, bind, search.
    pub latency: Histogram,
    pool_errors: [AtomicU64; 3],
    /// Binds as users (the check of a password).
    pub user_binds: AtomicU64,
}

impl LdapStats {
    fn pool_error(&self, kind: PoolError) {
        self.pool_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// A configured directory and its client.
pub struct Directory {
    settings: Arc<LdapSettings>,
    /// `None` when the thread could not start: every login is then unavailable.
    runtime: Option<tokio::runtime::Handle>,
    /// Dropped with the directory: ends the client's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
    pool: Arc<Pool>,
    cache: CredentialCache<Arc<LdapUser>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    stripe_key: RandomState,
    pub stats: Arc<LdapStats>,
}

impl Directory {
    /// Starts the client's thread; no connection is opened until the first login.
    pub fn start(settings: LdapSettings, cache: CredentialCache<Arc<LdapUser>>) -> Directory {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = crate::background::runtime_thread("ldap", stopped)
            .map_err(|e| {
                tracing::error!("LDAP logins will answer 503: cannot start the LDAP client: {e}")
            })
            .ok();
        let settings = Arc::new(settings);
        let stats = Arc::new(LdapStats::default());
        Directory {
            pool: Arc::new(Pool::new(Arc::clone(&settings), Arc::clone(&stats))),
            settings,
            runtime,
            _stop: stop,
            cache,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            stripe_key: RandomState::new(),
            stats,
        }
    }

    /// The user of credentials verified within the cache's TTL.
    pub fn cached(&self, user: &str, password: &str) -> Option<Arc<LdapUser>> {
        self.cache.get(user, password)
    }

    /// Checks `user`'s `password` against the directory: who they are, or why not.
    pub async fn login(&self, user: &str, password: &str) -> Result<Arc<LdapUser>, LdapFailure> {
        if password.is_empty() {
            return Err(LdapFailure::Refused(
                "empty password (never sent to the directory)".into(),
            ));
        }
        if user.is_empty() {
            return Err(LdapFailure::Refused("empty user name".into()));
        }
        if let Some(found) = self.cached(user, password) {
            return Ok(found);
        }
        let stripe = self.stripe_key.hash_one((user, password)) as usize % STRIPES;
        let _turn = self.stripes[stripe].lock().await;
        if let Some(found) = self.cached(user, password) {
            return Ok(found);
        }
        let job = session::Job {
            settings: Arc::clone(&self.settings),
            pool: Arc::clone(&self.pool),
            stats: Arc::clone(&self.stats),
        };
        let (u, p) = (user.to_string(), password.to_string());
        let found = Arc::new(self.run(async move { job.login(&u, &p).await }).await?);
        self.cache.insert_value(user, password, Arc::clone(&found));
        Ok(found)
    }

    /// `user`'s groups, looked up with the service account (no password): for
    /// `portcullis explain` and refresh tokens. `Ok(None)`: no such user.
    pub async fn lookup(&self, user: &str) -> Result<Option<LdapUser>, LdapFailure> {
        let job = session::Job {
            settings: Arc::clone(&self.settings),
            pool: Arc::clone(&self.pool),
            stats: Arc::clone(&self.stats),
        };
        let u = user.to_string();
        self.run(async move { job.lookup(&u).await }).await
    }

    /// Runs `work` on the client's thread, bounded in time.
    async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, LdapFailure>> + Send + 'static,
    ) -> Result<T, LdapFailure> {
        // Each operation has its own timeout; this bounds a directory that stalls between them.
        let limit = self.settings.timeout * 5;
        let Some(runtime) = &self.runtime else {
            return Err(LdapFailure::Unavailable(
                "the LDAP client is not running".into(),
            ));
        };
        let task = runtime.spawn(async move {
            tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                Err(LdapFailure::Unavailable(format!(
                    "no answer within {limit:?}"
                )))
            })
        });
        task.await.unwrap_or_else(|e| {
            Err(LdapFailure::Unavailable(format!(
                "the LDAP client failed: {e}"
            )))
        })
    }

    /// The directory's metrics, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.stats.latency.render(
            out,
            "portcullis_ldap_latency_seconds",
            "Round trips to the LDAP directory (connect, bind, search).",
        );
        let errors: Vec<(String, u64)> = [
            PoolError::Connect,
            PoolError::ServiceBind,
            PoolError::Exhausted,
        ]
        .iter()
        .map(|k| {
            let n = self.stats.pool_errors[*k as usize].load(Ordering::Relaxed);
            (format!("reason=\"{}\"", k.label()), n)
        })
        .collect();
        render_counter(
            out,
            "portcullis_ldap_pool_errors_total",
            "LDAP connections that could not be had, by reason.",
            &errors,
        );
        let binds = self.stats.user_binds.load(Ordering::Relaxed);
        let opened = self.pool.opened.load(Ordering::Relaxed);
        render_counter(
            out,
            "portcullis_ldap_user_binds_total",
            "Password checks sent to the LDAP directory (cache misses).",
            &[(String::new(), binds)],
        );
        render_counter(
            out,
            "portcullis_ldap_connections_opened_total",
            "Connections opened to the LDAP directory.",
            &[(String::new(), opened)],
        );
        let _ = std::fmt::Write::write_fmt(out, format_args!(
            "# HELP portcullis_ldap_connections_idle Open LDAP connections waiting for a login.\n# TYPE portcullis_ldap_connections_idle gauge\nportcullis_ldap_connections_idle {}\n",
            self.pool.idle()
        ));
    }
}

#[cfg(test)]
mod tests;

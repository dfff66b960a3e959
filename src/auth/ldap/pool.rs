//! Connections to the directory, bound as the service account, reused across logins.
//!
//! At most `pool_size` connections exist at once; a login that finds them all busy waits
//! up to `timeout` for one, then the directory counts as unavailable (503) rather than
//! queueing without bound. A connection that failed in any way is dropped, never reused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{LdapSettings, LdapStats};

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// TCP, TLS or StartTLS failed or timed out.
    Connect,
    /// The directory refused the service account's bind.
    ServiceBind,
    /// Every connection stayed busy for `timeout`.
    Exhausted,
}

impl PoolError {
    /// Its `reason` label in `portcullis_ldap_pool_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            PoolError::Connect => "connect",
            PoolError::ServiceBind => "service_bind",
            PoolError::Exhausted => "exhausted",
        }
    }
}

/// The pool of one directory.
pub struct Pool {
    settings: Arc<LdapSettings>,
    stats: Arc<LdapStats>,
    /// Open connections bound as the service account, not in use.
    idle: Mutex<Vec<Ldap>>,
    slots: Arc<Semaphore>,
    /// Connections opened since start.
    pub opened: AtomicU64,
}

/// A connection taken from the pool, bound as the service account when taken.
pub struct Conn {
    pub ldap: Ldap,
    _slot: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(settings: Arc<LdapSettings>, stats: Arc<LdapStats>) -> Pool {
        let size = settings.pool_size.max(1);
        Pool {
            settings,
            stats,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(size)),
            opened: AtomicU64::new(0),
        }
    }

    /// An idle connection, else a new one; errors are counted and logged here.
    pub async fn get(&self) -> Result<Conn, (PoolError, String)> {
        let result = self.take().await;
        if let Err((kind, why)) = &result {
            self.stats.pool_error(*kind);
            tracing::warn!(url = %self.settings.url, reason = kind.label(), "LDAP directory unavailable: {why}");
        }
        result
    }

    async fn take(&self) -> Result<Conn, (PoolError, String)> {
        let timeout = self.settings.timeout;
        let slot =
            match tokio::time::timeout(timeout, Arc::clone(&self.slots).acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    let why = format!(
                        "all {} connections stayed busy for {timeout:?}",
                        self.settings.pool_size
                    );
                    return Err((PoolError::Exhausted, why));
                }
            };
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(mut ldap) => {
                    if !ldap.is_closed() {
                        return Ok(Conn { ldap, _slot: slot });
                    }
                }
                None => break,
            }
        }
        let ldap = self.connect().await?;
        Ok(Conn { ldap, _slot: slot })
    }

    /// Gives back a connection that is bound as the service account again.
    pub fn put(&self, conn: Conn) {
        let Conn { ldap, _slot } = conn;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ldap);
    }

    /// Connections idle now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Opens a connection (TLS or StartTLS as configured) and binds the service account.
    async fn connect(&self) -> Result<Ldap, (PoolError, String)> {
        let s = &self.settings;
        let mut options = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_starttls(s.start_tls);
        if let Some(tls) = &s.tls {
            options = options.set_config(Arc::clone(tls));
        }
        let started = Instant::now();
        let (conn, mut ldap) = LdapConnAsync::with_settings(options, &s.url)
            .await
            .map_err(|e| (PoolError::Connect, format!("cannot connect: {e}")))?;
        self.stats.latency.observe(started.elapsed());
        ldap3::drive!(conn);
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.bind_service(&mut ldap).await?;
        Ok(ldap)
    }

    /// Binds `ldap` as the service account (after a user's bind, before reuse).
    pub async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), (PoolError, String)> {
        let s = &self.settings;
        let started = Instant::now();
        let result = ldap
            .with_timeout(s.timeout)
            .simple_bind(&s.bind_dn, s.bind_password.expose())
            .await;
        self.stats.latency.observe(started.elapsed());
        match result {
            Ok(r) if r.rc == 0 => Ok(()),
            Ok(r) => Err((
                PoolError::ServiceBind,
                format!(
                    "the service account's bind as \"{}\" was refused (result {} {}); check auth.ldap.bind_dn and its password",
                    s.bind_dn, r.rc, r.text
                ),
            )),
            Err(e) => Err((PoolError::Connect, format!("service account bind: {e}"))),
        }
    }
}

//! Reloading without dropping anything: on SIGHUP (and, with `watch = true`, when a file it
//! read changes) the configuration is read and checked again. A good one replaces the
//! certificate, client CAs and CRLs, ACL and token keys for new handshakes and requests;
//! connections and transfers in flight keep what they started with. A bad one changes
//! nothing and the log says exactly why.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::gateway::decide::Access;
use crate::tls::LiveTls;

/// How often watched files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Holds what a reload replaces.
pub struct Reloader {
    pub path: PathBuf,
    pub current: Mutex<Arc<Config>>,
    pub tls: Arc<LiveTls>,
    pub access: Arc<ArcSwap<Access>>,
    /// Kept across reloads (`audit.path` changes take a restart).
    pub audit: Arc<crate::telemetry::audit::Audit>,
}

impl Reloader {
    /// Reads the configuration again and applies what can change while running.
    /// Returns whether the new configuration was taken.
    pub fn reload(&self) -> bool {
        let mut new = match Config::load(&self.path) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed; still serving the previous configuration: {e}");
                return false;
            }
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut restart = restart_needed(&current, &new);
        if let Err(why) = self.tls.update(&new.tls) {
            restart.push(why);
            // Nothing of the new [tls] is served, so the configuration in force (what
            // /metrics describes and the next reload compares with) keeps the old one.
            new.tls = current.tls.clone();
        }
        let authn = Arc::clone(&self.access.load().authn);
        self.access.store(Arc::new(Access::with_authenticator(
            &new,
            authn,
            Arc::clone(&self.audit),
        )));
        for warning in &new.tls.identity.warnings {
            tracing::warn!("tls.certificate: {warning}");
        }
        let serving = new
            .tls
            .identity
            .chain
            .first()
            .map(|c| c.subject.clone())
            .unwrap_or_default();
        tracing::info!(certificate = %serving, rules = new.acl.rules.len(), "configuration reloaded");
        if !restart.is_empty() {
            tracing::warn!("changed but kept until a restart: {}", restart.join("; "));
        }
        *current = Arc::new(new);
        true
    }

    /// Runs in its own thread: SIGHUP reloads; with `watch`, so does a changed file.
    pub fn spawn(self: Arc<Self>, watch: bool) {
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return tracing::error!("reload thread cannot start: {e}"),
                };
                runtime.block_on(self.run(watch));
            });
        if let Err(e) = spawned {
            tracing::error!("reload thread cannot start: {e}");
        }
    }

    async fn run(&self, watch: bool) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => s,
            Err(e) => return tracing::error!("cannot listen for SIGHUP: {e}"),
        };
        let mut seen = self.stamps();
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    self.reload();
                    seen = self.stamps();
                }
                _ = tokio::time::sleep(WATCH_EVERY), if watch => {
                    let now = self.stamps();
                    if now != seen {
                        tracing::info!("a configuration file changed: reloading");
                        self.reload();
                        seen = self.stamps();
                    }
                }
            }
        }
    }

    /// Modification time and size of the config file and every file it names.
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        std::iter::once(&self.path)
            .chain(current.files.iter())
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }
}

/// Settings that differ but need new listeners, threads or connections.
fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    let mut check = |changed: bool, key: &str| {
        if changed {
            keys.push(key.to_string());
        }
    };
    check(old.listen != new.listen, "listen");
    check(old.upstreams != new.upstreams, "upstream");
    check(old.threads != new.threads, "threads");
    check(
        old.trusted_proxies != new.trusted_proxies,
        "trusted_proxies",
    );
    check(old.timeouts != new.timeouts, "[timeouts]");
    check(
        old.grace_period != new.grace_period,
        "shutdown.grace_period",
    );
    check(old.log != new.log, "[log]");
    check(old.watch != new.watch, "watch");
    check(old.admin != new.admin, "[admin]");
    check(old.audit != new.audit, "[audit]");
    check(
        old.tls.min_version != new.tls.min_version,
        "tls.min_version",
    );
    let htpasswd = |c: &Config| c.auth.htpasswd.as_ref().map(|h| h.path.clone());
    check(
        htpasswd(old) != htpasswd(new),
        "auth.htpasswd.path (the file itself is re-read on change)",
    );
    let workers = |c: &Config| c.auth.htpasswd.as_ref().map(|h| h.workers);
    check(workers(old) != workers(new), "auth.htpasswd.workers");
    check(old.auth.require != new.auth.require, "auth.require");
    check(
        old.auth.forward_authorization != new.auth.forward_authorization,
        "auth.forward_authorization",
    );
    check(
        (
            old.auth.throttle_max_failures,
            old.auth.throttle_window,
            old.auth.cache_ttl,
            old.auth.cache_capacity,
        ) != (
            new.auth.throttle_max_failures,
            new.auth.throttle_window,
            new.auth.cache_ttl,
            new.auth.cache_capacity,
        ),
        "[auth.throttle], [auth.cache]",
    );
    keys
}

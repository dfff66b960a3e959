//! Reloading without dropping anything: on SIGHUP (and, with `watch = true`, when a file it
//! read changes) the configuration is read and checked again. A good one replaces the
//! certificate, client CAs and CRLs, ACL and token keys for new handshakes and requests;
//! connections and transfers in flight keep what they started with. A bad one changes
//! nothing and the log says exactly why.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::boot::Boot;
use crate::config::Config;
use crate::gateway::decide::Access;
use crate::gateway::state::{Live, State};

/// How often watched files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Reads the configuration again and swaps in a new live state built from it.
pub struct Reloader {
    pub path: PathBuf,
    pub state: Arc<State>,
}

impl Reloader {
    /// Reads the configuration again and applies what can change while running: a whole
    /// new live state, or nothing when the file is bad. Returns whether one was taken.
    pub fn reload(&self) -> bool {
        let new = match Config::load(&self.path) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed; still serving the previous configuration: {e}");
                return false;
            }
        };
        let boot = Boot::of(&new);
        let restart = self.state.boot.changed_keys(&boot);
        self.state.replace(self.next_live(new, &boot));
        let live = self.state.live();
        let serving = match live.tls.identity() {
            Some(identity) => identity
                .chain
                .first()
                .map(|c| c.subject.clone())
                .unwrap_or_default(),
            None => "from tls.acme".into(),
        };
        tracing::info!(certificate = %serving, rules = live.access.acl.rules.len(), "configuration reloaded");
        if !restart.is_empty() {
            tracing::warn!("changed but kept until a restart: {}", restart.join("; "));
        }
        true
    }

    /// The live state `new` describes. Its certificate, CAs and CRLs are taken only when
    /// the listeners' TLS shape is unchanged (else the served ones stay, and
    /// [`Boot::changed_keys`] names what needs a restart); the authenticator, with its
    /// throttle and cache, is kept, and given the users of the htpasswd file just read.
    fn next_live(&self, new: Config, boot: &Boot) -> Live {
        let current = self.state.live();
        let tls = if self.state.boot.same_tls_shape(boot) {
            for warning in new.tls.identity().iter().flat_map(|i| &i.warnings) {
                tracing::warn!("tls.certificate: {warning}");
            }
            Arc::new(new.tls.clone())
        } else {
            Arc::clone(&current.tls)
        };
        let authn = Arc::clone(&current.access.authn);
        if let (Some(basic), Some(file), true) = (
            &authn.basic,
            &new.auth.htpasswd,
            self.state.boot.htpasswd_path == boot.htpasswd_path,
        ) {
            basic.checker.install(file.db.clone());
        }
        if let (Some(robots), Some(file), true) = (
            &authn.robots,
            &new.auth.robots,
            self.state.boot.robots_path == boot.robots_path,
        ) {
            robots.install(file.db.clone());
        }
        Live {
            tls,
            access: Access::with_authenticator(&new, authn),
            files: new.files,
        }
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
        let live = self.state.live();
        std::iter::once(&self.path)
            .chain(live.files.iter())
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }
}

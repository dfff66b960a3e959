//! Password checks for Basic auth: the htpasswd file (re-read when it changes), the
//! verified-credentials cache, and bcrypt on a bounded blocking pool.
//!
//! bcrypt at cost 10 takes tens of milliseconds of CPU; run on an async worker it would stall
//! every other connection on that thread. Here it runs on tokio's blocking threads, at most
//! `workers` at a time, with at most [`MAX_WAITING`] more waiting; beyond that the answer is
//! 503 rather than an ever-growing queue.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::basic::Credentials;
use super::cache::CredentialCache;
use super::htpasswd::HtpasswdDb;
use super::throttle::Guess;
use super::watched::{stamp, Stamp};

/// Checks queued beyond the running ones before new ones are refused as busy.
const MAX_WAITING: usize = 256;
/// How often the htpasswd file's modification time is looked at.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Result of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// Too many checks queued; try again later.
    Busy,
}

/// Told of a user a new htpasswd file no longer has.
type RemovalHook = Box<dyn Fn(&str) + Send + Sync>;

/// The htpasswd users and everything needed to check them quickly and safely.
pub struct PasswordChecker {
    path: PathBuf,
    db: RwLock<(Arc<HtpasswdDb>, Stamp)>,
    last_look: Mutex<Instant>,
    cache: CredentialCache,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Counts installed files, so a guess refused under one file is not refused under the next.
    generation: AtomicU64,
    /// The per-process random key of [`Guess`] fingerprints.
    guess_key: RandomState,
    /// Told of each user a new file no longer has (to revoke their refresh tokens).
    on_removed: Option<RemovalHook>,
    /// One lock per credentials being checked now (by their [`Guess`] fingerprint), so that
    /// a client opening many connections at once with the same password costs one bcrypt,
    /// not one per free worker.
    pub(super) checking: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// bcrypt checks run since this checker was built: the metric
    /// `portcullis_htpasswd_bcrypt_checks_total`.
    pub bcrypt_runs: AtomicU64,
}

impl PasswordChecker {
    /// `db` is the file's content as validated at start-up.
    pub fn new(path: PathBuf, db: HtpasswdDb, cache: CredentialCache, workers: usize) -> Self {
        let current = stamp(&path);
        Self {
            path,
            db: RwLock::new((Arc::new(db), current)),
            last_look: Mutex::new(Instant::now()),
            cache,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            guess_key: RandomState::new(),
            on_removed: None,
            checking: Mutex::default(),
            bcrypt_runs: AtomicU64::new(0),
        }
    }

    /// The checker's metrics, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        crate::stats::render_counter(
            out,
            "portcullis_htpasswd_bcrypt_checks_total",
            "bcrypt comparisons run for htpasswd logins (credential cache misses; identical credentials arriving together share one).",
            &[(String::new(), self.bcrypt_runs.load(Ordering::Relaxed))],
        );
    }

    /// Calls `hook` with each user a changed file no longer has.
    pub fn on_removed(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_removed = Some(Box::new(hook));
        self
    }

    /// Whether `user` is in the current htpasswd file.
    pub fn has_user(&self, user: &str) -> bool {
        self.reload_if_changed();
        self.db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .has_user(user)
    }

    /// Whether these credentials were verified recently (no bcrypt needed).
    pub fn is_cached(&self, creds: &Credentials) -> bool {
        self.reload_if_changed();
        self.cache.contains(&creds.user, &creds.password)
    }

    /// The throttle's fingerprint of `creds` as checked against the current file: a keyed
    /// hash, so neither the password nor a plain hash of it is kept.
    pub fn guess(&self, creds: &Credentials) -> Guess {
        let generation = self.generation.load(Ordering::SeqCst);
        Guess(
            self.guess_key
                .hash_one((generation, &creds.user, &creds.password)),
        )
    }

    /// Checks credentials: from the cache, else by bcrypt on the blocking pool; identical
    /// credentials arriving together wait for the first check and take its cached result.
    pub async fn verify(&self, creds: &Credentials) -> Verdict {
        if self.is_cached(creds) {
            return Verdict::Valid;
        }
        let key = self.guess(creds).0;
        let lock = {
            let mut checking = self.checking.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(checking.entry(key).or_default())
        };
        let verdict = {
            let _turn = lock.lock().await;
            self.check(creds).await
        };
        let mut checking = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        // The last one out removes the entry (the map holds one reference, this call another).
        if Arc::strong_count(&lock) <= 2 {
            checking.remove(&key);
        }
        verdict
    }

    /// One check, in turn with identical ones: the cache again, else bcrypt.
    async fn check(&self, creds: &Credentials) -> Verdict {
        if self.cache.contains(&creds.user, &creds.password) {
            return Verdict::Valid;
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Verdict::Busy;
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Ok(permit) = permit else {
            return Verdict::Busy;
        };
        // Requests that arrived together with the same credentials (a client opening several
        // connections at once) queued behind the first check: its result is in the cache now.
        if self.cache.contains(&creds.user, &creds.password) {
            return Verdict::Valid;
        }
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        let db = Arc::clone(&self.db.read().unwrap_or_else(|e| e.into_inner()).0);
        let (user, password) = (creds.user.clone(), creds.password.clone());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            db.verify(&user, &password)
        })
        .await
        .unwrap_or(false);
        if ok {
            self.cache.insert(&creds.user, &creds.password);
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }

    /// Re-reads the file when its size or modification time changed (at most once a
    /// second) and [`install`](Self::install)s a good new file; a bad one keeps the old
    /// users.
    fn reload_if_changed(&self) {
        {
            let mut last = self.last_look.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < RECHECK_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let now = stamp(&self.path);
        {
            let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
            if now == db.1 {
                return;
            }
            db.1 = now;
        }
        let parsed = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                HtpasswdDb::parse(&text).map_err(|errs| {
                    errs.iter()
                        .map(|e| format!("line {}: {}", e.line, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            });
        match parsed {
            Ok(new) => self.install(new),
            Err(why) => {
                tracing::warn!(path = %self.path.display(), "htpasswd file changed but is invalid; keeping the previous users: {why}")
            }
        }
    }

    /// Checks passwords against `new` from now on, if it differs from the users in force
    /// (then the cache is cleared). The one way users change: the file's own poll and a
    /// configuration reload (which read and validated the file again) both end here.
    pub fn install(&self, new: HtpasswdDb) {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        if *db.0 == new {
            return;
        }
        tracing::info!(path = %self.path.display(), users = new.len(), "htpasswd file changed; reloaded");
        if let Some(hook) = &self.on_removed {
            db.0.users().filter(|u| !new.has_user(u)).for_each(hook);
        }
        db.0 = Arc::new(new);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }
}
